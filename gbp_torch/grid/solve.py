"""Public one-call API: :func:`solve` a grid problem with flat or multigrid GBP, differentiably."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from ..modes import BackwardLike, BackwardMode, as_backward
from .checks import check_inputs
from .config import GridConfig
from .forward import GridResult, solve_system
from .implicit import AdjointSettings, implicit_mean
from .irls import GridRobust
from .observability import (
    GridUnobservableWarning,
    pixel_counts,
    regularise,
    unobservable,
    with_hidden_variance,
)

_DEFAULT = GridConfig()


def solve(z: Tensor, data_precision, edge_weights, *, iters: int | None = None, tol: float | None = None,
          x0: Tensor | None = None, mask: Tensor | None = None, robust: GridRobust | None = None,
          config: GridConfig | None = None, backward: BackwardLike = "unroll", validate: bool = True,
          offsets: tuple[Tensor, Tensor] | None = None) -> GridResult:
    """Solve ``min_x 1/2 sum (x-z)^T a (x-z) + 1/2 sum w_ij |x_j - x_i - c_ij|^2`` on B x H x W grids.

    Args:
        z: targets, (B, H, W) or (B, 1, H, W) for D = 1, (B, 2, H, W) for D = 2.
        data_precision: number, (B, H, W), or (D = 2 only) (B, 2, 2, H, W) PSD blocks.
        edge_weights: number or (w_horizontal (B, H, W-1), w_vertical (B, H-1, W)).
        iters: max GBP iterations (flat; default 100) or V-cycles / FCG steps
            (multigrid; default 30).
        tol: stop when every batch item's relative residual ``|b-Ax|/|b|`` <= tol
            (None: run ``iters`` without any host synchronisation).
        x0: initial estimate, shape of z; with ``robust`` the first weights are
            computed at x0 (no initial least-squares solve).
        mask: (B, H, W) in [0, 1]; data precision is multiplied by it (0 / False: unknown).
        robust: :class:`~gbp_torch.grid.GridRobust` kernels on the data and smoothness
            terms (IRLS outer iterations).
        config: :class:`~gbp_torch.grid.GridConfig` (flat or multigrid and their settings;
            default flat GBP).
        backward: ``"unroll"``, ``"truncated"``, ``"implicit"`` or a
            :class:`~gbp_torch.modes.BackwardConfig`. Implicit: exact gradients at the
            solution from adjoint multigrid solves, memory constant in ``iters``, ``var``
            detached. Truncated: solve unrecorded, then record ``truncate`` more steps.
        validate: check values (NaN, negative precisions, asymmetric blocks, items without
            data) and find unobservable regions (no data in a component cut off by zero edge
            weights, or D = 2 data constraining one direction only: reported in
            ``result.unobservable`` with a :class:`GridUnobservableWarning`, regularised, ``var``
            inf there for the coordinates the data leave undetermined). Two host synchronisations
            for D = 1 without cut edges (more when edges are cut, or D = 2: a connected-components
            search); False skips all of it for callers that checked. Shapes are always checked.
        offsets: the expected differences c along the edges (None: 0, the plain smoothness), a pair
            ``(c_h (B, D, H, W-1), c_v (B, D, H-1, W))`` (D = 1: also (B, H, W-1), (B, H-1, W)), c_h the
            expected ``x(y, x+1) - x(y, x)`` and c_v ``x(y+1, x) - x(y, x)``: a prior on slopes (slanted
            surfaces), or a field rebuilt from its gradients (Poisson editing). They change only the
            right-hand side; robust smoothness kernels see ``|x_j - x_i - c_ij|``; gradients reach them.

    Returns:
        :class:`GridResult`. Device and dtype follow z; differentiable. float16 / bfloat16 inputs
        (for example under autocast) are solved in float32 and the mean and variance cast back:
        their 11 or 8 significant bits would stall the iteration and cannot hold a Cholesky factor.
    """
    if isinstance(z, Tensor) and z.dtype in (torch.float16, torch.bfloat16):
        res = solve(z.float(), _float(data_precision), _float(edge_weights), iters=iters, tol=tol,
                    x0=_float(x0), mask=_float(mask), robust=robust, config=config, backward=backward,
                    validate=validate, offsets=_float(offsets))
        res.mean, res.var = res.mean.to(z.dtype), res.var.to(z.dtype)
        return res
    config = _DEFAULT if config is None else config
    iters = _check_settings(z, iters, tol, x0, robust, config)
    back = as_backward(backward)
    sys, zz, _ = check_inputs(z, data_precision, edge_weights, mask, validate=validate, x0=x0, offsets=offsets)
    found = unobservable(sys) if validate else None
    rel = None if found is None else found.rel  # relative regularisation of unobservable pixels
    if found is not None:
        sys = regularise(sys, zz, rel)
        _warn_unobservable(rel > 0)
    if x0 is not None:
        x0 = x0.to(zz.dtype).reshape(zz.shape)

    if back.mode is BackwardMode.UNROLL:
        result = solve_system(sys, zz, iters, tol, x0, robust, config)
    else:
        with torch.no_grad():
            result = solve_system(sys, zz, iters, tol, x0, robust, config)
        if back.mode is BackwardMode.TRUNCATED:
            tail = solve_system(sys, zz, back.truncate, None, result.mean, robust, config)
            tail.work += result.work
            result = tail
    result.mean = result.mean.reshape(z.shape)
    if found is not None:
        result.unobservable = rel > 0
        result.var = with_hidden_variance(result.var, found.hidden)
    if back.mode is BackwardMode.IMPLICIT:
        settings = AdjointSettings(config if not config.flat else GridConfig(levels=None),
                                   back.adjoint_iters or 100, back.tolerance(tol), back.adjoint_cg_iters)
        result.mean = implicit_mean(result.mean, z, data_precision, edge_weights, robust, mask, settings, rel,
                                    offsets)
    return result


def _float(x):
    """Low-precision tensors (alone or in a pair) as float32; anything else unchanged."""
    if isinstance(x, (tuple, list)):
        return type(x)(_float(t) for t in x)
    if isinstance(x, Tensor) and x.dtype in (torch.float16, torch.bfloat16):
        return x.float()
    return x


def _check_settings(z, iters, tol, x0, robust, config) -> int:
    """Validate the cheap arguments first; returns ``iters`` (the config's default when None)."""
    if not isinstance(config, GridConfig):
        raise ValueError(f"config must be a GridConfig, got {type(config).__name__}")
    if robust is not None and not isinstance(robust, GridRobust):
        raise ValueError(f"robust must be None or a GridRobust, got {type(robust).__name__}")
    iters = config.default_iters if iters is None else iters
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 0:
        raise ValueError(f"iters must be an int >= 0, got {iters!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be None or > 0, got {tol!r}")
    if x0 is not None and (not isinstance(x0, Tensor) or not isinstance(z, Tensor) or x0.shape != z.shape):
        raise ValueError(f"x0 must be a tensor of the shape of z {tuple(getattr(z, 'shape', ()))}, got "
                         f"{tuple(x0.shape) if isinstance(x0, Tensor) else type(x0).__name__}")
    return iters


def _warn_unobservable(hidden: Tensor) -> None:
    warnings.warn(f"grid.solve: pixels that no data determines (a region without data cut off by zero edge "
                  f"weights, or D = 2 data of one direction only); {pixel_counts(hidden)}. The variance of what the "
                  "data leave undetermined there is inf, the mean a regularised placeholder (GridResult.unobservable).",
                  GridUnobservableWarning, stacklevel=3)

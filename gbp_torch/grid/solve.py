"""Public one-call API: :func:`solve` a grid problem with flat or multigrid GBP."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..backward import BackwardMode, as_backward_mode
from . import blocks
from .backward import solve_with_backward
from .checks import check_inputs
from .gbp import GBPGains, gbp_iterate, lam_setup
from .irls import GridRobust, as_grid_robust, reweight
from .multigrid import METHODS, build_hierarchy, c2f, fcg_solve, fmg, vcycle_solve
from .system import GridSystem


@dataclass
class GridResult:
    """Result of :func:`solve`.

    Attributes:
        mean: posterior means, same shape as z ((B, H, W) or (B, 2, H, W)).
        var: GBP marginal variances ``lam_b^-1``: (B, H, W) for D = 1, full
            2x2 covariance blocks (B, 2, 2, H, W) for D = 2. Loopy GBP
            underestimates the exact ``diag(A^-1)`` (see :mod:`.calibration`).
        iters: iterations of the last solve (GBP iterations, V-cycles or FCG steps).
        converged: whether ``tol`` was reached (False when tol is None).
        residuals: (T, B) relative residuals ``|b - A x| / |b|`` of the last solve.
        work: fine-grid-sweep equivalents of all solves (smoothing / GBP sweeps
            weighted by level size; lam set-up and residuals not counted).
        lam_iters: lam-message iterations of the fine-level set-up (last solve).
        outer_iters: IRLS reweightings run (0 without robust kernels).
    """

    mean: Tensor
    var: Tensor
    iters: int
    converged: bool
    residuals: Tensor
    work: float
    lam_iters: int
    outer_iters: int = 0


def _default_lam_tol(dtype: torch.dtype, flat: bool) -> float:
    if not flat:
        return 1e-2
    return 1e-13 if dtype == torch.float64 else 1e-7


def _inner(sys: GridSystem, x0: Tensor | None, iters: int, levels: int | None, tol: float | None,
           opts: dict) -> tuple[Tensor, list, int, bool, GBPGains, float]:
    """One (non-robust) solve; returns (x, history, iters, converged, fine gains, work)."""
    flat = levels == 1 or opts["method"] == "c2f"
    user_tol = opts["lam_tol"]
    gains = lam_setup(sys, user_tol if user_tol is not None else _default_lam_tol(sys.b.dtype, flat),
                      init="zero" if flat else "local")
    if levels == 1:
        x, hist, it, conv = gbp_iterate(sys, gains, iters, x0=x0, tol=tol, damping=opts["damping"] or 0.0,
                                        schedule=opts["schedule"], check_every=opts["check_every"])
        return x, hist, it, conv, gains, float(it)
    method = opts["method"]
    hier = build_hierarchy(sys, levels, opts["coarse_size"], opts["smoother"],
                           0.5 if opts["damping"] is None else opts["damping"], opts["relax"], opts["clamp"],
                           user_tol if user_tol is not None else 1e-2, gains, opts["transfer"], opts["cycle"])
    if method == "c2f":
        start = c2f(hier) if x0 is None else x0
        x, hist, it, conv = gbp_iterate(sys, gains, iters, x0=start, tol=tol, schedule=opts["schedule"],
                                        check_every=opts["check_every"])
        return x, hist, it, conv, gains, hier.work + it
    if x0 is None:
        x0 = fmg(hier) if opts["fmg"] else torch.zeros_like(sys.b)
    run = fcg_solve if method == "fcg" else vcycle_solve
    x, hist, it, conv = run(sys, hier, x0, iters, tol)
    return x, hist, it, conv, gains, hier.work


def solve(z: Tensor, data_precision, edge_weights, iters: int | None = None, levels: int | None = 1,
          tol: float | None = None, robust: GridRobust | dict | None = None,
          damping: float | list | None = None, *, mask: Tensor | None = None, method: str = "fcg",
          schedule: str = "sync", smoother: str = "gbp", relax: float = 0.8, clamp: float = 0.6,
          cycle: tuple[int, int] = (1, 1), transfer: str = "bilinear", fmg: bool = True,
          lam_tol: float | None = None, coarse_size: int = 64, check_every: int = 10,
          x0: Tensor | None = None, backward: str = "unroll", truncate: int = 5,
          adjoint_iters: int = 100, adjoint_tol: float | None = None) -> GridResult:
    """Solve ``min_x 1/2 sum (x-z)^T a (x-z) + 1/2 sum w_ij |x_i - x_j|^2`` on B x H x W grids.

    Args:
        z: targets, (B, H, W) for D = 1 or (B, 2, H, W) for D = 2.
        data_precision: number, (B, H, W), or (D = 2 only) (B, 2, 2, H, W) PSD blocks.
        edge_weights: number or (w_horizontal (B, H, W-1), w_vertical (B, H-1, W)).
        iters: max GBP iterations (levels = 1; default 100) or V-cycles / FCG
            steps (multigrid; default 30).
        levels: 1 = flat GBP; None = full hierarchy down to ``coarse_size``
            pixels; k > 1 = at most k levels.
        tol: stop when every batch item's relative residual ``|b-Ax|/|b|`` <= tol.
        robust: ``dict(data=RobustKernel(...), smooth=RobustKernel(...),
            outer_iters=10)`` or :class:`GridRobust`; IRLS outer iterations.
        damping: message damping in [0, 1) for flat GBP (default 0); for
            multigrid the GBP smoother's message damping (default 0.5; may be a
            per-level list).
        mask: (B, H, W); data precision is zeroed where mask is 0 / False.
        method: multigrid driver: ``"fcg"`` (V-cycle-preconditioned flexible CG),
            ``"vcycle"`` (stationary V-cycles) or ``"c2f"`` (coarse-to-fine
            start + flat GBP).
        schedule: ``"sync"`` or ``"redblack"`` (flat GBP and c2f).
        smoother: ``"gbp"`` (frozen-gain damped GBP) or ``"jacobi"`` (damped Jacobi).
        relax: output damping / Jacobi weight of the smoother.
        clamp: smoother uses ``max(lam_b, clamp * diag(A))`` (edge-aware weights).
        cycle: (pre, post) smoothing steps of the V-cycle.
        transfer: ``"bilinear"`` or ``"constant"`` grid transfers.
        fmg: start multigrid from a full-multigrid pass (else from zero).
        lam_tol: relative change at which the lam-messages count as converged
            (default: 1e-13 / 1e-7 (float64 / float32) for flat GBP and c2f, 1e-2
            for the V-cycle / FCG smoothers; the variances are as accurate as this).
        coarse_size: pixels at which coarsening stops (dense Cholesky there).
        check_every: flat GBP computes the residual every this many iterations.
        x0: optional initial estimate, same shape as z; with ``robust`` the
            first weights are computed at x0 (no initial least-squares solve).
        backward: how gradients flow: ``"unroll"`` (autograd through every
            iteration), ``"truncated"`` (solve unrecorded, then record ``truncate``
            more iterations / cycles) or ``"implicit"`` (exact gradients at the
            solution from an adjoint multigrid solve; memory constant in ``iters``;
            ``var`` is then detached). ``adjoint_iters`` / ``adjoint_tol`` bound the
            adjoint solves (default tol: ``tol`` or 1e-10).

    Returns:
        :class:`GridResult`. Device and dtype follow z; differentiable.
    """
    if as_backward_mode(backward) is not BackwardMode.UNROLL:
        return solve_with_backward(
            z, data_precision, edge_weights, backward, truncate, adjoint_iters, adjoint_tol, iters=iters,
            levels=levels, tol=tol, robust=robust, damping=damping, mask=mask, method=method, schedule=schedule,
            smoother=smoother, relax=relax, clamp=clamp, cycle=cycle, transfer=transfer, fmg=fmg, lam_tol=lam_tol,
            coarse_size=coarse_size, check_every=check_every, x0=x0)
    sys0, zz, d = check_inputs(z, data_precision, edge_weights, mask)
    if levels is not None and (not isinstance(levels, int) or levels < 1):
        raise ValueError(f"levels must be None or an int >= 1, got {levels!r}")
    if iters is None:
        iters = 100 if levels == 1 else 30
    if not isinstance(iters, int) or iters < 0:
        raise ValueError(f"iters must be an int >= 0, got {iters!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be None or > 0, got {tol!r}")
    for dmp in (damping if isinstance(damping, (list, tuple)) else [damping]):
        if dmp is not None and not 0 <= dmp < 1:
            raise ValueError(f"damping must be in [0, 1), got {damping!r}")
    if levels == 1 and isinstance(damping, (list, tuple)):
        raise ValueError("a per-level damping list needs levels != 1")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if x0 is not None:
        if tuple(x0.shape) != tuple(z.shape):
            raise ValueError(f"x0 must have the shape of z {tuple(z.shape)}, got {tuple(x0.shape)}")
        x0 = x0.to(z.dtype).reshape(zz.shape)
    rb = as_grid_robust(robust)
    opts = dict(lam_tol=lam_tol,
                damping=damping, schedule=schedule, check_every=check_every, method=method,
                coarse_size=coarse_size, smoother=smoother, relax=relax, clamp=clamp,
                transfer=transfer, cycle=cycle, fmg=fmg)
    if rb is not None and x0 is not None:  # robust weights are first evaluated at x0
        x, hist, it, conv, gains, work = x0, [], 0, False, None, 0.0
    else:
        x, hist, it, conv, gains, work = _inner(sys0, x0, iters, levels, tol, opts)
    outer = 0
    if rb is not None:
        for _ in range(max(rb.outer_iters, 1 if gains is None else 0)):
            sys_t = reweight(sys0, zz, x, rb)
            x_new, hist, it, conv, gains, w = _inner(sys_t, x, iters, levels, tol, opts)
            work += w
            outer += 1
            change = float((x_new - x).detach().abs().max()) / max(float(x_new.detach().abs().max()), 1e-300)
            x = x_new
            if rb.outer_tol is not None and change <= rb.outer_tol:
                break
    var = blocks.to_matrix(blocks.inv(gains.lam_b), d)
    res = torch.stack(hist) if hist else z.new_zeros(0, z.shape[0])
    return GridResult(mean=x.reshape(z.shape), var=var, iters=it, converged=conv, residuals=res,
                      work=work, lam_iters=gains.iters, outer_iters=outer)

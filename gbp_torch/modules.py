"""nn.Modules: thin holders of solver settings (config objects) around the functional API.

Settings given at construction are the defaults; ``iters`` and the warm start are
call-time arguments. ``iters=0`` means zero iterations (never "use the default").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .backward import solve_graph
from .factor_graph import FactorGraph, GBPResult
from .grid import MULTIGRID, GridConfig, GridResult, GridRobust, solve
from .modes import BackwardLike, as_backward, override
from .schedules import ScheduleLike, as_schedule


def _check_iters_tol(iters, tol, allow_none: bool = False) -> None:
    """Settings are checked when a layer is built, not at its first call."""
    if not (iters is None and allow_none) and (isinstance(iters, bool) or not isinstance(iters, int) or iters < 0):
        raise ValueError(f"iters must be an int >= 0{' or None' if allow_none else ''}, got {iters!r}")
    if tol is not None and not tol > 0:
        raise ValueError(f"tol must be None or > 0, got {tol!r}")


class GBPLayer(nn.Module):
    """GBP on a general factor graph as a layer.

    Build the graph in your model's forward from network outputs (means,
    precisions, robust thresholds as tensors), then call the layer; gradients
    reach every factor tensor by the chosen backward mode.

    Args:
        iters, tol, damping, schedule: as :meth:`gbp_torch.GBPEngine.run`.
        backward: "unroll", "truncated", "implicit" or a :class:`~gbp_torch.modes.BackwardConfig`.

    Example::

        layer = GBPLayer(iters=50, backward="implicit")
        result = layer(graph)                         # GBPResult; result.mean(group) is differentiable
        result = layer(graph, iters=10, init=result)  # cheaper call, warm-started
    """

    def __init__(self, iters: int = 100, tol: float | None = None, damping: float = 0.0,
                 schedule: ScheduleLike = "sync", backward: BackwardLike = "unroll"):
        super().__init__()
        _check_iters_tol(iters, tol)
        if not 0.0 <= damping < 1.0:
            raise ValueError(f"damping must be in [0, 1), got {damping!r}")
        self.iters, self.tol, self.damping = iters, tol, damping
        self.schedule = as_schedule(schedule)
        self.backward = as_backward(backward)

    def forward(self, graph: FactorGraph, iters: int | None = None, init: GBPResult | None = None,
                backward: BackwardLike | None = None) -> GBPResult:
        """Solve ``graph``; ``init`` warm-starts from a previous result of the same structure
        (its messages and means, detached: the fixed point does not depend on them);
        ``iters`` / ``backward`` override the constructor's for this call."""
        return solve_graph(graph, iters=self.iters if iters is None else iters, tol=self.tol,
                           damping=self.damping, schedule=self.schedule,
                           backward=override(self.backward, backward), init=init)

    def extra_repr(self) -> str:
        return f"iters={self.iters}, tol={self.tol}, damping={self.damping}, backward={self.backward.mode.value}"


def _at_least_float32(*items):
    """Upcast float16 / bfloat16 tensors (also inside tuples) to float32, e.g. outputs of an autocast CNN."""
    def up(t):
        if isinstance(t, tuple | list):
            return type(t)(up(u) for u in t)
        if isinstance(t, Tensor) and t.dtype in (torch.float16, torch.bfloat16):
            return t.float()
        return t
    return tuple(up(t) for t in items)


class GridGBP(nn.Module):
    """GBP on B x H x W pixel grids (:func:`gbp_torch.grid.solve`) as a layer.

    Args:
        iters: GBP iterations (flat) or FCG / V-cycle steps (multigrid); None: the config's default.
        tol: optional stopping tolerance on the relative residual (None: no host syncs).
        config: :class:`~gbp_torch.grid.GridConfig` (default: flat GBP).
        backward: "unroll", "truncated", "implicit" or a :class:`~gbp_torch.modes.BackwardConfig`.
        robust: optional :class:`~gbp_torch.grid.GridRobust` kernels (fixed thresholds; pass
            per-call tensor thresholds through ``forward(robust=...)``).

    Forward: ``z`` (B, H, W), (B, 1, H, W) or (B, 2, H, W), ``data_precision``, ``edge_weights``
    as in :func:`gbp_torch.grid.solve` (also its edge ``offsets``); ``init`` a previous result (or mean) to warm-start
    from (e.g. the previous frame or warp). The warm start is used as given: ``unroll``
    differentiates through it; ``truncated`` and ``implicit`` treat it as a constant (their
    gradients are those of the fixed point, which does not depend on it). Returns a
    :class:`~gbp_torch.grid.GridResult` (``.mean``, ``.var``). The solve runs with autocast
    disabled: float16 / bfloat16 inputs (a CNN under mixed precision) are upcast to float32.
    """

    def __init__(self, iters: int | None = None, tol: float | None = None, config: GridConfig | None = None,
                 backward: BackwardLike = "unroll", robust: GridRobust | None = None):
        super().__init__()
        _check_iters_tol(iters, tol, allow_none=True)
        if not isinstance(config, (GridConfig, type(None))):
            raise ValueError(f"config must be a GridConfig, got {type(config).__name__}")
        if not isinstance(robust, (GridRobust, type(None))):
            raise ValueError(f"robust must be None or a GridRobust, got {type(robust).__name__}")
        self.iters, self.tol, self.robust = iters, tol, robust
        self.config = GridConfig() if config is None else config
        self.backward = as_backward(backward)

    def forward(self, z: Tensor, data_precision, edge_weights, iters: int | None = None,
                init: GridResult | Tensor | None = None, mask: Tensor | None = None,
                robust: GridRobust | None = None, backward: BackwardLike | None = None,
                offsets: tuple[Tensor, Tensor] | None = None) -> GridResult:
        """Solve; ``iters``, ``robust`` and ``backward`` override the constructor's for this call."""
        x0 = init.mean if isinstance(init, GridResult) else init
        z, data_precision, edge_weights, x0, mask, offsets = _at_least_float32(z, data_precision, edge_weights, x0,
                                                                               mask, offsets)
        with torch.autocast(z.device.type, enabled=False):  # the solve needs full precision
            return solve(z, data_precision, edge_weights, iters=self.iters if iters is None else iters,
                         tol=self.tol, x0=x0, mask=mask, robust=self.robust if robust is None else robust,
                         config=self.config, backward=override(self.backward, backward), offsets=offsets)

    def extra_repr(self) -> str:
        return f"iters={self.iters}, tol={self.tol}, config={self.config}, backward={self.backward.mode.value}"


class MultigridGBP(GridGBP):
    """:class:`GridGBP` with the full multigrid hierarchy (:data:`gbp_torch.grid.MULTIGRID`) by default."""

    def __init__(self, iters: int | None = None, tol: float | None = None, config: GridConfig | None = None,
                 backward: BackwardLike = "unroll", robust: GridRobust | None = None):
        super().__init__(iters, tol, MULTIGRID if config is None else config, backward, robust)

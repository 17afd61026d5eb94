"""nn.Module wrappers: thin holders of solver settings around the functional API."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .backward import BackwardLike, as_backward_mode, solve_graph
from .factor_graph import FactorGraph, GBPResult
from .grid.solve import GridResult, solve
from .schedules import ScheduleLike, as_schedule


class GBPLayer(nn.Module):
    """GBP on a general factor graph as a layer.

    Build the graph in your model's forward from network outputs (means,
    precisions, robust thresholds as tensors), then call the layer; gradients
    reach every factor tensor by the chosen backward mode. Settings given at
    call time override the constructor's.

    Example::

        layer = GBPLayer(iters=50, backward="implicit")
        result = layer(graph)            # GBPResult; result.mean(group) is differentiable
        result = layer(graph, iters=10)  # cheaper call
    """

    def __init__(self, iters: int = 100, tol: float | None = None, damping: float = 0.0,
                 schedule: ScheduleLike = "sync", backward: BackwardLike = "unroll", truncate: int = 10):
        super().__init__()
        self.iters, self.tol, self.damping, self.truncate = iters, tol, damping, truncate
        self.schedule = as_schedule(schedule)
        self.backward = as_backward_mode(backward)

    def forward(self, graph: FactorGraph, iters: int | None = None, tol: float | None = None,
                backward: BackwardLike | None = None, init: GBPResult | None = None) -> GBPResult:
        """Solve ``graph``; ``init`` warm-starts from a previous result of the same structure."""
        return solve_graph(graph, iters=iters or self.iters, tol=self.tol if tol is None else tol,
                           damping=self.damping, schedule=self.schedule,
                           backward=self.backward if backward is None else backward, truncate=self.truncate,
                           init=init)

    def extra_repr(self) -> str:
        return f"iters={self.iters}, tol={self.tol}, damping={self.damping}, backward={self.backward.value}"


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
        iters: GBP iterations (levels = 1) or V-cycle / FCG steps (multigrid).
        levels: 1 = flat GBP; None = full multigrid hierarchy; k = at most k levels.
        tol: optional stopping tolerance on the relative residual.
        backward: "unroll", "truncated" (last ``truncate`` iterations recorded) or
            "implicit" (adjoint multigrid solve; memory constant in ``iters``).
        solver_kwargs: any other :func:`gbp_torch.grid.solve` option (robust, damping, method, ...).

    Forward: ``z`` (B, H, W) or (B, 2, H, W), ``data_precision``, ``edge_weights`` as in
    :func:`gbp_torch.grid.solve`; ``init`` a previous result (or mean) to warm-start from
    (e.g. the previous video frame); call-time ``iters`` / ``backward`` override the
    constructor's. Returns a :class:`~gbp_torch.grid.GridResult` (``.mean``, ``.var``).
    The solve runs with autocast disabled: float16 / bfloat16 inputs (a CNN under
    mixed precision) are upcast to float32.
    """

    def __init__(self, iters: int | None = None, levels: int | None = 1, tol: float | None = None,
                 backward: BackwardLike = "unroll", truncate: int = 5, **solver_kwargs):
        super().__init__()
        self.iters, self.levels, self.tol, self.truncate = iters, levels, tol, truncate
        self.backward = as_backward_mode(backward)
        self.solver_kwargs = solver_kwargs

    def forward(self, z: Tensor, data_precision, edge_weights, iters: int | None = None,
                init: GridResult | Tensor | None = None, backward: BackwardLike | None = None) -> GridResult:
        x0 = init.mean if isinstance(init, GridResult) else init
        z, data_precision, edge_weights, x0 = _at_least_float32(z, data_precision, edge_weights, x0)
        with torch.autocast(z.device.type, enabled=False):  # the solve needs full precision
            return solve(z, data_precision, edge_weights, iters=self.iters if iters is None else iters,
                         levels=self.levels, tol=self.tol, x0=None if x0 is None else x0.detach(),
                         backward=self.backward.value if backward is None else backward, truncate=self.truncate,
                         **self.solver_kwargs)

    def extra_repr(self) -> str:
        return f"iters={self.iters}, levels={self.levels}, tol={self.tol}, backward={self.backward.value}"


class MultigridGBP(GridGBP):
    """:class:`GridGBP` with the full multigrid hierarchy (``levels=None``) by default."""

    def __init__(self, iters: int | None = None, levels: int | None = None, tol: float | None = None,
                 backward: BackwardLike = "unroll", truncate: int = 5, **solver_kwargs):
        super().__init__(iters, levels, tol, backward, truncate, **solver_kwargs)

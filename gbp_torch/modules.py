"""nn.Module wrappers: thin holders of solver settings around the functional API."""

from __future__ import annotations

from torch import nn

from .backward import BackwardLike, as_backward_mode, solve_graph
from .factor_graph import FactorGraph, GBPResult
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
                backward: BackwardLike | None = None) -> GBPResult:
        return solve_graph(graph, iters=iters or self.iters, tol=self.tol if tol is None else tol,
                           damping=self.damping, schedule=self.schedule,
                           backward=self.backward if backward is None else backward, truncate=self.truncate)

    def extra_repr(self) -> str:
        return f"iters={self.iters}, tol={self.tol}, damping={self.damping}, backward={self.backward.value}"

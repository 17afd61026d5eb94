"""How gradients flow back through a solve: the backward mode and its settings.

Ground floor: imports nothing of the engines, so the general factor-graph engine,
the grid solver and the modules all read their backward settings from here.

- ``unroll``: autograd through every iteration (memory O(T)).
- ``truncated``: solve unrecorded, then record ``truncate`` more iterations (memory O(K)).
- ``implicit``: solve unrecorded; at the fixed point an adjoint system with the
  solver's own precision is solved (memory O(1) in T; see :mod:`gbp_torch.adjoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Union


class BackwardMode(str, Enum):
    UNROLL = "unroll"
    TRUNCATED = "truncated"
    IMPLICIT = "implicit"


def as_backward_mode(mode: BackwardMode | str) -> BackwardMode:
    """A :class:`BackwardMode` from itself or its name."""
    try:
        return BackwardMode(mode)
    except ValueError:
        raise ValueError(f"unknown backward mode {mode!r}; choose one of {[m.value for m in BackwardMode]}") from None


@dataclass(frozen=True)
class BackwardConfig:
    """Backward settings of a solve.

    Attributes:
        mode: ``"unroll"``, ``"truncated"`` or ``"implicit"`` (or a :class:`BackwardMode`).
        truncate: iterations recorded by the truncated mode (K >= 1).
        adjoint_iters: iteration cap of each adjoint solve (implicit; None: the
            solver's default: the forward ``iters`` for the general engine, 100 FCG
            steps on grids).
        adjoint_tol: relative tolerance of the adjoint solves (None: the forward
            ``tol``, or 1e-10 without one).
        adjoint_cg_iters: conjugate-gradient steps on the exact Hessian when it
            differs from the solver's precision (robust or nonlinear factors).
    """

    mode: BackwardMode = BackwardMode.UNROLL
    truncate: int = 5
    adjoint_iters: int | None = None
    adjoint_tol: float | None = None
    adjoint_cg_iters: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", as_backward_mode(self.mode))
        if not isinstance(self.truncate, int) or self.truncate < 1:
            raise ValueError(f"truncate must be an int >= 1, got {self.truncate!r}")
        if self.adjoint_iters is not None and (not isinstance(self.adjoint_iters, int) or self.adjoint_iters < 1):
            raise ValueError(f"adjoint_iters must be None or an int >= 1, got {self.adjoint_iters!r}")
        if self.adjoint_tol is not None and not self.adjoint_tol > 0:
            raise ValueError(f"adjoint_tol must be None or > 0, got {self.adjoint_tol!r}")
        if not isinstance(self.adjoint_cg_iters, int) or self.adjoint_cg_iters < 1:
            raise ValueError(f"adjoint_cg_iters must be an int >= 1, got {self.adjoint_cg_iters!r}")

    def tolerance(self, forward_tol: float | None) -> float:
        """The adjoint tolerance: ``adjoint_tol``, else the forward one, else 1e-10."""
        if self.adjoint_tol is not None:
            return self.adjoint_tol
        return forward_tol if forward_tol is not None else 1e-10


BackwardLike = Union[str, BackwardMode, BackwardConfig]


def override(base: BackwardConfig, backward: BackwardLike | None) -> BackwardConfig:
    """``base`` for a call that gives ``backward``: a config replaces it, a mode (or its name)
    keeps base's other settings (truncate, adjoint limits), None keeps base."""
    if backward is None:
        return base
    if isinstance(backward, BackwardConfig):
        return backward
    return replace(base, mode=as_backward_mode(backward))


def as_backward(backward: BackwardLike) -> BackwardConfig:
    """A :class:`BackwardConfig` from itself, a mode or a mode's name (default settings)."""
    if isinstance(backward, BackwardConfig):
        return backward
    return BackwardConfig(mode=as_backward_mode(backward))

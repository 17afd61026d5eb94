"""Robust grid factors by covariance scaling (IRLS outer iterations).

With Mahalanobis residuals ``r_i = sqrt((x_i - z_i)^T a_i (x_i - z_i))`` (data)
and ``r_ij = sqrt(w_ij) |x_i - x_j|`` (smoothness) at the current estimate, the
precisions are multiplied by the kernel weights ``w(r; k)``; repeated solves
converge to a stationary point of ``sum rho_data(r_i) + sum rho_smooth(r_ij)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import robust as _robust
from . import blocks
from .system import GridSystem, right_hand_side, squared_differences

RobustKernel = _robust.RobustKernel


@dataclass(frozen=True)
class GridRobust:
    """Which grid terms are robust, and how many IRLS reweightings to run.

    Attributes:
        data: kernel on data residuals; ``k`` a number or a (B, H, W) tensor.
        smooth: kernel on smoothness residuals; ``k`` a number, a tensor
            broadcastable to both edge fields (e.g. (B, 1, 1)), or a pair
            ``(k_h (B, H, W-1), k_v (B, H-1, W))``.
        outer_iters: reweighted solves after the initial least-squares solve.
        outer_tol: stop early when ``max |x_t - x_{t-1}| <= outer_tol * max |x_t|``.
    """

    data: RobustKernel | None = None
    smooth: RobustKernel | None = None
    outer_iters: int = 10
    outer_tol: float | None = None

    def __post_init__(self) -> None:
        for name in ("data", "smooth"):
            kern = getattr(self, name)
            if kern is not None and not isinstance(kern, RobustKernel):
                raise ValueError(f"GridRobust.{name} must be a RobustKernel or None, got {type(kern).__name__}")
        if self.data is None and self.smooth is None:
            raise ValueError("GridRobust needs a data or a smooth kernel")
        if not isinstance(self.outer_iters, int) or self.outer_iters < 0:
            raise ValueError(f"outer_iters must be an int >= 0, got {self.outer_iters!r}")
        if self.outer_tol is not None and not self.outer_tol > 0:
            raise ValueError(f"outer_tol must be None or > 0, got {self.outer_tol!r}")


def safe_sqrt(q: Tensor) -> Tensor:
    """sqrt with a zero (not NaN) gradient at q = 0."""
    pos = q > 0
    return torch.where(pos, torch.where(pos, q, torch.ones_like(q)).sqrt(), torch.zeros_like(q))


def data_residual(a: Tensor, x: Tensor, z: Tensor) -> Tensor:
    """Mahalanobis data residuals (B, H, W); a lam field, x, z (B, D, H, W)."""
    r = x - z
    return safe_sqrt((r * blocks.mv(a, r)).sum(1))


def smooth_residuals(wh: Tensor, wv: Tensor, x: Tensor,
                     offsets: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Smoothness residuals ``sqrt(w) |x_j - x_i - c_ij|`` on (B, H, W-1) and (B, H-1, W) (c: the edge
    ``offsets`` of :class:`~.system.GridSystem`, None: 0)."""
    dh, dv = squared_differences(x, offsets)
    return safe_sqrt(wh * dh), safe_sqrt(wv * dv)


def _smooth_thresholds(kernel: RobustKernel) -> tuple:
    """(k_h, k_v) of a smoothness kernel whose ``k`` is one threshold or a pair."""
    return tuple(kernel.k) if isinstance(kernel.k, (tuple, list)) else (kernel.k, kernel.k)


def reweight(sys: GridSystem, z: Tensor, x: Tensor, robust: GridRobust) -> GridSystem:
    """The covariance-scaled system at estimate x (B, D, H, W); sys is the unweighted one."""
    a, wh, wv = sys.a, sys.wh, sys.wv
    if robust.data is not None:
        a = blocks.scale(a, robust.data.weight(data_residual(a, x, z)))
    if robust.smooth is not None:
        kh, kv = _smooth_thresholds(robust.smooth)
        rh, rv = smooth_residuals(wh, wv, x, sys.offsets)
        wh, wv = wh * robust.smooth.weight(rh, kh), wv * robust.smooth.weight(rv, kv)
    return GridSystem(a=a, wh=wh, wv=wv, b=right_hand_side(a, z, wh, wv, sys.offsets), offsets=sys.offsets)


def robust_energy(sys: GridSystem, z: Tensor, x: Tensor, robust: GridRobust) -> Tensor:
    """``sum rho_data(r_i) + sum rho_smooth(r_ij)`` per batch item, (B,) (l2 where no kernel)."""
    rd = data_residual(sys.a, x, z)
    rh, rv = smooth_residuals(sys.wh, sys.wv, x, sys.offsets)
    ed = robust.data.energy(rd) if robust.data is not None else 0.5 * rd * rd
    if robust.smooth is not None:
        kh, kv = _smooth_thresholds(robust.smooth)
        eh, ev = robust.smooth.energy(rh, kh), robust.smooth.energy(rv, kv)
    else:
        eh, ev = 0.5 * rh * rh, 0.5 * rv * rv
    return ed.flatten(1).sum(1) + eh.flatten(1).sum(1) + ev.flatten(1).sum(1)

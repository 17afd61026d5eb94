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
from .system import GridSystem

RobustKernel = _robust.RobustKernel


@dataclass
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


def as_grid_robust(robust) -> GridRobust | None:
    """Accept None, :class:`GridRobust` or a dict with keys data / smooth / outer_iters / outer_tol."""
    if robust is None or isinstance(robust, GridRobust):
        return robust
    if isinstance(robust, dict):
        bad = set(robust) - {"data", "smooth", "outer_iters", "outer_tol"}
        if bad:
            raise ValueError(f"robust dict has unknown keys {sorted(bad)}; use data, smooth, outer_iters, outer_tol")
        kw = dict(robust)
        for key in ("data", "smooth"):
            if isinstance(kw.get(key), str):
                kw[key] = RobustKernel(kw[key])
        return GridRobust(**kw)
    raise ValueError("robust must be None, a GridRobust or a dict(data=RobustKernel(...), smooth=RobustKernel(...)); "
                     f"got {type(robust).__name__} (a bare kernel is ambiguous: data or smoothness?)")


def safe_sqrt(q: Tensor) -> Tensor:
    """sqrt with a zero (not NaN) gradient at q = 0."""
    pos = q > 0
    return torch.where(pos, torch.where(pos, q, torch.ones_like(q)).sqrt(), torch.zeros_like(q))


def data_residual(a: Tensor, x: Tensor, z: Tensor) -> Tensor:
    """Mahalanobis data residuals (B, H, W); a lam field, x, z (B, D, H, W)."""
    r = x - z
    return safe_sqrt((r * blocks.mv(a, r)).sum(1))


def smooth_residuals(wh: Tensor, wv: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    """Smoothness residuals ``sqrt(w) |x_i - x_j|`` on (B, H, W-1) and (B, H-1, W)."""
    dh = (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum(1)
    dv = (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum(1)
    return safe_sqrt(wh * dh), safe_sqrt(wv * dv)


def _smooth_kernels(kernel: RobustKernel) -> tuple[RobustKernel, RobustKernel]:
    if isinstance(kernel.k, (tuple, list)):
        return RobustKernel(kernel.name, kernel.k[0]), RobustKernel(kernel.name, kernel.k[1])
    return kernel, kernel


def reweight(sys: GridSystem, z: Tensor, x: Tensor, robust: GridRobust) -> GridSystem:
    """The covariance-scaled system at estimate x (B, D, H, W); sys is the unweighted one."""
    a, wh, wv = sys.a, sys.wh, sys.wv
    if robust.data is not None:
        a = blocks.scale(a, robust.data.weight(data_residual(a, x, z)))
    if robust.smooth is not None:
        kh, kv = _smooth_kernels(robust.smooth)
        rh, rv = smooth_residuals(wh, wv, x)
        wh, wv = wh * kh.weight(rh), wv * kv.weight(rv)
    return GridSystem(a=a, wh=wh, wv=wv, b=blocks.mv(a, z))


def robust_energy(sys: GridSystem, z: Tensor, x: Tensor, robust: GridRobust) -> Tensor:
    """``sum rho_data(r_i) + sum rho_smooth(r_ij)`` per batch item, (B,) (l2 where no kernel)."""
    rd = data_residual(sys.a, x, z)
    rh, rv = smooth_residuals(sys.wh, sys.wv, x)
    ed = robust.data.energy(rd) if robust.data is not None else 0.5 * rd * rd
    if robust.smooth is not None:
        kh, kv = _smooth_kernels(robust.smooth)
        eh, ev = kh.energy(rh), kv.energy(rv)
    else:
        eh, ev = 0.5 * rh * rh, 0.5 * rv * rv
    return ed.flatten(1).sum(1) + eh.flatten(1).sum(1) + ev.flatten(1).sum(1)

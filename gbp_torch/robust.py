"""Robust kernels as iteratively-reweighted-least-squares (IRLS) weights.

A robust factor with Mahalanobis residual ``r >= 0`` and threshold ``k > 0`` is
handled by *covariance scaling*: its precision is multiplied by ``w(r; k)``.
At a fixed point this is IRLS, whose fixed points are the stationary points of
the robust energy ``rho(r; k)``.

All functions broadcast ``r`` and ``k`` (``k`` may be a float, a learned
parameter or a per-factor / per-pixel tensor) and are differentiable in both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

Threshold = Union[float, Tensor]

#: Smallest residual and threshold used inside the weights; keeps ``k / r``
#: and ``r / k`` finite (and their gradients NaN-free) as r -> 0 or k -> 0.
EPS = 1e-12


def _as_tensor(k: Threshold, like: Tensor) -> Tensor:
    """k as a tensor of r's dtype and device (validated once, by :class:`RobustKernel`)."""
    return torch.as_tensor(k, dtype=like.dtype, device=like.device)


def check_threshold(k, name: str = "robust threshold k") -> None:
    """Raise ValueError unless every threshold in ``k`` (a number, tensor or a tuple of them) is
    finite and > 0 (one host synchronisation per tensor)."""
    for part in k if isinstance(k, (tuple, list)) else (k,):
        t = part.detach() if isinstance(part, Tensor) else torch.as_tensor(part, dtype=torch.float64)
        if not bool(torch.isfinite(t).all() and (t > 0).all()):
            raise ValueError(f"{name} must be finite and > 0 everywhere (produce learned thresholds with "
                             "softplus + floor)")


def huber_weight(r: Tensor, k: Threshold) -> Tensor:
    """Huber: ``w = 1`` for ``r <= k`` else ``k / r``. Shapes broadcast."""
    k = _as_tensor(k, r)
    return torch.where(r <= k, torch.ones_like(r), k / r.clamp_min(EPS))


def tukey_weight(r: Tensor, k: Threshold) -> Tensor:
    """Tukey biweight: ``w = (1 - (r/k)^2)^2`` for ``r <= k`` else 0 (redescending)."""
    k = _as_tensor(k, r)
    t = (r / k.clamp_min(EPS)).clamp(max=1.0)
    return (1.0 - t * t) ** 2


def cauchy_weight(r: Tensor, k: Threshold) -> Tensor:
    """Cauchy / Lorentzian: ``w = 1 / (1 + (r/k)^2)``."""
    k = _as_tensor(k, r)
    t = r / k.clamp_min(EPS)
    return 1.0 / (1.0 + t * t)


def l2_weight(r: Tensor, k: Threshold = 1.0) -> Tensor:
    """Plain least squares: ``w = 1`` (``k`` ignored)."""
    return torch.ones_like(r)


def huber_energy(r: Tensor, k: Threshold) -> Tensor:
    """Huber energy ``rho``: ``r^2/2`` inside, ``k r - k^2/2`` outside."""
    k = _as_tensor(k, r)
    return torch.where(r <= k, 0.5 * r * r, k * r - 0.5 * k * k)


def tukey_energy(r: Tensor, k: Threshold) -> Tensor:
    """Tukey energy: ``k^2/6 (1 - (1 - (r/k)^2)^3)`` inside, ``k^2/6`` outside."""
    k = _as_tensor(k, r)
    t = (r / k).clamp(max=1.0)
    return k * k / 6.0 * (1.0 - (1.0 - t * t) ** 3)


def cauchy_energy(r: Tensor, k: Threshold) -> Tensor:
    """Cauchy energy: ``k^2/2 log(1 + (r/k)^2)``."""
    k = _as_tensor(k, r)
    return 0.5 * k * k * torch.log1p((r / k) ** 2)


def l2_energy(r: Tensor, k: Threshold = 1.0) -> Tensor:
    """Least-squares energy ``r^2 / 2``."""
    return 0.5 * r * r


_KERNELS: dict[str, tuple[Callable, Callable]] = {
    "huber": (huber_weight, huber_energy),
    "tukey": (tukey_weight, tukey_energy),
    "cauchy": (cauchy_weight, cauchy_energy),
    "l2": (l2_weight, l2_energy),
}


@dataclass
class RobustKernel:
    """A named kernel with its threshold.

    Args:
        name: one of ``"huber"``, ``"tukey"``, ``"cauchy"``, ``"l2"``.
        k: threshold on the Mahalanobis residual; float or tensor broadcastable
            to the residuals it is applied to (e.g. (F,) per factor, (B, H, W)
            per pixel). Must be > 0; produce learned thresholds with softplus.
    """

    name: str
    k: Threshold = 1.0

    def __post_init__(self) -> None:
        if self.name not in _KERNELS:
            raise ValueError(f"unknown robust kernel {self.name!r}; choose one of {sorted(_KERNELS)}")
        check_threshold(self.k, f"threshold k of the {self.name!r} kernel")

    def weight(self, r: Tensor, k: Threshold | None = None) -> Tensor:
        """IRLS weight ``w(r; k)`` (same shape as the broadcast of r and k); ``k`` overrides
        the kernel's own threshold (e.g. one part of a pair), unchecked."""
        return _KERNELS[self.name][0](r, self.k if k is None else k)

    def energy(self, r: Tensor, k: Threshold | None = None) -> Tensor:
        """Robust energy ``rho(r; k)``; its IRLS weight is ``rho'(r) / r``."""
        return _KERNELS[self.name][1](r, self.k if k is None else k)


def as_kernel(robust: "RobustKernel | str | None", k: Threshold = 1.0) -> "RobustKernel | None":
    """Accept ``None``, a kernel name (with ``k``) or a :class:`RobustKernel`."""
    if robust is None or isinstance(robust, RobustKernel):
        return robust
    return RobustKernel(robust, k)

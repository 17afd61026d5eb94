"""Robust penalties as IRLS weights: the generalised Charbonnier family.

``rho(r) = k^2 / (2 alpha) ((1 + (r / k)^2)^alpha - 1)`` has the IRLS weight
``w(r) = rho'(r) / r = (1 + (r / k)^2)^(alpha - 1)``: quadratic for r << k, ``r^(2 alpha)`` beyond.
alpha = 1 is least squares, 0.5 the Charbonnier (pseudo-Huber) penalty, 0.45 the value of Sun, Roth
and Black ("Secrets of optical flow"), alpha -> 0 the Cauchy / Lorentzian.
"""

from __future__ import annotations

import torch
from torch import Tensor


def charbonnier_weight(r_sq: Tensor, k: Tensor | float, alpha: float = 0.45) -> Tensor:
    """IRLS weight ``(1 + r^2 / k^2)^(alpha - 1)`` in (0, 1] of the *squared* residual ``r_sq = r^2`` (>= 0;
    k > 0; they broadcast). Taking r^2 keeps the gradient finite at r = 0, where ``sqrt`` has none (a
    weight at a solved flow, whose neighbours the median filter often makes equal, gave NaN gradients)."""
    return (1 + r_sq / torch.as_tensor(k).square()).pow(alpha - 1)


def gnc_weight(weight: Tensor, robustness: float) -> Tensor:
    """Graduated non-convexity: ``(1 - g) + g * weight``, g in [0, 1] (0: least squares, 1: robust)."""
    return weight if robustness >= 1 else (1 - robustness) + robustness * weight

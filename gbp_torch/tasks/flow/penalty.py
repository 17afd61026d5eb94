"""Robust penalties as IRLS weights: the generalised Charbonnier family.

``rho(r) = k^2 / (2 alpha) ((1 + (r / k)^2)^alpha - 1)`` has the IRLS weight
``w(r) = rho'(r) / r = (1 + (r / k)^2)^(alpha - 1)``: quadratic for r << k, ``r^(2 alpha)`` beyond.
alpha = 1 is least squares, 0.5 the Charbonnier (pseudo-Huber) penalty, 0.45 the value of Sun, Roth
and Black ("Secrets of optical flow"), alpha -> 0 the Cauchy / Lorentzian.
"""

from __future__ import annotations

from torch import Tensor


def charbonnier_weight(r: Tensor, k: Tensor | float, alpha: float = 0.45) -> Tensor:
    """IRLS weight ``(1 + (r / k)^2)^(alpha - 1)`` in (0, 1]; r >= 0 and k > 0 broadcast."""
    return (1 + (r / k).square()).pow(alpha - 1)


def gnc_weight(weight: Tensor, robustness: float) -> Tensor:
    """Graduated non-convexity: ``(1 - g) + g * weight``, g in [0, 1] (0: least squares, 1: robust)."""
    return weight if robustness >= 1 else (1 - robustness) + robustness * weight

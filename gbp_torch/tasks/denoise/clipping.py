"""Noisy images clipped to [0, 1] (as every 8- or 16-bit file is): the bias clipping leaves in a Gaussian denoiser.

A pixel of clean value x in [0, 1] with Gaussian noise of std s, clipped to [0, 1], has the mean

    E(x) = x (Phi(b) - Phi(a)) + s (phi(a) - phi(b)) + 1 - Phi(b),    a = -x / s,  b = (1 - x) / s,

with slope E'(x) = Phi(b) - Phi(a), the probability that it is not clipped. Near 0 and 1 the mean lies
inside, by 0.4 s at x = 0: a denoiser trained on unclipped noise averages noisy values and so estimates
E(x), not x; dark regions come out lifted, bright ones lowered, and its variance does not know. The
inverse of E (Newton from the estimate: E is convex below 1/2 and concave above, so the steps approach the
root from one side) gives x, and the delta method divides the variance by E'(x)^2 (Foi, "Clipped noisy
images: heteroskedastic modeling and practical denoising", Signal Processing 2009, inverts the same map).

On Train400 images 100-123 with 8-bit noisy inputs and the default model: sigma 15 / 25 / 50,
32.41 -> 32.47, 29.74 -> 29.90, 25.95 -> 26.61 dB; coverage 0.948 -> 0.960, 0.932 -> 0.956, 0.872 -> 0.945.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...io.image import SAMPLE_BITS

#: Newton steps of :func:`unclip` (from the clipped mean; 5 reach float32 precision on [0, 1]).
NEWTON_STEPS = 8


def clipped_mean(x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """``E(x)`` and ``E'(x)`` (module docstring) for clean values x and noise stds sigma (broadcastable, > 0)."""
    sigma = sigma.clamp_min(1e-6)
    a, b = -x / sigma, (1.0 - x) / sigma
    cdf_a, cdf_b = torch.special.ndtr(a), torch.special.ndtr(b)
    pdf_gap = (torch.exp(-0.5 * a.square()) - torch.exp(-0.5 * b.square())) / math.sqrt(2 * math.pi)
    slope = cdf_b - cdf_a
    return x * slope + sigma * pdf_gap + 1.0 - cdf_b, slope


def is_clipped(noisy: Tensor) -> Tensor:
    """(B, C) bool: channels whose values all lie in [0, 1] and some at exactly 0 or 1. noisy (B, C, H, W), floating
    point, or uint8 / uint16 samples (clipped where some are 0 or full scale).

    Unclipped noise leaves values outside [0, 1] (or none exactly at the bounds) and is left alone."""
    flat = noisy.flatten(2)
    if noisy.dtype in SAMPLE_BITS:
        return ((flat == 0) | (flat == (1 << SAMPLE_BITS[noisy.dtype]) - 1)).any(2)
    inside = ((flat >= 0) & (flat <= 1)).all(2)
    at_bound = ((flat == 0) | (flat == 1)).any(2)
    return inside & at_bound


def unclip(mean: Tensor, var: Tensor | None, sigma: Tensor, clipped: Tensor) -> tuple[Tensor, Tensor | None]:
    """Estimates of ``E(x)`` -> of x, where ``clipped``; elsewhere unchanged. Differentiable (through the Newton
    steps); :func:`unclip_` does the same in place in bounded memory.

    Args:
        mean: (B, C, H, W) a Gaussian denoiser's output on clipped noisy input.
        var: (B, C, H, W) its variances, or None.
        sigma: (B, C) the noise stds of the channels (0-1 scale; 0: left alone).
        clipped: (B, C) bool, e.g. :func:`is_clipped` of the noisy input.
    Returns:
        new tensors (x, var / E'(x)^2), x in [0, 1] where clipped.
    """
    clipped = clipped & (sigma > 0)  # no noise, nothing to undo
    if not bool(clipped.any()):
        return mean, var
    x, slope = _invert(mean, sigma.to(mean).view(*sigma.shape, 1, 1))
    keep = clipped.view(*clipped.shape, 1, 1)
    out = torch.where(keep, x, mean)
    return out, None if var is None else torch.where(keep, var / slope.square().clamp_min(1e-12), var)


#: Values per band of :func:`unclip_` (its temporaries stay a few times this size).
CHUNK = 1 << 20


def unclip_(mean: Tensor, var: Tensor | None, sigma: Tensor, clipped: Tensor) -> tuple[Tensor, Tensor | None]:
    """:func:`unclip` in place on ``mean`` and ``var`` (returned), one channel and about :data:`CHUNK` values (a band of
    rows) at a time. Not for tensors that autograd needs."""
    clipped = clipped & (sigma > 0)
    for b, c in clipped.nonzero().tolist():  # (image, channel) pairs: a few
        s = sigma[b, c].to(mean)
        m = mean[b, c]
        v = None if var is None else var[b, c]
        rows = max(1, CHUNK // m.shape[-1])
        for start in range(0, m.shape[0], rows):
            part = slice(start, start + rows)  # a band of rows: a view whatever the strides
            x, slope = _invert(m[part], s)
            m[part] = x
            if v is not None:
                v[part] = v[part] / slope.square().clamp_min(1e-12)
    return mean, var


def _invert(estimate: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
    """x in [0, 1] with ``E(x)`` = the estimate clamped to ``[E(0), E(1)]`` (E maps [0, 1] onto it), and E'(x)."""
    lowest, _ = clipped_mean(torch.zeros_like(sigma), sigma)
    highest, _ = clipped_mean(torch.ones_like(sigma), sigma)
    target = torch.minimum(torch.maximum(estimate, lowest), highest)
    x = target
    for _ in range(NEWTON_STEPS):
        e, slope = clipped_mean(x, sigma)
        x = (x - (e - target) / slope.clamp_min(1e-12)).clamp(0.0, 1.0)
    return x, clipped_mean(x, sigma)[1]

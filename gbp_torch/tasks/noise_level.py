"""Estimating the level of additive white Gaussian noise from the noisy image alone.

Used by blind denoising: a sigma-conditioned denoiser is given the estimate when
the caller has no noise level. The estimator is the median absolute deviation of
the finest diagonal Haar wavelet coefficients (Donoho & Johnstone's rule):
``HH = (x00 - x01 - x10 + x11) / 2`` has variance sigma^2 under white noise and is
close to zero on smooth image regions, so ``median(|HH|) / 0.6745`` estimates sigma.
Texture makes it overestimate a little at low noise levels.
"""

from __future__ import annotations

from torch import Tensor

#: median(|N(0, 1)|)
MAD_TO_SIGMA = 0.6744897501960817


def estimate_noise_sigma(noisy: Tensor) -> Tensor:
    """noisy (B, C, H, W) with H, W >= 2 -> (B,) estimated noise std (same scale as the input)."""
    if noisy.dim() != 4 or noisy.shape[-1] < 2 or noisy.shape[-2] < 2:
        raise ValueError(f"noisy must be (B, C, H, W) with H, W >= 2, got {tuple(noisy.shape)}")
    h, w = noisy.shape[-2] // 2 * 2, noisy.shape[-1] // 2 * 2
    x = noisy[..., :h, :w]
    hh = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    return hh.abs().flatten(1).median(dim=1).values / MAD_TO_SIGMA

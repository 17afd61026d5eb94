"""Synthetic noise for denoising: Gaussian (fixed or per-image sigma) and salt-and-pepper.

Random numbers come from ``generator`` (on its own device) when given, so noise is
reproducible whatever device the images live on.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _rand(fn, like: Tensor, generator: torch.Generator | None) -> Tensor:
    dev = generator.device if generator is not None else like.device
    return fn(like.shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def add_gaussian_noise(clean: Tensor, sigma: Tensor | float, generator: torch.Generator | None = None) -> Tensor:
    """clean (B, C, H, W) + N(0, sigma^2); sigma a float or (B,) on the same scale as ``clean``.
    The result is not clipped (the standard DnCNN protocol)."""
    sigma = torch.as_tensor(sigma, dtype=clean.dtype, device=clean.device)
    if sigma.dim() == 1:
        sigma = sigma.view(-1, *([1] * (clean.dim() - 1)))
    return clean + sigma * _rand(torch.randn, clean, generator)


def add_salt_pepper(clean: Tensor, rate: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Replace a fraction ``rate`` (a float, or (B,) per image) of the pixels of clean (B, C, H, W)
    in [0, 1] by 0 or 1 (equal odds)."""
    rate_t = torch.as_tensor(rate, dtype=clean.dtype, device=clean.device)
    if not bool(((rate_t >= 0) & (rate_t <= 1)).all()):
        raise ValueError(f"salt-and-pepper rate must be in [0, 1], got {rate}")
    if rate_t.dim() == 1:
        rate_t = rate_t.reshape(-1, *([1] * (clean.dim() - 1)))
    hit = _rand(torch.rand, clean, generator) < rate_t
    salt = (_rand(torch.rand, clean, generator) < 0.5).to(clean.dtype)
    return torch.where(hit, salt, clean)

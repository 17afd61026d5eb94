"""Per-image image-quality metrics on tensors (B, 1, H, W) in [0, 1]."""

from __future__ import annotations

import torch
from torch import Tensor


def psnr(estimate: Tensor, clean: Tensor, peak: float = 1.0) -> Tensor:
    """PSNR in dB per image, (B,); the estimate is clipped to [0, peak] first."""
    mse = (estimate.clamp(0, peak) - clean).square().flatten(1).mean(1)
    return 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-12))


def ssim(estimate: Tensor, clean: Tensor) -> Tensor:
    """SSIM per image, (B,) (Gaussian window 11, sigma 1.5, via torchmetrics); estimate clipped to [0, 1].
    Computed in float32 with autocast off (its window sums cancel badly in bfloat16)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    with torch.autocast(estimate.device.type, enabled=False):
        return structural_similarity_index_measure(estimate.clamp(0, 1).float(), clean.float(), data_range=1.0,
                                                   reduction="none")


def coverage(estimate: Tensor, var: Tensor, clean: Tensor, z: float = 1.96) -> Tensor:
    """Fraction of pixels per image with |estimate - clean| < z * sqrt(var), (B,)
    (0.95 for calibrated Gaussian uncertainty at z = 1.96)."""
    return ((estimate - clean).abs() < z * var.clamp_min(0).sqrt()).float().flatten(1).mean(1)

"""Per-image image-quality metrics on tensors (B, 1, H, W) in [0, 1]: PSNR and coverage from
:mod:`gbp_torch.metrics`, and SSIM (torchmetrics, a training dependency)."""

from __future__ import annotations

import torch
from torch import Tensor

from gbp_torch.metrics import coverage, psnr

__all__ = ["coverage", "psnr", "ssim"]


def ssim(estimate: Tensor, clean: Tensor) -> Tensor:
    """SSIM per image, (B,) (Gaussian window 11, sigma 1.5, via torchmetrics); estimate clipped to [0, 1].
    Computed in float32 with autocast off (its window sums cancel badly in bfloat16)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    with torch.autocast(estimate.device.type, enabled=False):
        return structural_similarity_index_measure(estimate.clamp(0, 1).float(), clean.float(), data_range=1.0,
                                                   reduction="none")

"""Image-quality and calibration metrics on tensors in [0, 1] (torch only).

Batched functions take (B, ...) tensors and return one value per image, (B,);
:func:`psnr_db` scores a single image of any shape as a float.
"""

from __future__ import annotations

import torch
from torch import Tensor


def psnr(estimate: Tensor, clean: Tensor, peak: float = 1.0) -> Tensor:
    """PSNR in dB per image, (B,); the estimate is clipped to [0, peak] first."""
    mse = (estimate.clamp(0, peak) - clean).square().flatten(1).mean(1)
    return 10.0 * torch.log10(peak**2 / mse.clamp_min(1e-12))


def psnr_db(estimate: Tensor, clean: Tensor, peak: float = 1.0) -> float:
    """PSNR in dB of one image (any shape, e.g. (H, W)); the estimate is clipped to [0, peak]."""
    return float(psnr(estimate.reshape(1, -1), clean.reshape(1, -1), peak)[0])


def coverage(estimate: Tensor, var: Tensor, clean: Tensor, z: float = 1.96) -> Tensor:
    """Fraction of pixels per image with |estimate - clean| < z * sqrt(var), (B,)
    (0.95 for calibrated Gaussian uncertainty at z = 1.96)."""
    return ((estimate - clean).abs() < z * var.clamp_min(0).sqrt()).float().flatten(1).mean(1)

"""The median filter as a denoiser baseline (:func:`gbp_torch.vision.median_filter`, borders replicated)."""

from __future__ import annotations

from torch import Tensor

from ...vision import median_filter


class MedianDenoiser:
    """The median filter as a denoiser: (noisy (B, 1, H, W), sigma) -> (B, 1, H, W); sigma is ignored."""

    def __init__(self, size: int = 3):
        self.size = size

    def __call__(self, noisy: Tensor, sigma: Tensor | None = None) -> Tensor:
        return median_filter(noisy, self.size)

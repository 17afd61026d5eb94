"""The gray level that brightness comparisons read from a colour image."""

from __future__ import annotations

from torch import Tensor

#: ITU-R BT.601 weights of R, G and B
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def luma(image: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 1, H, W): the BT.601 luma of RGB images, gray ones as they are, other channel counts
    averaged."""
    if image.shape[1] == 3:
        return (image * image.new_tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return image if image.shape[1] == 1 else image.mean(1, keepdim=True)


__all__ = ["luma", "LUMA_WEIGHTS"]

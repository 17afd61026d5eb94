"""Shape and dtype guards shared by the public functions of :mod:`gbp_torch.vision`."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..io.image import SAMPLE_BITS, to_unit_float

_MODES = ("bilinear", "bicubic", "bspline", "nearest")


#: floating-point images with a value above this (or below 1 minus it) are refused as 0-255 samples: a noisy image
#: of noise std 1 (the largest sigma the denoisers take) stays inside
UNIT_LIMIT = 8.0


def as_unit_float(image: Tensor, name: str) -> Tensor:
    """An image as floating point in [0, 1]: uint8 samples divided by 255, uint16 by 65535 (as
    ``torchvision.io.read_image`` returns them); floating point unchanged; a ValueError naming the image for
    NaN or inf, for values far outside [0, 1] (:data:`UNIT_LIMIT`: 0-255 samples by mistake) and for other
    dtypes. One min / max pass over the image."""
    if not isinstance(image, Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(image).__name__}")
    if image.dtype in SAMPLE_BITS:
        return to_unit_float(image)[0]
    if not image.is_floating_point():
        raise ValueError(f"{name} must be floating point in [0, 1], uint8 or uint16, got {image.dtype}")
    if image.numel():
        lo, hi = (float(v) for v in torch.aminmax(image.detach()))  # NaN anywhere: both NaN
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"{name} contains NaN or infinite values")
        if hi > UNIT_LIMIT or lo < 1 - UNIT_LIMIT:  # far beyond [0, 1] even with strong noise: 0-255 samples
            raise ValueError(f"{name} must be in [0, 1] (floating point) or uint8 / uint16, got values in "
                             f"[{lo:.4g}, {hi:.4g}]: divide 0-255 samples by 255")
    return image


def check_image(image: Tensor, name: str) -> None:
    """``image`` must be a floating-point (B, C, H, W) tensor."""
    if not isinstance(image, Tensor) or image.dim() != 4:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a (B, C, H, W) tensor, got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {image.dtype}")


def check_field(field: Tensor, name: str, channels: int, image: Tensor, layout: str | None = None) -> None:
    """``field`` must be (B, channels, H, W) with the batch, size and dtype of ``image``."""
    layout = layout or f"(B, {channels}, H, W)"
    batch, _, height, width = image.shape
    expected = (batch, channels, height, width)
    if not isinstance(field, Tensor) or tuple(field.shape) != expected:
        shape = tuple(field.shape) if isinstance(field, Tensor) else type(field).__name__
        raise ValueError(f"{name} must have shape {layout} with (B, H, W) = {(batch, height, width)}, got {shape}")
    if field.dtype != image.dtype:
        raise ValueError(f"{name} must have the image's dtype {image.dtype}, got {field.dtype}")


def as_disparity(disparity: Tensor, name: str, image: Tensor) -> Tensor:
    """Accept (B, H, W) or (B, 1, H, W); return (B, 1, H, W)."""
    if isinstance(disparity, Tensor) and disparity.dim() == 3:
        disparity = disparity[:, None]
    check_field(disparity, name, 1, image, "(B, 1, H, W) or (B, H, W)")
    return disparity


def check_mode(mode: str) -> None:
    """``mode`` must be an interpolation mode of :func:`.sampling.sample`."""
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")

"""Anti-aliased image pyramids and resolution changes of flow / disparity fields.

Each level is the previous one blurred with a Gaussian of sigma = 1 / (2 r)
input pixels (r = ratio), then resized bilinearly. That sigma is half a pixel
of the *output* grid, so the Gaussian passes exp(-pi^2 / 8) ~ 0.29 of the
amplitude at the output's Nyquist frequency (r pi rad / px) for every ratio:
each level is band-limited alike in its own pixels. At r = 0.5 it is the
sigma = 1 of Burt & Adelson's binomial [1, 4, 6, 4, 1] / 16.

Flow and disparity are measured in pixels, so resizing them scales the values:
u by W_new / W_old, v by H_new / H_old.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_image
from .windows import weighted_window_sum


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with replicated borders, (B, C, H, W) -> (B, C, H, W).

    The sampled kernel has radius ceil(3 sigma) and sums to one (constants are
    kept exactly). ``sigma <= 0`` returns ``image`` unchanged.
    """
    check_image(image, "image")
    if sigma <= 0:
        return image
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=image.dtype)  # on the CPU: the taps are read as Python numbers
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    weights = (kernel / kernel.sum()).tolist()
    x = weighted_window_sum(F.pad(image, (radius, radius, 0, 0), mode="replicate"), weights, -1)
    return weighted_window_sum(F.pad(x, (0, 0, radius, radius), mode="replicate"), weights, -2)


def pyramid_sizes(height: int, width: int, levels: int | None = None, ratio: float = 0.5,
                  min_size: int = 16) -> list[tuple[int, int]]:
    """Level sizes ``[(H_0, W_0), (H_1, W_1), ...]``, fine to coarse.

    Sizes are ``round(H r^p) x round(W r^p)`` for p = 0, 1, 2, ... (halves
    rounded up; a size equal to the previous one is skipped). Stops before the
    smaller side would drop below ``min_size`` or after ``levels`` levels
    (None: no limit). The finest level is always included.
    """
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must lie in (0, 1), got {ratio}")
    if levels is not None and levels < 1:
        raise ValueError(f"levels must be >= 1 or None, got {levels}")
    if min_size < 1:
        raise ValueError(f"min_size must be >= 1, got {min_size}")
    sizes, power = [(height, width)], 1
    while levels is None or len(sizes) < levels:
        scale = ratio**power
        size = (math.floor(height * scale + 0.5), math.floor(width * scale + 0.5))
        if min(size) < min_size:
            break
        if size != sizes[-1]:
            sizes.append(size)
        power += 1
    return sizes


def gaussian_pyramid(image: Tensor, levels: int | None = None, ratio: float = 0.5,
                     min_size: int = 16) -> list[Tensor]:
    """Anti-aliased pyramid of ``image`` (B, C, H, W), fine to coarse.

    Args:
        image: (B, C, H, W) floating point.
        levels: at most this many levels, the input included (None: as many as
            ``min_size`` allows).
        ratio: size ratio between levels, in (0, 1); 0.5 for stereo, 0.75 is
            common for optical flow.
        min_size: no level has a side below this (the input excepted).

    Returns:
        list of (B, C, H_l, W_l) tensors with sizes :func:`pyramid_sizes`;
        element 0 is ``image`` itself. Each level is the previous one blurred
        (sigma = 1 / (2 ratio)) and resized bilinearly (align_corners=False).
    """
    check_image(image, "image")
    sizes = pyramid_sizes(image.shape[-2], image.shape[-1], levels, ratio, min_size)
    pyramid = [image]
    for size in sizes[1:]:
        blurred = gaussian_blur(pyramid[-1], 1 / (2 * ratio))
        pyramid.append(F.interpolate(blurred, size=size, mode="bilinear", align_corners=False))
    return pyramid


def upsample_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a flow field to ``size`` = (H, W), scaling its values: (B, 2, h, w) -> (B, 2, H, W).

    Bilinear (align_corners=False, pixel centres aligned); u is multiplied by
    W / w and v by H / h. Also shrinks (anti-aliased) when ``size`` is smaller.
    """
    if not isinstance(flow, Tensor) or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow must be a (B, 2, h, w) tensor, got {_shape(flow)}")
    check_image(flow, "flow")
    height, width = _check_size(size)
    scale = torch.tensor([width / flow.shape[-1], height / flow.shape[-2]], dtype=flow.dtype, device=flow.device)
    return _resize(flow, (height, width)) * scale.view(1, 2, 1, 1)


def upsample_disparity(disparity: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize a disparity map to ``size`` = (H, W), values scaled by W / w.

    ``disparity`` is (B, 1, h, w) or (B, h, w); the result keeps that layout,
    (B, 1, H, W) or (B, H, W). Bilinear as in :func:`upsample_flow`.
    """
    if not isinstance(disparity, Tensor) or not (disparity.dim() == 3 or (disparity.dim() == 4
                                                                          and disparity.shape[1] == 1)):
        raise ValueError(f"disparity must be a (B, 1, h, w) or (B, h, w) tensor, got {_shape(disparity)}")
    squeeze = disparity.dim() == 3
    x = disparity[:, None] if squeeze else disparity
    check_image(x, "disparity")
    height, width = _check_size(size)
    out = _resize(x, (height, width)) * (width / x.shape[-1])
    return out[:, 0] if squeeze else out


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def _check_size(size) -> tuple[int, int]:
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(isinstance(s, int) and s >= 1 for s in size):
        raise ValueError(f"size must be (H, W) with positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__

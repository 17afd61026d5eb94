"""Backward warping of images by flow or disparity fields, with validity masks.

Pixel (x, y) has its centre at integer coordinates, x in [0, W-1] to the right,
y in [0, H-1] down. ``warp(image, flow)`` reads ``image`` at (x + u, y + v);
samples that leave the image are clamped to the border and reported invalid.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ._checks import as_disparity, check_field, check_image, check_mode
from .sampling import sample


class Warped(NamedTuple):
    """Result of :func:`warp` / :func:`warp_disparity`; unpacks as ``image, valid``.

    image: (B, C, H, W) the warped image.
    valid: (B, 1, H, W) bool, True where the sample position lies inside
        [0, W-1] x [0, H-1].
    """

    image: Tensor
    valid: Tensor


def pixel_grid(height: int, width: int, like: Tensor) -> Tensor:
    """Pixel-centre coordinates, (1, 2, H, W): channel 0 is x (column), 1 is y (row).

    Takes the dtype and device of ``like``.
    """
    ys = torch.arange(height, dtype=like.dtype, device=like.device)
    xs = torch.arange(width, dtype=like.dtype, device=like.device)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((x, y))[None]


def warp(image: Tensor, flow: Tensor, mode: str = "bilinear") -> Warped:
    """Backward-warp ``image`` by ``flow``: ``out(x, y) = image(x + u, y + v)``.

    Args:
        image: (B, C, H, W) floating point.
        flow: (B, 2, H, W), same dtype; (u, v) in pixels, u to the right, v down.
        mode: interpolation, ``"bilinear"`` (default, ``grid_sample``),
            ``"bicubic"`` (Keys' a = -0.5, see :mod:`.sampling`), ``"bspline"`` (cubic B-spline interpolation,
            the least phase error on fine texture) or ``"nearest"``.

    Returns:
        :class:`Warped` ``(image (B, C, H, W), valid (B, 1, H, W) bool)``. Samples
        outside the image take the nearest border value and are marked invalid.
        Differentiable w.r.t. ``image`` and ``flow``.
    """
    check_image(image, "image")
    check_field(flow, "flow", 2, image)
    check_mode(mode)
    return Warped(*sample(image, pixel_grid(image.shape[-2], image.shape[-1], image) + flow, mode))


def warp_disparity(image: Tensor, disparity: Tensor, mode: str = "bilinear") -> Warped:
    """Warp the right stereo image to the left view: ``out(x, y) = image(x - d, y)``.

    Stereo convention: left(x, y) matches right(x - d, y), d >= 0 for a
    rectified pair. Equals :func:`warp` with flow ``(-d, 0)``.

    Args:
        image: (B, C, H, W) floating point (the right image).
        disparity: (B, 1, H, W) or (B, H, W), same dtype, in pixels.
        mode: as in :func:`warp`.

    Returns:
        :class:`Warped` ``(image (B, C, H, W), valid (B, 1, H, W) bool)``.
    """
    check_image(image, "image")
    disparity = as_disparity(disparity, "disparity", image)
    check_mode(mode)
    base = pixel_grid(image.shape[-2], image.shape[-1], image)
    coords = torch.cat((base[:, :1] - disparity, base[:, 1:].expand_as(disparity)), dim=1)
    return Warped(*sample(image, coords, mode))

"""Spatial image derivatives: the 5-point central stencil with replicated borders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import check_image


def image_gradients(image: Tensor) -> Tensor:
    """d/dx and d/dy of every channel, (B, C, H, W) -> (B, C, 2, H, W).

    ``out[:, :, 0]`` is d/dx (along W), ``out[:, :, 1]`` is d/dy (along H), by
    the 5-point central stencil f'(x) ~ (8 (f(x+1) - f(x-1)) - (f(x+2) - f(x-2))) / 12
    (exact for quartics, error O(h^4) on smooth images), with replicated
    borders: the outermost two rows / columns see a flattened image. Written
    as differences, so a constant image gives exactly zero. Differentiable;
    any float dtype and device.
    """
    check_image(image, "image")
    p = F.pad(image, (2, 2, 0, 0), mode="replicate")
    dx = (8 * (p[..., 3:-1] - p[..., 1:-3]) - (p[..., 4:] - p[..., :-4])) / 12
    p = F.pad(image, (0, 0, 2, 2), mode="replicate")
    dy = (8 * (p[..., 3:-1, :] - p[..., 1:-3, :]) - (p[..., 4:, :] - p[..., :-4, :])) / 12
    return torch.stack((dx, dy), dim=2)

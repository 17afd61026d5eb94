"""An error map for looking at disparities (the colour maps themselves are :mod:`gbp_torch.io.color`)."""

from __future__ import annotations

import torch
from torch import Tensor


def error_image(disparity: Tensor, gt: Tensor, mask: Tensor, threshold: float = 1.0) -> Tensor:
    """(H, W) inputs -> (3, H, W): gray where correct, red where ``|error| > threshold`` on ``mask``,
    dark where not evaluated (mask false or gt unknown)."""
    err = (disparity - gt).abs()
    valid = mask.bool() & (gt > 0)
    bad = valid & (err > threshold)
    g = torch.where(valid, torch.full_like(err, 0.75), torch.full_like(err, 0.15))
    rgb = torch.stack([torch.where(bad, torch.ones_like(g), g), torch.where(bad, torch.zeros_like(g), g),
                       torch.where(bad, torch.zeros_like(g), g)])
    return rgb.cpu()

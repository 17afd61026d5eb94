"""Small colour maps for looking at disparities and errors (no matplotlib)."""

from __future__ import annotations

import torch
from torch import Tensor

# a perceptually ordered ramp (dark blue -> blue -> cyan -> yellow -> red -> dark red), turbo-like
_STOPS = torch.tensor([[0.19, 0.07, 0.23], [0.16, 0.47, 0.94], [0.10, 0.87, 0.73], [0.64, 0.99, 0.24],
                       [0.98, 0.73, 0.22], [0.89, 0.27, 0.05], [0.48, 0.02, 0.01]])


def colorize(values: Tensor, vmin: float = 0.0, vmax: float | None = None) -> Tensor:
    """(H, W) values -> (3, H, W) RGB in [0, 1], linear ramp from vmin to vmax (default: the maximum);
    NaN / non-finite values are black."""
    if values.dim() != 2:
        raise ValueError(f"values must be (H, W), got {tuple(values.shape)}")
    v = values.detach().float().cpu()
    finite = torch.isfinite(v)
    vmax = float(v[finite].max()) if vmax is None and finite.any() else (vmax if vmax is not None else 1.0)
    t = ((v - vmin) / max(vmax - vmin, 1e-12)).clamp(0, 1).nan_to_num(0.0) * (len(_STOPS) - 1)
    i = t.floor().long().clamp(max=len(_STOPS) - 2)
    f = (t - i).unsqueeze(0)
    rgb = _STOPS[i].permute(2, 0, 1) * (1 - f) + _STOPS[i + 1].permute(2, 0, 1) * f
    return rgb * finite.unsqueeze(0)


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

"""Sampling an image at arbitrary pixel coordinates (the kernel of every warp).

``"bilinear"`` and ``"nearest"`` use ``grid_sample``. ``"bicubic"`` is Keys'
cubic convolution with a = -0.5 (MATLAB's interp2 'cubic'), which reproduces
quadratics. torch's own bicubic (a = -0.75, as OpenCV's) is not used: it
does not even reproduce a linear ramp (a 0.3 px shift of ``f(x) = x`` comes
out as 0.342 px), which biases sub-pixel flow by a few hundredths of a pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sample(image: Tensor, coords: Tensor, mode: str) -> tuple[Tensor, Tensor]:
    """Sample ``image`` (B, C, H, W) at pixel coordinates ``coords`` (B, 2, H', W').

    ``coords[:, 0]`` is x (column), ``coords[:, 1]`` is y (row), pixel centres
    at integers. Positions outside [0, W-1] x [0, H-1] are clamped to the
    border. Returns ``(values (B, C, H', W'), valid (B, 1, H', W') bool)``.
    """
    height, width = image.shape[-2:]
    x, y = coords[:, 0], coords[:, 1]
    valid = ((x >= 0) & (x <= width - 1) & (y >= 0) & (y <= height - 1))[:, None]
    if mode == "bicubic":
        return _keys_cubic(image, x.clamp(0, width - 1), y.clamp(0, height - 1)), valid
    # align_corners=True maps -1 / +1 to the centres of the first / last pixel.
    grid = torch.stack((2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1), dim=-1)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True), valid


def _keys_weights(t: Tensor) -> list[Tensor]:
    """Keys (a = -0.5) weights of the taps at offsets -1, 0, 1, 2 for fractional position t in [0, 1)."""
    t2, t3 = t * t, t * t * t
    return [(-t3 + 2 * t2 - t) / 2, (3 * t3 - 5 * t2 + 2) / 2, (-3 * t3 + 4 * t2 + t) / 2, (t3 - t2) / 2]


def _keys_cubic(image: Tensor, x: Tensor, y: Tensor, rows: int = 128) -> Tensor:
    """Cubic convolution at in-range positions x, y (B, H', W'); taps beyond the border are replicated.

    Works on bands of ``rows`` output rows, so its temporaries stay a band's size on large frames.
    """
    if x.shape[1] > rows:
        bands = [_keys_cubic(image, x[:, r:r + rows], y[:, r:r + rows], rows) for r in range(0, x.shape[1], rows)]
        return torch.cat(bands, dim=2)
    batch, channels, height, width = image.shape
    x0, y0 = x.detach().floor(), y.detach().floor()
    wx, wy = _keys_weights(x - x0), _keys_weights(y - y0)
    x0, y0 = x0.long(), y0.long()
    flat = image.reshape(batch, channels, height * width)
    out = None
    for j in range(4):
        row = (y0 + j - 1).clamp(0, height - 1) * width
        for i in range(4):
            index = (row + (x0 + i - 1).clamp(0, width - 1)).reshape(batch, 1, -1).expand(-1, channels, -1)
            tap = flat.gather(2, index).reshape(batch, channels, *x.shape[1:])
            weight = (wy[j] * wx[i])[:, None]
            out = weight * tap if out is None else out.addcmul_(weight, tap)
    return out

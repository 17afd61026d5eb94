"""Sampling an image at arbitrary pixel coordinates (the kernel of every warp).

``"bilinear"`` and ``"nearest"`` use ``grid_sample``. ``"bicubic"`` is Keys'
cubic convolution with a = -0.5 (MATLAB's interp2 'cubic'), which reproduces
quadratics. torch's own bicubic (a = -0.75, as OpenCV's) is not used: it
does not even reproduce a linear ramp (a 0.3 px shift of ``f(x) = x`` comes
out as 0.342 px), which biases sub-pixel flow by a few hundredths of a pixel.
``"bspline"`` is cubic B-spline interpolation (Unser, IEEE SPM 1999): the image
is first turned into B-spline coefficients (the inverse of the sampled spline
kernel [1, 4, 1] / 6, a symmetric FIR truncated where its taps fall below the
dtype's resolution, mirrored borders), then sampled with the cubic B-spline's
4 x 4 weights. It interpolates the samples exactly as the others do, but
shifts fine texture with much less phase error than Keys' kernel: a sub-pixel
warp of real texture, compared with the unwarped frame, then no longer pulls a
flow estimate toward half-pixel positions.
"""

from __future__ import annotations

import math

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
    if mode in _CUBIC:
        if mode == "bspline":
            image = bspline_coefficients(image)
        return _cubic(image, x.clamp(0, width - 1), y.clamp(0, height - 1), mode), valid
    # align_corners=True maps -1 / +1 to the centres of the first / last pixel.
    grid = torch.stack((2 * x / max(width - 1, 1) - 1, 2 * y / max(height - 1, 1) - 1), dim=-1)
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True), valid


def _keys_weights(t: Tensor) -> list[Tensor]:
    """Keys (a = -0.5) weights of the taps at offsets -1, 0, 1, 2 for fractional position t in [0, 1)."""
    t2, t3 = t * t, t * t * t
    return [(-t3 + 2 * t2 - t) / 2, (3 * t3 - 5 * t2 + 2) / 2, (-3 * t3 + 4 * t2 + t) / 2, (t3 - t2) / 2]


def _bspline_weights(t: Tensor) -> list[Tensor]:
    """Cubic B-spline weights of the taps at offsets -1, 0, 1, 2 for fractional position t in [0, 1)."""
    s = 1 - t
    t2, t3 = t * t, t * t * t
    return [s * s * s / 6, (3 * t3 - 6 * t2 + 4) / 6, (-3 * t3 + 3 * t2 + 3 * t + 1) / 6, t3 / 6]


def bspline_coefficients(image: Tensor) -> Tensor:
    """Cubic B-spline coefficients c of ``image`` (B, C, H, W): sampling the spline sum_k c_k beta(x - k) at the
    pixel centres gives the image back. Separable FIR of the inverse of [1, 4, 1] / 6, ``sqrt 3 (sqrt 3 - 2)^|k|``
    for |k| <= r, r the first k with |sqrt 3 - 2|^k below the dtype's eps (r = 13 for float32, 28 for float64;
    renormalised: constants pass unchanged), on the image's mirror-periodic extension."""
    pole = math.sqrt(3) - 2
    radius = math.ceil(math.log(torch.finfo(image.dtype).eps) / math.log(-pole))
    taps = [pole ** abs(k) for k in range(-radius, radius + 1)]
    total = sum(taps)
    out = image
    for dim in (-1, -2):
        size = image.shape[dim]
        index = _mirror(torch.arange(-radius, size + radius, device=image.device), size)
        padded = out.index_select(dim, index)
        out = padded.narrow(dim, 0, size) * (taps[0] / total)
        for j in range(1, len(taps)):
            out.add_(padded.narrow(dim, j, size), alpha=taps[j] / total)
        del padded
    return out


def _mirror(index: Tensor, size: int) -> Tensor:
    """Indices of the mirror-periodic extension (..., 2, 1, 0, 1, 2, ..., size - 1, size - 2, ...) into 0..size-1."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.remainder(period)
    return torch.where(index >= size, period - index, index)


#: per cubic mode: (tap weights, the index of a tap beyond the border): Keys' taps read the border pixel, the
#: B-spline's the mirrored coefficient (the prefilter's boundary condition, so border pixels interpolate exactly too)
_CUBIC = {"bicubic": (_keys_weights, lambda i, n: i.clamp(0, n - 1)), "bspline": (_bspline_weights, _mirror)}


def _cubic(image: Tensor, x: Tensor, y: Tensor, mode: str, rows: int = 128) -> Tensor:
    """4 x 4-tap interpolation at in-range positions x, y (B, H', W'), ``mode`` ``"bicubic"`` (taps beyond the
    border replicated) or ``"bspline"`` (on B-spline coefficients; taps beyond the border mirrored).

    Works on bands of ``rows`` output rows, so its temporaries stay a band's size on large frames.
    """
    if x.shape[1] > rows:
        bands = [_cubic(image, x[:, r:r + rows], y[:, r:r + rows], mode, rows) for r in range(0, x.shape[1], rows)]
        return torch.cat(bands, dim=2)
    batch, channels, height, width = image.shape
    x0, y0 = x.detach().floor(), y.detach().floor()
    weights, outside = _CUBIC[mode]
    wx, wy = weights(x - x0), weights(y - y0)
    x0, y0 = x0.long(), y0.long()
    flat = image.reshape(batch, channels, height * width)
    out = None
    for j in range(4):
        row = outside(y0 + j - 1, height) * width
        for i in range(4):
            index = (row + outside(x0 + i - 1, width)).reshape(batch, 1, -1).expand(-1, channels, -1)
            tap = flat.gather(2, index).reshape(batch, channels, *x.shape[1:])
            weight = (wy[j] * wx[i])[:, None]
            out = weight * tap if out is None else out.addcmul_(weight, tap)
    return out

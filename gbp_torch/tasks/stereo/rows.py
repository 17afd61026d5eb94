"""A stereo pair's geometry before matching: the right view's row offset, estimated and resampled away, and views
given in the wrong order.

Matching compares ``left(x, y)`` with ``right(x - d, y)``: a pair whose rectification is off by a fraction of a row
(a hand-held or home-made rig, an imperfect calibration) compares windows that do not show the same texture. On
Middlebury's teddy and cones, the right view shifted down by half a pixel doubles the hand-set model's bad > 1 px
(4.9 -> 8.9 %, 3.2 -> 6.1 %) and a whole pixel gives 25 %, more than OpenCV's SGBM then (docs/stereo.md).

:func:`match_costs` computes what both decisions read (one census transform of each view); :func:`row_offset`
finds the offset ``e`` at which ``left(x, y)`` matches ``right(x - d, y + e)``: for every integer
``e`` within ``reach`` rows it takes each sampled pixel's best census cost over the disparities (winner take all) and
averages it; the least mean and its two neighbours give the sub-row offset by an equiangular (V-shaped) fit, the
shape that a census cost has around its minimum; a pair that :func:`looks_swapped` gets offset 0 (it does not match at
the searched disparities, whatever the offset: swapped Middlebury and synthetic pairs had read -2.1 to 2.3 rows).
:func:`align_rows` resamples the right view by that offset (cubic
B-spline interpolation) where it is at least :data:`MIN_OFFSET`; smaller offsets are left alone, as resampling blurs
the view a little.

:func:`looks_swapped` compares the same mean cost over negative disparities (``right(x + d)``) with the one over the
searched, positive ones: on 32 synthetic pairs the ratio was 1.29-2.48 as given and 0.41-0.79 with the views swapped
(Middlebury 2003: 1.61-1.86 and 0.54-0.62), so a ratio below :data:`SWAPPED_RATIO` means the views came in the wrong
order (a pair that matches nowhere, such as one a row off with the row alignment off, gives about 1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ...vision.census import census_transform, popcount
from ...vision.luma import luma
from ...vision.warp import warp

#: the census window of the offset estimate
CENSUS_WINDOW = 5
#: offsets below this (rows) are not resampled
MIN_OFFSET = 0.1
#: the most image rows the estimate samples (evenly spaced)
MAX_ROWS = 64
#: fewer pixels per mean cost than this (tiny images) give no offset and no swapped-views verdict
MIN_PIXELS = 1024
#: :func:`looks_swapped` below this ratio of the mean costs (negative over searched disparities)
SWAPPED_RATIO = 0.9
#: :func:`row_tilt` fits the offsets of this many column strips
STRIPS = 3
#: :func:`row_tilt` below this change of the offset across the width (rows) is 0. On 32 rectified synthetic ``EDGES``
#: pairs (seed 400) the strip fit read -0.26 to 0.29 rows across the width, on Middlebury 2003 -0.11 to 0.05; on the
#: same synthetic pairs with the rows tilted by 1 / 2 rows across the width it read 0.53-1.30 / 1.65-2.42.
MIN_TILT = 0.4


class MatchCosts(NamedTuple):
    """Mean winner-take-all census costs of a pair (:func:`match_costs`).

    Attributes:
        offsets: (B, 2 reach + 1), for each row offset ``e = k - reach`` the mean over sampled pixels of the least
            Hamming distance between ``left(x, y)`` and ``right(x - d, y + e)`` over ``d`` in ``[0, max_disp]``.
        mirrored: (B,) the same at ``e = 0`` over negative disparities, ``right(x + d)``.
        pixels: how many pixels each mean covers (below :data:`MIN_PIXELS` the pair is left as it is).
        strips: (B, 2 reach + 1, :data:`STRIPS`) the same means over each of STRIPS equal parts of those columns (left
            to right), for :func:`row_tilt`.
        strip_columns: (STRIPS,) float64, the mean column of each part.
    """

    offsets: Tensor
    mirrored: Tensor
    pixels: int
    strips: Tensor
    strip_columns: Tensor


def match_costs(left: Tensor, right: Tensor, max_disp: int, reach: int) -> MatchCosts:
    """:class:`MatchCosts` of ``left``, ``right`` (B, C, H, W) over up to :data:`MAX_ROWS` evenly spaced rows, each
    mean over the pixels where every disparity is compared (``x >= max_disp``; ``x < W - max_disp`` for the mirrored
    one) when at least 16 columns are such, else over all."""
    cl, cr = census_transform(luma(left), CENSUS_WINDOW), census_transform(luma(right), CENSUS_WINDOW)
    _, _, h, w = cl.shape
    if h > 2 * reach:
        rows = torch.arange(reach, h - reach, max(1, -(-(h - 2 * reach) // MAX_ROWS)), device=cl.device)
    else:
        rows = torch.arange(h, device=cl.device)
    codes = cl[:, 0, rows][:, None]  # (B, 1, R, W)
    shifted = torch.stack([cr[:, 0, (rows + e).clamp(0, h - 1)] for e in range(-reach, reach + 1)], 1)  # (B, E, R, W)
    mirror = cr[:, 0, rows][:, None]
    best = torch.full(shifted.shape, 255, dtype=torch.uint8, device=cl.device)
    best_mirrored = torch.full(codes.shape, 255, dtype=torch.uint8, device=cl.device)
    for d in range(min(max_disp, w - 1) + 1):  # one pass over the disparities for every offset and the mirror
        cost = popcount(codes[..., d:] ^ shifted[..., :w - d]).to(torch.uint8)
        best[..., d:] = torch.minimum(best[..., d:], cost)
        cost = popcount(codes[..., :w - d] ^ mirror[..., d:]).to(torch.uint8)
        best_mirrored[..., :w - d] = torch.minimum(best_mirrored[..., :w - d], cost)
    inner = min(max_disp, max(0, w - 16))
    per_column = best[..., inner:].double().mean(2)  # (B, E, W - inner)
    bounds = torch.linspace(0, w - inner, STRIPS + 1, dtype=torch.float64).round().long().tolist()
    strips = torch.stack([per_column[..., a:b].mean(-1) for a, b in zip(bounds, bounds[1:])], -1)
    columns = torch.tensor([inner + (a + b - 1) / 2 for a, b in zip(bounds, bounds[1:])], dtype=torch.float64)
    return MatchCosts(per_column.mean(-1), best_mirrored[..., :w - inner].double().mean((1, 2, 3)),
                      rows.numel() * (w - inner), strips, columns)


def row_offset(costs: MatchCosts) -> Tensor:
    """The row offset (B,) float64 at which ``left(x, y)`` matches ``right(x - d, y + e)`` (module docstring): the
    least of ``costs.offsets`` refined by an equiangular fit; 0 without offsets to compare (reach 0), for blank views
    and for a pair that :func:`looks_swapped`."""
    offsets = costs.offsets
    reach = (offsets.shape[1] - 1) // 2
    if reach <= 0 or costs.pixels < MIN_PIXELS:
        return torch.zeros(offsets.shape[0], dtype=torch.float64, device=offsets.device)
    return torch.where(looks_swapped(costs), torch.zeros(len(offsets), dtype=torch.float64, device=offsets.device),
                       _least_offset(offsets))


def _least_offset(offsets: Tensor) -> Tensor:
    """The least of mean costs (B, 2 reach + 1) over row offsets -reach..reach, refined by an equiangular fit; 0 for a
    flat curve (blank views), (B,) float64."""
    reach = (offsets.shape[1] - 1) // 2
    k = offsets.argmin(1)
    inner = k.clamp(1, 2 * reach - 1)  # the fit needs both neighbours; at the window's edge the offset stays integer
    at = lambda j: offsets.gather(1, j[:, None])[:, 0]  # noqa: E731
    before, centre, after = at(inner - 1), at(inner), at(inner + 1)
    rise = torch.maximum(before, after) - centre
    frac = torch.where(rise > 0, 0.5 * (before - after) / rise.clamp_min(1e-12), torch.zeros_like(rise))
    frac = torch.where(k == inner, frac.clamp(-0.5, 0.5), torch.zeros_like(frac))
    flat = offsets.amax(1) - offsets.amin(1) <= 1e-3 * offsets.mean(1)  # e.g. blank views: no offset to find
    return torch.where(flat, torch.zeros_like(frac), (k - reach).double() + frac)


def row_tilt(costs: MatchCosts, width: int) -> Tensor:
    """How fast the row offset changes across the image, rows per column (B,) float64: the slope of the least-squares
    line through the offsets of the :data:`STRIPS` column strips (:func:`row_offset`'s fit on each), where it
    changes the offset by at least :data:`MIN_TILT` rows over the ``width``; else 0 (as where :func:`row_offset` is
    0 for want of pixels, and for swapped views). A small rotation of one view about the optical axis tilts the
    rows so."""
    zero = torch.zeros(costs.offsets.shape[0], dtype=torch.float64, device=costs.offsets.device)
    reach = (costs.offsets.shape[1] - 1) // 2
    if reach <= 0 or costs.pixels < STRIPS * MIN_PIXELS:
        return zero
    ends = torch.stack([_least_offset(costs.strips[..., i]) for i in range(STRIPS)], -1)  # (B, STRIPS)
    x = costs.strip_columns.to(ends.device) - costs.strip_columns.mean()
    slope = (ends * x).sum(-1) / (x * x).sum()
    return torch.where((slope.abs() * width < MIN_TILT) | looks_swapped(costs), zero, slope)


def align_rows(right: Tensor, offset: Tensor, tilt: Tensor | None = None,
               centre: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """``right`` (B, C, H, W) with each item's rows resampled by ``e(x) = offset + tilt (x - centre)`` (``right(x, y +
    e(x))``, cubic B-spline, borders replicated) where the offset is at least :data:`MIN_OFFSET` or the tilt (rows per
    column, (B,); default 0) is not 0, and the offsets and tilts applied (0 where left alone). ``centre``: the column
    at which ``offset`` holds (:data:`MatchCosts.strip_columns`' mean)."""
    tilt = torch.zeros_like(offset) if tilt is None else tilt.to(offset)
    offset = torch.where((offset.abs() >= MIN_OFFSET) | (tilt != 0), offset, torch.zeros_like(offset))
    if not bool(((offset != 0) | (tilt != 0)).any()):
        return right, offset, tilt
    flow = torch.zeros(right.shape[0], 2, *right.shape[-2:], dtype=torch.float64, device=right.device)
    columns = torch.arange(right.shape[-1], dtype=torch.float64, device=right.device) - centre
    flow[:, 1] = offset.view(-1, 1, 1).to(right.device) + tilt.view(-1, 1, 1).to(right.device) * columns
    moved = warp(right.double(), flow, "bspline").image.clamp(0, 1).to(right.dtype)
    keep = ((offset == 0) & (tilt == 0)).view(-1, 1, 1, 1).to(right.device)
    return torch.where(keep, right, moved), offset, tilt


class SwappedViewsWarning(UserWarning):
    """A stereo pair that matches better at negative disparities, as when left and right are given swapped."""


def looks_swapped(costs: MatchCosts) -> Tensor:
    """(B,) bool: the pair matches better at negative disparities than at the searched ones (row offset 0), as when
    left and right are given in the wrong order (module docstring)."""
    reach = (costs.offsets.shape[1] - 1) // 2
    return (costs.mirrored < SWAPPED_RATIO * costs.offsets[:, reach]) & (costs.pixels >= MIN_PIXELS)


__all__ = ["MatchCosts", "match_costs", "row_offset", "row_tilt", "align_rows", "looks_swapped", "SwappedViewsWarning",
           "MIN_OFFSET", "MIN_PIXELS", "SWAPPED_RATIO", "STRIPS", "MIN_TILT"]

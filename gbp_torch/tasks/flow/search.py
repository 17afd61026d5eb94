"""A discrete displacement search for motions beyond the coarse-to-fine loop's reach.

Coarse-to-fine warping follows a large motion only if the coarse levels see it: a fast surface whose texture
blurs away there, or a motion of several pixels even at the coarsest level, is lost, and the finer levels cannot
bring it back (their linearisation reaches about a pixel). At one coarse level, :func:`displacement_search`
compares every integer displacement within ``radius`` pixels by a census cost (robust to the frames' brightness
changes) summed over a small window, and moves a pixel to its best displacement where that is unambiguous, clearly
cheaper than the incoming flow's and more than a pixel away from it. The warps of that level and the finer
ones then refine the result to sub-pixel flow as usual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...vision.census import census_transform, popcount

#: the census window and the radius of the box over which its Hamming distances are summed (a 7x7 box of 5x5
#: codes); chosen on synthetic pairs (docs/flow.md)
CENSUS_WINDOW = 5
AGGREGATE_RADIUS = 3


def search_level(widths: list[int], radius: int, reach: float) -> int | None:
    """The pyramid level to search: the finest whose scale (its width over the finest width, ``widths`` fine to
    coarse) is at most ``radius / reach``, so that ``radius`` level pixels cover ``reach`` full-resolution
    pixels; None if no level is that coarse, or for ``reach`` 0 (no search)."""
    if reach <= 0:
        return None
    levels = [i for i, w in enumerate(widths) if w <= widths[0] * radius / reach]
    return min(levels) if levels else None


def _box(x: Tensor, radius: int) -> Tensor:
    """Means over (2 radius + 1)^2 windows of each (N, 1, H, W) slice, borders replicated."""
    return F.avg_pool2d(F.pad(x, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)


def _shifted_rows(codes: Tensor, dy: int, radius: int) -> Tensor:
    """``codes`` (B, 1, H, W) read at (y + dy, x + dx) for every dx in [-radius, radius]: (B, 2 radius + 1, H, W),
    positions beyond the frame replicated (their costs are masked by the caller)."""
    h, w = codes.shape[-2:]
    rows = (torch.arange(h, device=codes.device) + dy).clamp_(0, h - 1)
    padded = _pad_columns(codes.index_select(2, rows), radius)
    return torch.cat([padded[..., radius + dx:radius + dx + w] for dx in range(-radius, radius + 1)], 1)


def _pad_columns(x: Tensor, radius: int) -> Tensor:
    """(B, 1, H, W) integer codes with ``radius`` columns repeated at each side (replicate padding for any dtype)."""
    index = (torch.arange(-radius, x.shape[-1] + radius, device=x.device)).clamp_(0, x.shape[-1] - 1)
    return x.index_select(3, index)


def displacement_search(image1: Tensor, image2: Tensor, flow: Tensor, radius: int,
                        margin: float) -> tuple[Tensor, Tensor]:
    """Integer displacements within ``radius`` pixels where they clearly beat ``flow``.

    Args:
        image1, image2: (B, 1, h, w) gray frames of one pyramid level.
        flow: (B, 2, h, w) the incoming flow at that level (pixels of the level).
        radius: the search window, displacements (dx, dy) with |dx|, |dy| <= radius.
        margin: a pixel takes its best displacement only where that one's cost is below ``1 - margin`` times the
            incoming flow's cost (the window mean of each pixel's Hamming distance at its own rounded incoming
            displacement: the cost of the incoming field), it is the only minimum, and it lies more than a pixel from
            the incoming flow (nearer, the warps refine the flow better than an integer would).

    Returns:
        (the flow with the taken displacements, (B, 2, h, w); which pixels took one, (B, 1, h, w) bool).
    """
    b, _, h, w = image1.shape
    c1, c2 = census_transform(image1, CENSUS_WINDOW), census_transform(image2, CENSUS_WINDOW)
    n = 2 * radius + 1
    best = image1.new_full((b, 1, h, w), float("inf"))
    second = best.clone()
    arg = image1.new_zeros(b, 2, h, w)
    ys = torch.arange(h, device=image1.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=image1.device).view(1, 1, 1, w)
    dxs = torch.arange(-radius, radius + 1, device=image1.device).view(1, n, 1, 1)
    for dy in range(-radius, radius + 1):
        codes = _shifted_rows(c2, dy, radius)
        cost = _box(popcount(codes.bitwise_xor_(c1)).to(image1.dtype).view(b * n, 1, h, w),
                    AGGREGATE_RADIUS).view(b, n, h, w)
        outside = (xs + dxs < 0) | (xs + dxs >= w) | (ys + dy < 0) | (ys + dy >= h)
        cost = cost.masked_fill(outside, float("inf"))
        top2 = cost.topk(2, dim=1, largest=False)
        row_best, row_arg = top2.values[:, :1], top2.indices[:, :1]
        row_second = top2.values[:, 1:2]
        better = row_best < best
        second = torch.where(better, torch.minimum(best, row_second), torch.minimum(second, row_best))
        best = torch.where(better, row_best, best)
        arg[:, :1] = torch.where(better, (row_arg - radius).to(arg.dtype), arg[:, :1])
        arg[:, 1:] = torch.where(better, arg.new_tensor(float(dy)), arg[:, 1:])
    current = _cost_at(c1, c2, flow.round().clamp(-radius, radius), best.dtype)
    take = (best < (1 - margin) * current) & (second > best) & ((arg - flow).abs() > 1).any(1, keepdim=True)
    return torch.where(take, arg, flow), take


def _cost_at(c1: Tensor, c2: Tensor, shift: Tensor, dtype: torch.dtype) -> Tensor:
    """The census cost of a field of integer displacements ``shift`` (B, 2, h, w): each pixel's Hamming distance at
    its own displacement (positions beyond the frame clamped), averaged over the aggregation window; (B, 1, h, w) of
    ``dtype``."""
    b, _, h, w = c1.shape
    ys = torch.arange(h, device=c1.device).view(1, h, 1)
    xs = torch.arange(w, device=c1.device).view(1, 1, w)
    y = (ys + shift[:, 1].long()).clamp_(0, h - 1)
    x = (xs + shift[:, 0].long()).clamp_(0, w - 1)
    codes = c2.view(b, -1).gather(1, (y * w + x).view(b, -1)).view(b, 1, h, w)
    return _box(popcount(codes.bitwise_xor_(c1)).to(dtype).view(b, 1, h, w), AGGREGATE_RADIUS)


__all__ = ["displacement_search", "search_level", "CENSUS_WINDOW", "AGGREGATE_RADIUS"]

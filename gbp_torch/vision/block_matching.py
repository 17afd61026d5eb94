"""Block matching: for every pixel, k similar patches from k different parts of a search window.

The distance between the patches centred at ``i`` and ``i + o`` is the mean over a
``patch x patch`` window and the channels of the squared difference, computed for all
pixels at once per offset ``o`` (a shifted difference and a box filter made of two
cumulative sums). Offsets come in pairs: ``D_{-o}(i) = D_o(i - o)``, so half
the window is computed and the other half is a shift of it. Patches reaching over the
border read the image padded by replication (``numpy.pad(mode="edge")``); a partner
outside the image is never chosen.

The window is cut into ``cell x cell`` squares of offsets. Each pixel keeps its best offset
per square (a running minimum: three element-wise operations per offset, where a running
top-k costs a sort), then its ``k`` best squares. The partners are therefore spread over
the window, not k neighbouring shifts of the same spot, and memory stays at one map per
square. There is a Python loop over offsets (a few hundred), none over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tiling import Tiling, map_tiles


@dataclass
class Matches:
    """The result of :func:`block_match`.

    Attributes:
        index: (B, K, H, W) int64, the partner's flat index ``y * W + x`` in the same image.
        dist: (B, K, H, W), the mean squared patch difference, ascending along K.
        offset: (B, K, 2, H, W) int64, the partner's (dy, dx) from the pixel.
    """

    index: Tensor
    dist: Tensor
    offset: Tensor


def window_cells(radius: int, cell: int, exclude: int) -> tuple[Tensor, Tensor]:
    """The search window's offsets and their squares.

    Returns (offsets (N, 2) int64: the half of the window with ``(dy, dx) > (0, 0)``
    lexicographically, ``max(|dy|, |dx|) <= radius`` and ``> exclude``; cells (N, 2) int64:
    the square of ``o`` and of ``-o``, numbered ``(dy + radius) // cell * n + (dx + radius) // cell``
    with ``n = ceil((2 radius + 1) / cell)``).
    """
    r = torch.arange(-radius, radius + 1)
    dy, dx = torch.meshgrid(r, r, indexing="ij")
    off = torch.stack((dy.flatten(), dx.flatten()), 1)
    first_half = (off[:, 0] > 0) | ((off[:, 0] == 0) & (off[:, 1] > 0))
    off = off[first_half & (off.abs().amax(1) > exclude)]
    n = -(-(2 * radius + 1) // cell)

    def cell_of(o: Tensor) -> Tensor:
        return (o[:, 0] + radius) // cell * n + (o[:, 1] + radius) // cell

    return off, torch.stack((cell_of(off), cell_of(-off)), 1)


def _box_mean(d: Tensor, patch: int) -> Tensor:
    """Means over ``patch x patch`` windows (valid part only): (B, H + patch - 1, W + patch - 1) -> (B, H, W).
    Two cumulative sums in the input's dtype (float32: absolute errors near 1e-7 times a row's sum)."""
    c = F.pad(d, (1, 0, 1, 0)).cumsum(-2)
    c = (c[:, patch:] - c[:, :-patch]).cumsum(-1)
    return (c[:, :, patch:] - c[:, :, :-patch]).div_(patch * patch)


def _offset_distances(padded: Tensor, dy: int, dx: int, patch: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Distances between the patches at i and i + o for o = (dy, dx), over the pixels i whose partner is
    inside the image: (B, y1 - y0, x1 - x0) and (y0, y1, x0, x1). ``padded``: the image with
    ``patch // 2`` replicated pixels on each side."""
    p = patch // 2
    h, w = padded.shape[-2] - 2 * p, padded.shape[-1] - 2 * p
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    diff = padded[:, :, y0:y1 + 2 * p, x0:x1 + 2 * p] - padded[:, :, y0 + dy:y1 + dy + 2 * p, x0 + dx:x1 + dx + 2 * p]
    sq = diff.square_()
    return _box_mean(sq[:, 0] if sq.shape[1] == 1 else sq.mean(1), patch), (y0, y1, x0, x1)


def _keep_better(best_d: Tensor, best_o: Tensor, d: Tensor, row: int) -> None:
    """Where ``d`` beats ``best_d`` (same-shaped views), store it and mark ``best_o`` with ``row`` (in place)."""
    better = d < best_d
    torch.where(better, d, best_d, out=best_d)
    best_o.masked_fill_(better, row)


def block_match(image: Tensor, k: int = 8, patch: int = 7, radius: int = 10, cell: int = 3,
                exclude: int = 1, tile: int | None = None) -> Matches:
    """``k`` similar patches of every pixel: its best match in each of its ``k`` best squares of the window.

    Args:
        image: (B, C, H, W), e.g. a pilot estimate (the distances of a noisy image carry a bias of
            ``2 sigma^2``).
        k: partners per pixel (at most the number of non-empty squares).
        patch: odd patch side.
        radius: the window is ``(2 radius + 1)^2`` offsets.
        cell: side of the squares the window is cut into (1: plain top-k over all offsets).
        exclude: offsets with ``max(|dy|, |dx|) <= exclude`` are skipped (0: only the pixel itself;
            1: also its 8 neighbours, which a grid model already links).
        tile: match tile by tile (:mod:`gbp_torch.tiling`, margin ``radius + patch // 2``: every partner
            and its patch lie in the grown tile, so the result is the untiled one) when the image is
            larger than ``tile x tile``; memory then holds one tile's per-square winners. None: whole image.
    Returns:
        :class:`Matches`; a pixel with fewer than ``k`` partners inside the image gets the missing ones
        with ``dist = inf``, index of the pixel itself and offset 0.
    """
    if image.dim() != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be a positive odd number, got {patch}")
    if radius < 1 or cell < 1 or exclude < 0 or exclude >= radius:
        raise ValueError(f"need radius >= 1, cell >= 1 and 0 <= exclude < radius; got {radius}, {cell}, {exclude}")
    offsets, cells = window_cells(radius, cell, exclude)
    used = torch.unique(cells)
    if not 1 <= k <= len(used):
        raise ValueError(f"k must be in [1, {len(used)}] (the non-empty squares of the window), got {k}")
    if not torch.isfinite(image).all():
        raise ValueError("image has NaN or inf values")
    cells = torch.searchsorted(used, cells)  # renumber the non-empty squares 0..G-1
    if tile is None or max(image.shape[-2:]) <= tile:
        return _match(image, k, patch, offsets, cells)

    def packed(part: Tensor) -> Tensor:  # distances and offsets of one tile as (B, 3K, h, w)
        m = _match(part, k, patch, offsets, cells)
        return torch.cat((m.dist, m.offset.flatten(1, 2).to(m.dist.dtype)), 1)

    out = map_tiles(packed, image, Tiling(tile=tile, margin=radius + patch // 2, align=1))
    return _with_index(out[:, :k], out[:, k:].unflatten(1, (k, 2)).round().long())


def _match(image: Tensor, k: int, patch: int, offsets: Tensor, cells: Tensor) -> Matches:
    """:func:`block_match` on validated arguments: ``offsets`` and ``cells`` of :func:`window_cells`, the
    squares renumbered 0..G-1."""
    g = int(cells.max()) + 1
    b, _, h, w = image.shape
    dev = image.device
    best_d = torch.full((b, g, h, w), float("inf"), dtype=image.dtype, device=dev)
    best_o = torch.zeros((b, g, h, w), dtype=torch.int16, device=dev)  # row of `signed`
    padded = F.pad(image, (patch // 2,) * 4, mode="replicate")
    n = len(offsets)
    for i, ((dy, dx), (c, c_mirror)) in enumerate(zip(offsets.tolist(), cells.tolist())):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        d, (y0, y1, x0, x1) = _offset_distances(padded, dy, dx, patch)
        # pixel i (in the span) matches i + o; pixel i + o matches i at offset -o with the same distance
        _keep_better(best_d[:, c, y0:y1, x0:x1], best_o[:, c, y0:y1, x0:x1], d, i)
        span = (slice(None), c_mirror, slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx))
        _keep_better(best_d[span], best_o[span], d, i + n)
    best_d, pick = best_d.topk(k, dim=1, largest=False, sorted=True)
    best_o = best_o.gather(1, pick).long()
    signed = torch.cat((offsets, -offsets)).to(dev)  # (2N, 2): row n is o_n, row N + n is -o_n
    off = signed[best_o].permute(0, 1, 4, 2, 3)  # (B, K, 2, H, W)
    off = torch.where(torch.isfinite(best_d).unsqueeze(2), off, torch.zeros_like(off))
    return _with_index(best_d, off)


def _with_index(dist: Tensor, off: Tensor) -> Matches:
    """Matches from distances (B, K, H, W) and offsets (B, K, 2, H, W)."""
    h, w = dist.shape[-2:]
    ys = torch.arange(h, device=dist.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=dist.device).view(1, 1, 1, w)
    return Matches(index=(ys + off[:, :, 0]) * w + (xs + off[:, :, 1]), dist=dist, offset=off)

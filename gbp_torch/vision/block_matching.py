"""Block matching: for every pixel, k similar patches from k different parts of a search window.

The distance between the patches centred at ``i`` and ``i + o`` is the mean over a
``patch x patch`` window and the channels of the squared difference, computed for all
pixels at once per offset ``o`` (a shifted difference and a separable window sum of doubling
shifted sums: four additions per axis for a 7-pixel patch). Offsets come in pairs:
``D_{-o}(i) = D_o(i - o)``, so half the window is computed and the other half is a shift of
it. Patches reaching over the border read the image padded by replication
(``numpy.pad(mode="edge")``); a partner outside the image is never chosen.

The window is cut into ``cell x cell`` squares of offsets. Each pixel keeps its best offset
per square, then its ``k`` best squares, so the partners are spread over the window, not k
neighbouring shifts of the same spot, and memory stays at one map per square. A candidate is
one integer key: the bits of its (non-negative) float distance with the lowest mantissa bits
replaced by the offset's number, so integer order is distance order and keeping the best is
one element-wise minimum; the k best squares come from an insertion network of minima and
maxima. The returned distances therefore carry a relative rounding of at most
``2^(bits - 23)`` in float32 (``bits`` = the bits that number the offsets, 9 for a 19 x 19
window: 6e-5; float64: ``2^(bits - 52)``). There is a Python loop over offsets (a few hundred)
and over squares, none over pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..tiling import Tiling, map_tiles
from .windows import window_sum


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


def _offset_distances(padded: Tensor, dy: int, dx: int, patch: int) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Summed squared differences (channel mean) between the patches at i and i + o for o = (dy, dx), over the
    pixels i whose partner is inside the image: (B, y1 - y0, x1 - x0) and (y0, y1, x0, x1). ``padded``: the
    image with ``patch // 2`` replicated pixels on each side."""
    p = patch // 2
    h, w = padded.shape[-2] - 2 * p, padded.shape[-1] - 2 * p
    y0, y1 = max(0, -dy), min(h, h - dy)
    x0, x1 = max(0, -dx), min(w, w - dx)
    diff = padded[:, :, y0:y1 + 2 * p, x0:x1 + 2 * p] - padded[:, :, y0 + dy:y1 + dy + 2 * p, x0 + dx:x1 + dx + 2 * p]
    sq = diff.square_()
    sq = sq[:, 0] if sq.shape[1] == 1 else sq.mean(1)
    return window_sum(window_sum(sq, patch, -2), patch, -1), (y0, y1, x0, x1)


#: integer dtype of the keys of each float dtype (same width, so a float tensor is viewed as its key)
_KEY_DTYPES = {torch.float32: torch.int32, torch.float64: torch.int64}


def _k_smallest(maps: Tensor, k: int) -> Tensor:
    """The k smallest of ``maps`` (B, G, H, W) along G, ascending: (B, k, H, W). An insertion network (each map
    is passed down the k ranks, two element-wise ops per rank): much faster than ``topk`` over a short
    middle axis on a CPU."""
    top = [maps[:, 0].clone()]
    carry, low = torch.empty_like(top[0]), torch.empty_like(top[0])
    for g in range(1, maps.shape[1]):
        carry.copy_(maps[:, g])
        for j in range(len(top)):
            torch.minimum(top[j], carry, out=low)
            torch.maximum(top[j], carry, out=carry)
            top[j], low = low, top[j]
        if len(top) < k:
            top.append(carry.clone())
    return torch.stack(top, 1)


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
    work = image if image.dtype in _KEY_DTYPES else image.float()
    key_dtype = _KEY_DTYPES[work.dtype]
    b, _, h, w = image.shape
    dev = image.device
    n = len(offsets)
    bits = (2 * n).bit_length()  # rows 0..2N-1 of the offset tables below; the all-ones row is none of them
    mask = (1 << bits) - 1
    empty = torch.tensor(float("inf"), dtype=work.dtype).view(key_dtype) | mask  # larger than any candidate
    best = torch.full((b, g, h, w), int(empty), dtype=key_dtype, device=dev)
    padded = F.pad(work, (patch // 2,) * 4, mode="replicate")
    for i, ((dy, dx), (c, c_mirror)) in enumerate(zip(offsets.tolist(), cells.tolist())):
        if abs(dy) >= h or abs(dx) >= w:
            continue
        d, (y0, y1, x0, x1) = _offset_distances(padded, dy, dx, patch)
        key = d.clamp_min_(0).view(key_dtype).bitwise_and_(~mask).bitwise_or_(i)  # in d's storage
        # pixel i (in the span) matches i + o; pixel i + o matches i at offset -o with the same distance
        here = best[:, c, y0:y1, x0:x1]
        torch.minimum(here, key, out=here)
        there = best[:, c_mirror, y0 + dy:y1 + dy, x0 + dx:x1 + dx]
        torch.minimum(there, key.add_(n), out=there)
    keys = _k_smallest(best, k)
    del best
    dist = (keys & ~mask).view(work.dtype) / (patch * patch)
    # offset tables by row: row n is o_n, row N + n is -o_n, rows from 2N on (no partner: the empty key) are 0
    table = torch.zeros(mask + 1, 2, dtype=torch.long, device=dev)
    table[:2 * n] = torch.cat((offsets, -offsets)).to(dev)
    row = (keys & mask).long().masked_fill_(~torch.isfinite(dist), mask)  # an overflowed (inf) distance: no partner
    off = torch.stack((table[:, 0].take(row), table[:, 1].take(row)), 2)  # (B, K, 2, H, W)
    return _with_index(dist.to(image.dtype), off)


def _with_index(dist: Tensor, off: Tensor) -> Matches:
    """Matches from distances (B, K, H, W) and offsets (B, K, 2, H, W)."""
    h, w = dist.shape[-2:]
    ys = torch.arange(h, device=dist.device).view(1, 1, h, 1)
    xs = torch.arange(w, device=dist.device).view(1, 1, 1, w)
    return Matches(index=(ys + off[:, :, 0]) * w + (xs + off[:, :, 1]), dist=dist, offset=off)

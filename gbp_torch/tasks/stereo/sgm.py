"""Semi-global aggregation of a cost volume (Hirschmueller's SGM recursion), scanline by scanline.

Along each path direction r the aggregated cost is the recursion::

    L_r(p, d) = C(p, d) + min(L_r(p - r, d), L_r(p - r, d -+ 1) + P1, min_k L_r(p - r, k) + P2)
                - min_k L_r(p - r, k)

(L_r = C at the image border), and the output is the mean of L_r over the paths. P1 charges a
1-px disparity step between path neighbours and P2 any larger jump; P2 is lowered across image
edges (``P2 / (1 + |I(p) - I(p - r)| / edge_t)``, floored at P1), where depth edges are likely.

The loop runs over the positions of a scanline (a path direction's axis: W or H steps); each step
is vectorised over the other image axis and all disparities, so it costs ``O(B D H)`` or ``O(B D W)``.
Temporaries are a few such slices; the output is a second volume of the input's storage dtype, accumulated
path by path (uint8: each path's term rounded, so the output costs no more memory than the input).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: The path directions (dy, dx) in opposite pairs: 2 axis-parallel pairs, then 2 diagonal pairs.
#: The first of each pair runs toward increasing x (or y, for vertical paths).
DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (-1, 1), (1, -1))
#: Most scanline positions converted to float (and written back) at once; big images take fewer, so
#: that a block holds at most :data:`BLOCK_VALUES` values (two float32 block buffers of 16 MB).
BLOCK = 32
BLOCK_VALUES = 1 << 22


@dataclass(frozen=True)
class SGMConfig:
    """Settings of :func:`semi_global`.

    Attributes:
        paths: path directions (0: off, 4: axis-parallel, 8: with diagonals).
        p1: penalty of a 1-px disparity change between path neighbours (cost units).
        p2: penalty of a larger change (cost units), before the edge-adaptive lowering.
        edge_t: gray-level difference at which P2 halves (0: constant P2).
    """

    paths: int = 4
    p1: float = 0.01
    p2: float = 0.3
    edge_t: float = 0.05

    def __post_init__(self) -> None:
        if self.paths not in (0, 4, 8):
            raise ValueError(f"paths must be 0, 4 or 8, got {self.paths!r}")
        if not (0 <= self.p1 <= self.p2) or self.edge_t < 0:
            raise ValueError(f"need 0 <= p1 <= p2 and edge_t >= 0, got p1={self.p1!r}, p2={self.p2!r}, "
                             f"edge_t={self.edge_t!r}")


def _shift_rows_into(out: Tensor, x: Tensor, dy: int) -> None:
    """``out[..., y] = x[..., y - dy]`` along the last axis, 0 where y - dy is outside (out and x distinct)."""
    h = x.shape[-1]
    out.zero_()
    if dy > 0:
        out[..., dy:] = x[..., :h - dy]
    else:
        out[..., :h + dy] = x[..., -dy:]


def _penalty_p2(gray: Tensor, dy: int, dx: int, config: SGMConfig) -> Tensor:
    """P2 per pixel for direction (dy, dx) (``config.edge_t`` > 0): gray (B, H, W) -> (B, H, W)."""
    h, w = gray.shape[-2:]
    prev = torch.zeros_like(gray)
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    prev[..., ys, xs] = gray[..., yd, xd]
    diff = (gray - prev).abs()
    return (config.p2 / (1 + diff / config.edge_t)).clamp_min(config.p1)


def _sweep_pair(cost: Tensor, to_float, dy: int, dx: int, gray: Tensor, config: SGMConfig, out: Tensor,
                scale: float, cap: int) -> None:
    """Adds ``L_r`` of direction (dy, dx) and of its opposite (-dy, -dx) to ``out``, in place.

    The two recursions run in one loop over the scanline positions, stacked on a leading axis of
    size 2 (the opposite one on the flipped axis). ``out`` (B, N, H, W) float gets ``scale * L_r``;
    uint8 gets ``round(scale * L_r)`` clamped to ``cap``.
    """
    axis = -1 if dx != 0 else -2
    shift = dy if dx != 0 else 0  # a diagonal's predecessor is one row up (or down) in the last column
    n = cost.shape[axis]
    p2 = None
    if config.edge_t > 0:  # (2, B, 1, H, W) float16, the opposite direction's flipped: 4 bytes a pixel
        p2 = torch.empty((2, *gray.shape), dtype=torch.float16, device=gray.device)
        p2[0] = _penalty_p2(gray, dy, dx, config)
        p2[1] = _penalty_p2(gray, -dy, -dx, config).flip(axis)
        p2 = p2.unsqueeze(2)
    block = max(1, min(BLOCK, BLOCK_VALUES // (2 * cost.numel() // n)))  # two directions of n positions each
    prev = cur = best = step = low = jump = None  # per-step buffers, made once: no allocation per step
    for i0 in range(0, n, block):  # blocks of scanline positions: one float conversion / write-back each
        nb = min(block, n - i0)
        fwd, bwd = cost.narrow(axis, i0, nb), cost.narrow(axis, n - i0 - nb, nb).flip(axis)
        c_blk = to_float(torch.stack([fwd, bwd]))  # (2, B, N, H, W) with nb positions on axis
        p2_blk = None if p2 is None else p2.narrow(axis, i0, nb).float()
        agg_blk = torch.empty_like(c_blk)
        for j in range(nb):  # the scanline recursion, both directions at once
            c = c_blk.select(axis, j)
            if prev is None:
                prev, cur, best, step = (torch.empty_like(c) for _ in range(4))
                low, jump = torch.empty_like(c[:, :, :1]), torch.empty_like(c[:, :, :1])
                cur.copy_(c)
            else:
                if shift:  # the diagonal's predecessors: the last column moved one row (best as scratch)
                    best.copy_(prev)
                    _shift_rows_into(prev[0], best[0], shift)
                    _shift_rows_into(prev[1], best[1], -shift)
                torch.amin(prev, 2, keepdim=True, out=low)
                torch.add(low, config.p2 if p2 is None else p2_blk.select(axis, j), out=jump)  # any larger change
                torch.add(prev, config.p1, out=step)
                torch.minimum(prev, jump, out=best)
                best[:, :, 1:].clamp_(max=step[:, :, :-1])
                best[:, :, :-1].clamp_(max=step[:, :, 1:])
                torch.sub(best, low, out=cur).add_(c)
            agg_blk.select(axis, j).copy_(cur)
            prev, cur = cur, prev
        for part, start in ((agg_blk[0], i0), (agg_blk[1].flip(axis), n - i0 - nb)):
            target = out.narrow(axis, start, nb)
            if out.dtype == torch.uint8:
                target.add_(part.mul_(scale).round_().clamp_(max=cap).to(torch.uint8))
            else:
                target.add_(part, alpha=scale)


def semi_global(cost: Tensor, to_float, max_cost: float, gray: Tensor, config: SGMConfig) -> tuple[Tensor, float]:
    """The mean over ``config.paths`` directions of the SGM recursion of a stored cost volume.

    Args:
        cost: (B, D + 1, H, W) stored cost, uint8 (0..254 for 0..max_cost) or float16 (in units of max_cost).
        to_float: maps a stored slice to float32 cost units (:meth:`~.cost.CostVolume.as_float`).
        max_cost: the largest cost value.
        gray: (B, 1, H, W) the left image's gray levels in [0, 1] (for the edge-adaptive P2).
        config: :class:`SGMConfig` (``paths`` > 0).

    Returns: (the aggregated cost in ``cost``'s storage dtype and shape, its ``max_cost``:
    ``max_cost + p2``, the largest value of an aggregated cost). uint8 output is accumulated path
    by path in place, each path's term rounded to whole steps of the output (at most 3/4 step per
    path, ~``sqrt(paths / 12)`` steps RMS in all; no float copy of the volume is made).
    """
    new_max = max_cost + config.p2
    if cost.dtype == torch.uint8:
        out = torch.zeros_like(cost)
        scale, cap = 254.0 / (new_max * config.paths), 254 // config.paths
    else:
        out = torch.zeros(cost.shape, dtype=torch.float32, device=cost.device)
        scale, cap = 1.0 / (new_max * config.paths), 0
    for dy, dx in DIRECTIONS[:config.paths:2]:
        _sweep_pair(cost, to_float, dy, dx, gray[:, 0], config, out, scale, cap)
    return (out if cost.dtype == torch.uint8 else out.to(cost.dtype)), new_max

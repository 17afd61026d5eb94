"""Semi-global aggregation of a cost volume (Hirschmueller's SGM recursion), band by band of rows.

Along each path direction r the aggregated cost is the recursion::

    L_r(p, d) = C(p, d) + min(L_r(p - r, d), L_r(p - r, d -+ 1) + P1, min_k L_r(p - r, k) + P2)
                - min_k L_r(p - r, k)

(L_r = C at the image border), and the output is the mean of L_r over the paths. P1 charges a
1-px disparity step between path neighbours and P2 any larger jump; P2 is lowered across image
edges (``P2 / (1 + |I(p) - I(p - r)| / edge_t)``, floored at P1), where depth edges are likely.

The input cost is read in bands of rows (``cost_rows(y0, y1)``), so it is never stored whole: the
bands are visited top to bottom for the horizontal paths and the downward ones (their last row's
``L_r`` is carried to the next band), then bottom to top for the upward ones, which reads every
band a second time (the caller recomputes it; a single band is kept instead). Each step of a
recursion is vectorised over the other image axis and all disparities. The output volume, of the
input's storage dtype, is the only full-size array (uint8: each path's term rounded, accumulated in place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ...progress import progress_bar

#: The path directions (dy, dx) in opposite pairs: the horizontal pair, the vertical pair, then 2 diagonal pairs.
DIRECTIONS = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, -1), (-1, 1), (1, -1))
#: Most scanline positions converted to float (and written back) at once; big images take fewer, so
#: that a block holds at most :data:`BLOCK_VALUES` values (float32 block buffers of 16 MB).
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


def _shift_into(out: Tensor, x: Tensor, shift: int) -> None:
    """``out[..., i] = x[..., i - shift]`` along the last axis, 0 where i - shift is outside (out and x distinct)."""
    n = x.shape[-1]
    out.zero_()
    if shift > 0:
        out[..., shift:] = x[..., :n - shift]
    else:
        out[..., :n + shift] = x[..., -shift:]


def _penalty_p2(gray: Tensor, dy: int, dx: int, config: SGMConfig) -> Tensor:
    """P2 per pixel for direction (dy, dx) (``config.edge_t`` > 0): gray (B, H, W) -> (B, H, W)."""
    h, w = gray.shape[-2:]
    prev = torch.zeros_like(gray)
    ys, yd = (slice(dy, h), slice(0, h - dy)) if dy >= 0 else (slice(0, h + dy), slice(-dy, h))
    xs, xd = (slice(dx, w), slice(0, w - dx)) if dx >= 0 else (slice(0, w + dx), slice(-dx, w))
    prev[..., ys, xs] = gray[..., yd, xd]
    diff = (gray - prev).abs()
    return (config.p2 / (1 + diff / config.edge_t)).clamp_min(config.p1)


def _band_penalty(gray: Tensor, y0: int, y1: int, directions, config: SGMConfig) -> Tensor | None:
    """P2 of rows [y0, y1) for each direction: (K, B, 1, y1 - y0, W) float32, or None for a constant P2."""
    if config.edge_t == 0:
        return None
    lo = max(0, y0 - 1)  # the row above the band: the downward paths' predecessors
    hi = min(gray.shape[-2], y1 + 1)
    rows = gray[:, lo:hi]
    return torch.stack([_penalty_p2(rows, dy, dx, config)[:, y0 - lo:y1 - lo] for dy, dx in directions]).unsqueeze(2)


class _Recursion:
    """One SGM step for K stacked paths, with its buffers made once: ``L`` (K, B, N, L) over disparities N."""

    def __init__(self, like: Tensor, config: SGMConfig):
        self.best, self.step = torch.empty_like(like), torch.empty_like(like)
        self.low, self.jump = torch.empty_like(like[:, :, :1]), torch.empty_like(like[:, :, :1])
        self.config = config

    def __call__(self, prev: Tensor, c: Tensor, p2: Tensor | None, out: Tensor) -> Tensor:
        """``out = c + min(prev, prev(d -+ 1) + P1, min prev + P2) - min prev``, c broadcast to prev's shape."""
        torch.amin(prev, 2, keepdim=True, out=self.low)
        torch.add(self.low, self.config.p2 if p2 is None else p2, out=self.jump)
        torch.add(prev, self.config.p1, out=self.step)
        best = torch.minimum(prev, self.jump, out=self.best)
        best[:, :, 1:].clamp_(max=self.step[:, :, :-1])
        best[:, :, :-1].clamp_(max=self.step[:, :, 1:])
        return torch.sub(best, self.low, out=out).add_(c)


def _add_terms(out: Tensor, terms: Tensor, scale: float, cap: int) -> None:
    """``out += scale * term`` for each of terms (K, ...); uint8 out gets each rounded and clamped to cap."""
    for term in terms:
        if out.dtype == torch.uint8:
            out.add_(term.mul_(scale).round_().clamp_(max=cap).to(torch.uint8))
        else:
            out.add_(term, alpha=scale)


def _sweep_horizontal(cost: Tensor, to_float, p2: Tensor | None, config: SGMConfig, out: Tensor, scale: float,
                      cap: int) -> None:
    """Adds ``L_r`` of the rightward and leftward paths over the rows of ``cost`` (B, N, h, W) to ``out``.

    The two recursions run in one loop over the columns, stacked on a leading axis of size 2 (the
    leftward one on the flipped axis). p2: (2, B, 1, h, W), the leftward one's flipped, or None.
    """
    n = cost.shape[-1]
    block = max(1, min(BLOCK, BLOCK_VALUES // (2 * cost.numel() // n)))
    prev = cur = recursion = None
    for i0 in range(0, n, block):  # blocks of columns: one float conversion / write-back each
        nb = min(block, n - i0)
        c_blk = to_float(torch.stack([cost.narrow(-1, i0, nb), cost.narrow(-1, n - i0 - nb, nb).flip(-1)]))
        p2_blk = None if p2 is None else p2.narrow(-1, i0, nb)
        agg_blk = torch.empty_like(c_blk)
        for j in range(nb):
            c = c_blk.select(-1, j)  # (2, B, N, h)
            if prev is None:
                prev, cur, recursion = c.clone(), torch.empty_like(c), _Recursion(c, config)
            else:
                recursion(prev, c, None if p2_blk is None else p2_blk.select(-1, j), cur)
                prev, cur = cur, prev
            agg_blk.select(-1, j).copy_(prev)
        _add_terms(out.narrow(-1, i0, nb), agg_blk[:1], scale, cap)
        _add_terms(out.narrow(-1, n - i0 - nb, nb), agg_blk[1:].flip(-1), scale, cap)


def _sweep_rows(cost: Tensor, to_float, directions, p2: Tensor | None, config: SGMConfig, out: Tensor,
                scale: float, cap: int, prev: Tensor | None) -> Tensor:
    """Adds ``L_r`` of K paths with one vertical sense (all dy = 1 or all dy = -1) over a band to ``out``.

    cost (B, N, h, W) is the band's stored cost, visited row by row (down for dy = 1, up for
    dy = -1); each step is vectorised over columns, disparities and the K stacked directions (a
    diagonal's predecessor row is shifted by its dx). p2: (K, B, 1, h, W) or None. prev: the
    (K, B, N, W) ``L_r`` of the row before the band in the sweep order, None at the image border.
    Returns this band's last row's ``L_r``.
    """
    k, dy = len(directions), directions[0][0]
    shifts = [dx for _, dx in directions]
    h = cost.shape[-2]
    block = max(1, min(BLOCK, BLOCK_VALUES // (k * cost.numel() // h)))
    starts = list(range(0, h, block))
    cur = recursion = None
    for i0 in (starts if dy > 0 else reversed(starts)):
        nb = min(block, h - i0)
        c_blk = to_float(cost.narrow(-2, i0, nb))  # (B, N, nb, W), shared by the K paths
        agg_blk = torch.empty((k, *c_blk.shape), dtype=c_blk.dtype, device=c_blk.device)
        for j in (range(nb) if dy > 0 else range(nb - 1, -1, -1)):
            c = c_blk.select(-2, j)  # (B, N, W)
            if prev is None:
                prev = c.expand(k, *c.shape).clone()
            else:
                if recursion is None:
                    cur, recursion = torch.empty_like(prev), _Recursion(prev, config)
                if any(shifts):  # diagonals: the predecessor row moved by dx (cur as scratch)
                    cur.copy_(prev)
                    for i, dx in enumerate(shifts):
                        if dx:
                            _shift_into(prev[i], cur[i], dx)
                recursion(prev, c, None if p2 is None else p2[..., i0 + j, :], cur)
                prev, cur = cur, prev
            agg_blk.select(-2, j).copy_(prev)
        _add_terms(out.narrow(-2, i0, nb), agg_blk, scale, cap)
    return prev


def semi_global(cost_rows: Callable[[int, int], Tensor], band: int, to_float, max_cost: float, gray: Tensor,
                config: SGMConfig, progress: bool = False) -> tuple[Tensor, float]:
    """The mean over ``config.paths`` directions of the SGM recursion of a cost volume read in bands of rows.

    Args:
        cost_rows: ``(y0, y1) -> (B, D + 1, y1 - y0, W)`` the stored cost of rows [y0, y1), uint8
            (0..254 for 0..max_cost) or float16 (in units of max_cost). Called twice per band
            (once when there is a single band).
        band: rows per band (the caller's memory bound).
        to_float: maps a stored slice to float32 cost units (:meth:`~.cost.CostVolume.as_float`).
        max_cost: the largest cost value.
        gray: (B, 1, H, W) the left image's gray levels in [0, 1] (for the edge-adaptive P2).
        config: :class:`SGMConfig` (``paths`` > 0).
        progress: a tqdm bar over the bands of both passes (when there is more than one band).

    Returns: (the aggregated cost (B, D + 1, H, W) in the stored dtype, its ``max_cost``:
    ``max_cost + p2``, the largest value of an aggregated cost). uint8 output is accumulated path
    by path in place, each path's term rounded to whole steps of the output (at most 3/4 step per
    path, ~``sqrt(paths / 12)`` steps RMS in all; no float copy of the volume is made).
    """
    h = gray.shape[-2]
    gray = gray[:, 0]
    new_max = max_cost + config.p2
    directions = DIRECTIONS[:config.paths]
    down = [d for d in directions if d[0] == 1]
    up = [d for d in directions if d[0] == -1]
    bands = [(y0, min(y0 + band, h)) for y0 in range(0, h, band)]
    out = kept = prev = None
    scale = cap = None
    bar = progress_bar(2 * len(bands) if len(bands) > 1 else 1, "SGM", "band", progress)
    for y0, y1 in bands:  # top to bottom: the horizontal and downward paths
        cost = cost_rows(y0, y1)
        if out is None:
            b, n, _, w = cost.shape
            uint8 = cost.dtype == torch.uint8
            out = torch.zeros((b, n, h, w), dtype=torch.uint8 if uint8 else torch.float32, device=cost.device)
            scale = (254.0 if uint8 else 1.0) / (new_max * config.paths)
            cap = 254 // config.paths if uint8 else 0
        rows = out.narrow(-2, y0, y1 - y0)
        p2 = _band_penalty(gray, y0, y1, DIRECTIONS[:2], config)
        _sweep_horizontal(cost, to_float, None if p2 is None else torch.stack([p2[0], p2[1].flip(-1)]), config, rows,
                          scale, cap)
        prev = _sweep_rows(cost, to_float, down, _band_penalty(gray, y0, y1, down, config), config, rows, scale, cap,
                           prev)
        kept = cost if len(bands) == 1 else None
        del cost
        bar.update()
    prev = None
    for y0, y1 in reversed(bands):  # bottom to top: the upward paths, on the bands read again
        cost = kept if kept is not None else cost_rows(y0, y1)
        prev = _sweep_rows(cost, to_float, up, _band_penalty(gray, y0, y1, up, config), config,
                           out.narrow(-2, y0, y1 - y0), scale, cap, prev)
        del cost
        bar.update()
    bar.close()
    return (out if out.dtype == torch.uint8 else out.to(torch.float16)), new_max

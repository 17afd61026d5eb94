"""Searches of a stored cost volume, in chunks of disparities: winner-take-all, the coupled search
``argmin_d C(d) + theta (d - u)^2``, the right view's winner, and the local quadratic fit.

Every function reads the volume (B, D + 1, H, W) (uint8 or float16, see
:class:`~.cost.CostVolume`) ``chunk`` disparities at a time, so temporaries stay
``B H W chunk`` floats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .cost import CostVolume


@dataclass
class QuadraticFit:
    """Parabola through the cost at (v - 1, v, v + 1) per pixel, all (B, H, W).

    Attributes:
        z: the parabola's minimum ``v + offset`` (offset clamped to [-0.5, 0.5]; ``v`` at the range ends).
        curvature: second difference ``C(v-1) - 2 C(v) + C(v+1)`` (>= 0; the precision of the fit
            is this, in cost units per px^2).
        cost: C(v).
    """

    z: Tensor
    curvature: Tensor
    cost: Tensor


def coupled_search(volume: CostVolume, u: Tensor | None = None, theta: float = 0.0,
                   chunk: int = 16, exclude: Tensor | None = None, radius: int = 1) -> tuple[Tensor, Tensor]:
    """``v = argmin_d C(d) + theta (d - u)^2`` over all disparities: (index (B, H, W) long, value (B, H, W)).

    ``u`` (B, H, W) float and ``theta`` pull the search toward ``u`` (None or theta = 0: winner-take-all);
    then only disparities within :func:`coupling_reach` of u's nearest one are read (the others cannot win) when
    they are under half the range.
    With ``exclude`` (B, H, W) long, disparities within ``radius`` of it are skipped (the second-best minimum).
    Ties go to the smallest disparity. Winner-take-all searches of a uint8 volume compare the stored values
    (:func:`_comparable`), a quarter of the memory traffic of floats.
    """
    cost = volume.cost
    b, n, h, w = cost.shape
    coupled = u is not None and theta > 0
    reach = coupling_reach(volume.max_cost, theta) if coupled else n
    # gathering a value costs about twice reading it in a slice (teddy, 65 disparities: 53 gathered 85 ms against 47
    # for the whole range, 17 gathered 40 against 56): the window is gathered only when under half the range
    first = (u.round().clamp(0, n - 1).long() - reach).unsqueeze(1) if 2 * (2 * reach + 1) < n else None
    stored = not coupled and cost.dtype == torch.uint8
    best = torch.full((b, h, w), NONE if stored else float("inf"), device=cost.device,
                      dtype=torch.uint8 if stored else torch.float32)
    arg = torch.zeros((b, h, w), dtype=torch.long, device=cost.device)
    if exclude is not None:  # skipped: lo <= d <= hi, compared per chunk in int32 (no int64 chunk temporaries)
        lo, hi = ((exclude + r).unsqueeze(1).int() for r in (-radius, radius))
    for k0 in range(0, n if first is None else 2 * reach + 1, chunk):  # chunk loop: bounded memory
        k1 = min(k0 + chunk, n if first is None else 2 * reach + 1)
        if first is None:  # the whole range: slices
            d = torch.arange(k0, k1, device=cost.device).view(1, -1, 1, 1)
            part = cost[:, k0:k1]
        else:  # the window around u: gathered (indices past the ends repeat an end: same value, same index)
            d = (first + torch.arange(k0, k1, device=cost.device).view(1, -1, 1, 1)).clamp_(0, n - 1)
            part = cost.gather(1, d)
        c = _comparable(part) if stored else volume.as_float(part)
        if coupled:
            c = c + theta * (d.to(c.dtype) - u.unsqueeze(1)) ** 2
        if exclude is not None:
            d32 = d.int()
            c = c.masked_fill((d32 >= lo) & (d32 <= hi), NONE if stored else float("inf"))
        val, idx = c.min(1)
        better = val < best
        best = torch.where(better, val, best)
        arg = torch.where(better, d.expand_as(c).gather(1, idx.unsqueeze(1)).squeeze(1), arg)
    return arg, (_value(volume, best) if stored else best)


#: In a winner-take-all search of a uint8 volume, the value that stands for "no candidate" (+inf): stored costs are
#: compared after :func:`_comparable` maps them to 0..254.
NONE = 255


def _comparable(part: Tensor) -> Tensor:
    """Stored uint8 costs as values that order (and tie) as their floats (:meth:`~.cost.CostVolume.as_float` clamps the
    invalid 255 to max_cost, the float of 254): 255 -> 254, the rest kept."""
    return part.clamp(max=NONE - 1)


def _value(volume: CostVolume, best: Tensor) -> Tensor:
    """The float costs of :func:`_comparable` values (B, H, W) uint8, inf where :data:`NONE`."""
    return torch.where(best == NONE, float("inf"), volume.as_float(best))


def coupling_reach(max_cost: float, theta: float) -> int:
    """How far (px) from the disparity nearest u the coupled search's minimum can lie: the nearest one scores at
    most ``max_cost + theta / 4``, so any d with ``theta (d - u)^2`` above that loses, and ``|d - round(u)|`` stays
    within ``sqrt(max_cost / theta + 1 / 4) + 1 / 2`` (also for u outside the range, clamped)."""
    return int(math.floor(math.sqrt(max_cost / theta + 0.25) + 0.5))


def gather_cost(volume: CostVolume, index: Tensor) -> Tensor:
    """C at integer disparities ``index`` (B, K, H, W) long (clamped to the range) -> (B, K, H, W) float."""
    n = volume.cost.shape[1]
    return volume.as_float(volume.cost.gather(1, index.clamp(0, n - 1)))


def quadratic_fit(volume: CostVolume, v: Tensor) -> QuadraticFit:
    """:class:`QuadraticFit` of the cost around integer disparities ``v`` (B, H, W) long."""
    n = volume.cost.shape[1]
    idx = torch.stack([v - 1, v, v + 1], 1)
    c = gather_cost(volume, idx)
    cm, c0, cp = c.unbind(1)
    interior = (v > 0) & (v < n - 1)
    curv = (cm - 2 * c0 + cp).clamp_min(0)
    offset = torch.where(curv > 1e-6, 0.5 * (cm - cp) / curv.clamp_min(1e-6), torch.zeros_like(curv))
    offset = torch.where(interior, offset.clamp(-0.5, 0.5), torch.zeros_like(offset))
    curv = torch.where(interior, curv, (torch.where(v > 0, cm, cp) - c0).clamp_min(0))  # one-sided at the ends
    return QuadraticFit(v.to(c0.dtype) + offset, curv, c0)


def right_winner(volume: CostVolume) -> Tensor:
    """Winner-take-all disparity of the right view, (B, H, W) long.

    The right pixel x_r at disparity d matches left pixel x_r + d: ``C_R(x_r, d) = C(x_r + d, d)`` (no candidate
    where x_r + d >= W), so disparity d's costs are the columns d.. of its slice, compared with the running minimum
    of columns ..W - d - 1 (a slice per disparity: no gathered copy of the volume; ties go to the smallest
    disparity). A uint8 volume is compared in its stored values (:func:`_comparable`).
    """
    cost = volume.cost
    b, n, h, w = cost.shape
    stored = cost.dtype == torch.uint8
    best = torch.full((b, h, w), NONE if stored else float("inf"), device=cost.device,
                      dtype=torch.uint8 if stored else torch.float32)
    arg = torch.zeros((b, h, w), dtype=torch.long, device=cost.device)
    for d in range(min(n, w)):
        part = cost[:, d, :, d:]
        c = _comparable(part) if stored else volume.as_float(part)
        head = best[..., : w - d]
        better = c < head
        torch.minimum(head, c, out=head)
        arg[..., : w - d].masked_fill_(better, d)
    return arg

"""Parts of a grid problem that no data reaches: found, reported and regularised.

A pixel is unobservable when its connected component (pixels joined by edges of weight above
100 machine epsilons of the item's typical precision) has a singular summed data precision: no
data at all (D = 1 or 2, numerically: below the same floor), or, for D = 2, data blocks that all
constrain the same direction (the aperture problem of a cut-off region). There the
system ``A x = b`` is singular: multigrid's dense coarse solve fails and GBP's means drift.
:func:`regularise` adds a data precision ``eps I`` toward z on those components only, so the
rest of the image solves exactly as before: ``eps`` is the item's typical precision on components
without any data (their values are arbitrary anyway) and :data:`RANK_DEFICIENT_EPS` of it on D = 2
components with one-directional data (so the observed direction keeps its solution). The solver
reports them (``GridResult.unobservable``) and warns; the variance of each coordinate that the missing
direction moves is ``inf``: both without data, only v where the data constrain u alone (vertical stripes),
both again where the unobserved direction is oblique.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import blocks
from .system import GridSystem

#: Data precision added on D = 2 components with one-directional data, relative to the item's typical
#: precision (components without data get the typical precision itself).
RANK_DEFICIENT_EPS = 1e-3


class GridUnobservableWarning(RuntimeWarning):
    """Some pixels of a grid problem are not determined by any data (see :mod:`.observability`)."""


def components(wh: Tensor, wv: Tensor, threshold: Tensor | float = 0.0) -> Tensor:
    """Connected components of B grids whose edges of weight > threshold join pixels.

    wh (B, H, W-1), wv (B, H-1, W), threshold a float or (B,) -> labels (B, H, W) long: the smallest
    flat index (over the whole batch) of each pixel's component. Hook-and-compress (Shiloach-Vishkin style):
    O(log(pixels)) rounds of whole-tensor ops, one host sync per round.
    """
    b, h = wh.shape[0], wh.shape[1]
    w = wv.shape[2]
    ids = torch.arange(b * h * w, device=wh.device).reshape(b, h, w)
    t = torch.as_tensor(threshold, dtype=wh.dtype, device=wh.device).reshape(-1, 1, 1)
    src = torch.cat((ids[..., :, :-1][wh > t], ids[..., :-1, :][wv > t]))
    dst = torch.cat((ids[..., :, 1:][wh > t], ids[..., 1:, :][wv > t]))
    lab = ids.reshape(-1).clone()
    while True:
        ls, ld = lab[src], lab[dst]
        low = torch.minimum(ls, ld)
        hooked = lab.scatter_reduce(0, ls, low, "amin").scatter_reduce(0, ld, low, "amin")
        while True:  # pointer jumping: every label points at its root
            jumped = hooked[hooked]
            if torch.equal(jumped, hooked):
                break
            hooked = jumped
        if torch.equal(hooked, lab):
            return lab.reshape(b, h, w)
        lab = hooked


def typical_precision(sys: GridSystem) -> Tensor:
    """(B,) the largest of each item's mean data precision (per component) and mean edge weights."""
    parts = [blocks.trace(sys.a, sys.d).flatten(1).mean(1) / sys.d]
    parts += [w.flatten(1).mean(1) for w in (sys.wh, sys.wv) if w.numel()]
    return torch.stack(parts).amax(0).clamp_min(torch.finfo(sys.b.dtype).tiny)


def _all_above(w: Tensor, tiny: Tensor) -> Tensor:
    """Whether every edge weight of each item exceeds its ``tiny`` (B,): one reduction, 0-dim bool."""
    if w.numel() == 0:
        return torch.ones((), dtype=torch.bool, device=w.device)
    return (w.detach().flatten(1).amin(1) > tiny).all()


class Unobservable(NamedTuple):
    """What :func:`unobservable` finds.

    Attributes:
        rel: (B, H, W) relative regularisation of each pixel (see :func:`unobservable`); > 0 on unobservable pixels.
        hidden: (B, D, H, W) bool, the coordinates that no data determine: all of them on components without data;
            on D = 2 components with one-directional data those with a share in the unobserved direction.
    """

    rel: Tensor
    hidden: Tensor


def unobservable(sys: GridSystem) -> Unobservable | None:
    """:class:`Unobservable` with ``rel`` 1 on components without data (or with less than 100 machine epsilons
    of the item's typical precision per pixel: numerically none), RANK_DEFICIENT_EPS on D = 2 components whose
    summed data blocks are singular, 0 elsewhere; None if every pixel is observable."""
    d = sys.d
    b, h, w = sys.b.shape[0], sys.b.shape[-2], sys.b.shape[-1]
    tiny = 100 * torch.finfo(sys.b.dtype).eps * typical_precision(sys)  # (B,) numerically zero
    trace = blocks.trace(sys.a, d) / d  # (B, H, W)
    connected = _all_above(sys.wh, tiny) & _all_above(sys.wv, tiny)
    if d == 1 and bool(connected & (trace.flatten(1).sum(1) > tiny * h * w).all()):
        return None  # one component per item, with data
    if bool(connected):  # one component per item: its sums are the item's sums
        size, total = torch.full((b,), h * w, dtype=trace.dtype, device=trace.device), trace.flatten(1).sum(1)
        sums = _block_entries(sys.a).flatten(2).sum(2) if d == 2 else None  # (B, 3)
        weight, hidden = _relative_regularisation(size, total, sums, tiny)
        if not bool((weight > 0).any()):
            return None
        return Unobservable(weight.view(b, 1, 1).expand(b, h, w).clone(),
                            hidden.view(b, d, 1, 1).expand(b, d, h, w).clone())
    labels = components(sys.wh, sys.wv, tiny).reshape(-1)
    n = labels.numel()
    size = torch.zeros(n, dtype=trace.dtype, device=trace.device).index_add_(0, labels, torch.ones_like(labels,
                                                                                                     dtype=trace.dtype))
    total = torch.zeros(n, dtype=trace.dtype, device=trace.device).index_add_(0, labels, trace.reshape(-1))
    sums = None
    if d == 2:
        entries = _block_entries(sys.a).movedim(1, -1).reshape(-1, 3)
        sums = torch.zeros(n, 3, dtype=trace.dtype, device=trace.device).index_add_(0, labels, entries)
    weight, hidden = _relative_regularisation(size, total, sums, tiny.repeat_interleave(h * w))
    rel = weight[labels].reshape(b, h, w)
    if not bool((rel > 0).any()):
        return None
    return Unobservable(rel, hidden[labels].reshape(b, h, w, d).movedim(-1, 1))


def _block_entries(a: Tensor) -> Tensor:
    """(B, 3, H, W): the (0, 0), (0, 1) and (1, 1) entries of D = 2 data blocks (a full lam field already is)."""
    return a if blocks.is_full(a) else torch.stack((a, torch.zeros_like(a), a), 1)


def _relative_regularisation(size: Tensor, total: Tensor, sums: Tensor | None,
                             tiny: Tensor) -> tuple[Tensor, Tensor]:
    """Per component (N,): 1 without data (summed trace at most ``size * tiny``), RANK_DEFICIENT_EPS for D = 2
    summed blocks ``sums`` (N, 3) that are singular, else 0; and (N, D) bool, the coordinates those leave
    undetermined (on singular blocks, those whose share in the null direction exceeds the square root of the
    dtype's epsilon: the direction's own rounding)."""
    empty = total <= size * tiny
    if sums is None:
        return empty.to(total.dtype), empty[:, None]
    det = sums[:, 0] * sums[:, 2] - sums[:, 1] ** 2
    singular = det <= 1e-10 * (sums[:, 0] + sums[:, 2]) ** 2
    # the summed block's principal direction is at angle t = atan2(2 s01, s00 - s11) / 2, its null direction
    # (-sin t, cos t)
    t = 0.5 * torch.atan2(2 * sums[:, 1], sums[:, 0] - sums[:, 2])
    null = torch.stack((-torch.sin(t), torch.cos(t)), 1).abs() > torch.finfo(sums.dtype).eps ** 0.5
    hidden = empty[:, None] | (singular[:, None] & null)
    return torch.where(empty, 1.0, RANK_DEFICIENT_EPS * singular.to(total.dtype)), hidden


def pixel_counts(hidden: Tensor) -> str:
    """``"item 0: 12 px, item 3: 5 px"``: the unobservable pixels of each batch item that has any, hidden (B, H, W)
    bool, for a warning's text."""
    return ", ".join(f"item {i}: {n} px" for i, n in enumerate(hidden.flatten(1).sum(1).tolist()) if n)


def regularise(sys: GridSystem, z: Tensor, rel: Tensor) -> GridSystem:
    """``sys`` with ``rel`` (B, H, W, from :func:`unobservable`) times the item's
    :func:`typical_precision` added to the data precision, toward ``z`` (B, D, H, W)."""
    extra = typical_precision(sys).view(-1, 1, 1) * rel
    a = blocks.add_eye(sys.a, extra) if blocks.is_full(sys.a) else sys.a + extra
    return GridSystem(a=a, wh=sys.wh, wv=sys.wv, b=sys.b + extra.unsqueeze(1) * z, offsets=sys.offsets)


def with_hidden_variance(var: Tensor, hidden: Tensor) -> Tensor:
    """``var`` ((B, H, W) for D = 1, (B, 2, 2, H, W) for D = 2) with the variance of each ``hidden`` (B, D, H, W)
    coordinate set to inf (D = 2: its diagonal entry; all four entries where both are hidden)."""
    if var.dim() == 3:
        return var.masked_fill(hidden[:, 0], float("inf"))
    both = hidden.all(1)[:, None, None]
    diagonal = torch.diag_embed(hidden.movedim(1, -1)).permute(0, 3, 4, 1, 2)  # (B, 2, 2, H, W)
    return var.masked_fill(diagonal | both, float("inf"))

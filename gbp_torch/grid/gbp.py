"""Flat Gaussian belief propagation on a grid, direction-indexed messages.

Messages live on edges: for horizontal edges (B, ..., H, W-1) the message sent
rightwards (received by (y, x+1)) and leftwards (received by (y, x)); for
vertical edges (B, ..., H-1, W) downwards and upwards. For a pairwise factor
``1/2 w |x_i - x_j|^2`` and sender cavity (eta_c, lam_c) the message is
``lam = w (I - G)``, ``eta = G eta_c`` with gain ``G = w (w I + lam_c)^-1``
(D = 1: ``lam = w lam_c / (w + lam_c)``, ``eta = w eta_c / (w + lam_c)``).

The lam-part never sees eta, so it is converged once (:func:`lam_setup`) and
the gains frozen; an eta iteration is then a handful of shifted tensor ops.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import blocks
from .system import GridSystem, bnorm, matvec, scatter_edges

Msgs = tuple[Tensor, Tensor, Tensor, Tensor]  # (right, left, down, up)


@dataclass
class GBPGains:
    """Frozen lam-part of GBP on one grid.

    Attributes:
        g: gains (right, left, down, up); lam fields on edges, e.g. (B, H, W-1).
        lam_b: belief precision per pixel, lam field (B, H, W) or (B, 3, H, W).
        iters: lam iterations run; change: last relative change of lam messages.
    """

    g: Msgs
    lam_b: Tensor
    iters: int
    change: float


def _gain(w: Tensor, cav: Tensor) -> Tensor:
    """``G = w (w I + cav)^-1``; 0 where w == 0. w edge field, cav lam field."""
    if not blocks.is_full(cav):
        return w / (w + cav).clamp_min(torch.finfo(w.dtype).tiny)
    return blocks.scale(blocks.inv(blocks.add_eye(cav, w + (w == 0).to(w.dtype))), w)


def _cavities(base: Tensor, m: Msgs) -> tuple[Tensor, Msgs]:
    """Belief ``base + incoming`` and the sender cavities of the 4 message kinds."""
    right, left, down, up = m
    bel = base + scatter_edges(right, left, down, up)
    return bel, (bel[..., :, :-1] - left, bel[..., :, 1:] - right, bel[..., :-1, :] - up, bel[..., 1:, :] - down)


def _lam_step(sys: GridSystem, lam: Msgs, want_gains: bool = False) -> tuple[Msgs | None, Msgs | None, Tensor]:
    """One synchronous lam update; returns (new lam messages, None, belief lam), or with ``want_gains``
    (None, the gains of ``lam``, belief lam).

    The four directions are done one after the other, so that only one cavity and one gain field
    exist at a time (memory: the messages twice plus the belief, not five sets of edge fields)."""
    right, left, down, up = lam
    lam_b = sys.a + scatter_edges(right, left, down, up)
    full = blocks.is_full(sys.a)
    senders = ((lambda: lam_b[..., :, :-1] - left, sys.wh), (lambda: lam_b[..., :, 1:] - right, sys.wh),
               (lambda: lam_b[..., :-1, :] - up, sys.wv), (lambda: lam_b[..., 1:, :] - down, sys.wv))
    new, gains = [], []
    for cavity, w in senders:
        cav = cavity()
        g = _gain(w, cav)
        if want_gains:
            gains.append(g)
        else:
            new.append(blocks.add_eye(blocks.scale(g, -w), w) if full else cav * g)
        del cav, g
    return (None, tuple(gains), lam_b) if want_gains else (tuple(new), None, lam_b)


def _rel_change(new: Msgs, old: Msgs) -> float:
    num = max(float((n - o).detach().abs().max()) if n.numel() else 0.0 for n, o in zip(new, old))
    den = max(float(n.detach().abs().max()) if n.numel() else 0.0 for n in new)
    return num / max(den, torch.finfo(new[0].dtype).tiny)


def zero_msgs(wh: Tensor, wv: Tensor, k: int | None = None) -> Msgs:
    """Zero messages on the edges of wh (B, H, W-1), wv (B, H-1, W), with k
    components per edge ((B, k, ...) fields) or none (k None)."""
    if k is None:
        zh, zv = torch.zeros_like(wh), torch.zeros_like(wv)
    else:
        zh = wh.new_zeros(wh.shape[0], k, *wh.shape[1:])
        zv = wv.new_zeros(wv.shape[0], k, *wv.shape[1:])
    return zh, zh, zv, zv


def local_init(sys: GridSystem) -> Msgs:
    """Lam-messages of the locally homogeneous fixed point (a cheap, close start).

    For sender data precision a (trace / D for 2x2 blocks) and edge weight w,
    ``m = w c / (w + c)`` with ``c = a + 3 m`` gives ``3 m^2 + (a - 2 w) m - w a = 0``;
    exact in the interior of uniform grids. Returns (right, left, down, up).
    """
    full = blocks.is_full(sys.a)
    a = 0.5 * blocks.trace(sys.a, 2) if full else sys.a

    def root(w: Tensor, a_s: Tensor) -> Tensor:
        p = a_s - 2 * w
        m = (torch.sqrt((p * p + 12 * w * a_s).clamp_min(torch.finfo(w.dtype).tiny)) - p) / 6
        return blocks.add_eye(w.new_zeros(w.shape[0], 3, *w.shape[1:]), m) if full else m

    return (root(sys.wh, a[..., :, :-1]), root(sys.wh, a[..., :, 1:]),
            root(sys.wv, a[..., :-1, :]), root(sys.wv, a[..., 1:, :]))


def lam_setup(sys: GridSystem, tol: float = 1e-6, max_iters: int = 500, check_every: int = 2,
              init: str = "local") -> GBPGains:
    """Iterate the lam-messages synchronously to relative change < tol.

    Starts from :func:`local_init` (``init="local"``) or from zero (``"zero"``);
    also stops when the change stagnates below 100 eps (the dtype's rounding
    floor). The local start is much faster to loose tolerances (multigrid
    set-up); the zero start reaches a tighter float32 floor (flat GBP).
    Returns the frozen gains and belief precision. Differentiable in a, wh, wv.
    """
    if init not in ("local", "zero"):
        raise ValueError(f"init must be 'local' or 'zero', got {init!r}")
    lam = local_init(sys) if init == "local" else zero_msgs(sys.wh, sys.wv, 3 if blocks.is_full(sys.a) else None)
    change, it = float("inf"), 0
    while it < max_iters:
        new, _, _ = _lam_step(sys, lam)
        it += 1
        if it % check_every == 0 or it == max_iters:
            prev, change = change, _rel_change(new, lam)
            floor = 100 * torch.finfo(sys.b.dtype).eps
            if change < floor and change > 0.9 * prev:  # stagnating: rounding floor reached
                lam = new
                break
        lam = new
        if change < tol:
            break
    _, gains, lam_b = _lam_step(sys, lam, want_gains=True)
    return GBPGains(gains, lam_b, it, change)


def redblack_masks(h: int, w: int, device, dtype=torch.bool) -> tuple[Msgs, Msgs]:
    """Sender-is-red masks for the 4 message kinds, for the two half-steps.

    Pixel (y, x) is red when (y + x) is even. Returns (red_senders, black_senders).
    """
    yy = torch.arange(h, device=device)[:, None]
    xx = torch.arange(w, device=device)[None, :]
    red = (yy + xx) % 2 == 0
    m = (red[:, :-1], red[:, 1:], red[:-1, :], red[1:, :])
    return m, tuple(~t for t in m)


def eta_step(base: Tensor, gains: GBPGains, eta: Msgs, damping: float = 0.0, accept: Msgs | None = None) -> Msgs:
    """One eta-message update. base (B, D, H, W): data eta; eta: messages (B, D, ...).

    ``damping`` d gives ``(1 - d) new + d old``; ``accept`` (bool edge masks)
    keeps old messages where False (red-black half-steps).
    """
    _, cav = _cavities(base, eta)
    new = tuple(blocks.mv(g, c) for g, c in zip(gains.g, cav))
    if damping:
        new = tuple(torch.lerp(n, o, damping) for n, o in zip(new, eta))
    if accept is not None:
        new = tuple(torch.where(a, n, o) for a, n, o in zip(accept, new, eta))
    return new


def belief_mean(base: Tensor, gains: GBPGains, eta: Msgs) -> Tensor:
    """Belief means ``lam_b^-1 (base + incoming)``, (B, D, H, W)."""
    return blocks.mv(blocks.inv(gains.lam_b), base + scatter_edges(*eta))


def gbp_iterate(sys: GridSystem, gains: GBPGains, iters: int, x0: Tensor | None = None,
                tol: float | None = None, damping: float = 0.0, schedule: str = "sync",
                check_every: int = 10, callback=None) -> tuple[Tensor, list[Tensor], int, bool]:
    """Run eta-GBP with frozen gains. With x0 it solves the residual system.

    Returns (x (B, D, H, W), residual history [(B,)], iterations run, converged).
    Relative residuals ``|b - A x| / |b|`` are recorded every ``check_every``
    iterations and at the end. ``callback(it, x)`` (if given) sees the iterate
    at the same iterations and may return True to stop.
    """
    if schedule not in ("sync", "redblack"):
        raise ValueError(f"schedule must be 'sync' or 'redblack', got {schedule!r}")
    base = sys.b if x0 is None else sys.b - matvec(sys, x0)
    bn = bnorm(sys.b).clamp_min(torch.finfo(sys.b.dtype).tiny)
    dk = sys.b.shape[1]
    eta = zero_msgs(sys.wh, sys.wv, dk)
    masks = redblack_masks(*sys.shape, sys.b.device) if schedule == "redblack" else None
    history: list[Tensor] = []
    converged, it = False, 0

    def current() -> Tensor:
        e = belief_mean(base, gains, eta)
        return e if x0 is None else x0 + e

    while it < iters:
        if masks is None:
            eta = eta_step(base, gains, eta, damping)
        else:
            eta = eta_step(base, gains, eta, damping, masks[0])
            eta = eta_step(base, gains, eta, damping, masks[1])
        it += 1
        if callback is not None and (it % check_every == 0 or it == iters) and callback(it, current()):
            break
        if tol is not None and (it % check_every == 0 or it == iters):
            res = (bnorm(sys.b - matvec(sys, current())) / bn).detach()
            history.append(res)
            if float(res.max()) <= tol:
                converged = True
                break
    x = current()
    if tol is None:
        history.append((bnorm(sys.b - matvec(sys, x)) / bn).detach())
    return x, history, it, converged

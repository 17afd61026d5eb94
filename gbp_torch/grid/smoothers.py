"""Smoothers for the multigrid V-cycle: frozen-gain GBP and damped Jacobi.

A smoother is an approximate inverse ``S``; one step on ``A e = r`` is
``e += S (r - A e)``. ``apply`` gives ``S r``, ``apply_t`` gives ``S^T r``
(pre-smoothing with S and post-smoothing with S^T makes the V-cycle symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks
from .gbp import GBPGains
from .system import GridSystem, diagonal


def clamp_lam(lam_b: Tensor, diag: Tensor, clamp: float) -> Tensor:
    """Raise the diagonal of ``lam_b`` to at least ``clamp * diag(A)`` (lam fields)."""
    if clamp <= 0:
        return lam_b
    if not blocks.is_full(lam_b):
        return torch.maximum(lam_b, clamp * diag)
    lift = (clamp * diag[:, 0::2] - lam_b[:, 0::2]).clamp_min(0)
    return lam_b + torch.stack((lift[:, 0], torch.zeros_like(lift[:, 0]), lift[:, 1]), 1)


@dataclass
class GBPSmoother:
    """One damped GBP step from zero eta-messages on the residual system.

    ``S r = omega lam_b^-1 (r + beta sum_i G_ij r_i)`` with frozen gains G,
    beta = 1 - message damping and omega = output damping (relaxation). For
    scalar fields the clamp is applied symmetrically, ``S' = C^1/2 S C^1/2`` with
    ``C = lam_b / max(lam_b, clamp diag(A))`` (so diag(S') = 1 / clamped lam_b);
    for full 2x2 fields lam_b itself is clamped.

    Two fields are kept, with the constants folded in. Scalar: ``pre = C^1/2`` and
    ``post = omega C^1/2 lam_b^-1``; ``S r = post (u + beta nb(u))`` with ``u = pre r``, and
    ``S^T r = pre (y + beta nb^T(y))`` with ``y = post r``. Full: ``pre`` is None and
    ``post = omega lam_c^-1``; ``S r = post (r + beta nb(r))``, ``S^T r = y + beta nb^T(y)``, ``y = post r``.
    """

    gains: GBPGains
    pre: Tensor | None
    post: Tensor
    beta: float

    def _neighbours(self, u: Tensor, transpose: bool) -> Tensor:
        """``beta sum_j G_ji u_j`` at every pixel i (``G^T`` when transpose), accumulated edge kind by
        edge kind so that one edge field exists at a time."""
        gr, gl, gd, gu = self.gains.g
        if transpose:
            gr, gl, gd, gu = gl, gr, gu, gd
        nb = F.pad(blocks.mv(gl, u[..., :, 1:]), (0, 1))
        nb[..., 1:] += blocks.mv(gr, u[..., :, :-1])
        nb[..., 1:, :] += blocks.mv(gd, u[..., :-1, :])
        nb[..., :-1, :] += blocks.mv(gu, u[..., 1:, :])
        return nb if self.beta == 1.0 else nb.mul_(self.beta)

    def apply(self, r: Tensor) -> Tensor:
        if self.pre is None:
            return blocks.mv(self.post, r + self._neighbours(r, False))
        u = blocks.mv(self.pre, r)
        return blocks.mv(self.post, u + self._neighbours(u, False))

    def apply_t(self, r: Tensor) -> Tensor:
        y = blocks.mv(self.post, r)
        out = y + self._neighbours(y, True)
        return out if self.pre is None else blocks.mv(self.pre, out)


@dataclass
class JacobiSmoother:
    """Damped (block-)Jacobi: ``S r = omega diag(A)^-1 r``."""

    inv_diag: Tensor
    omega: float

    def apply(self, r: Tensor) -> Tensor:
        return self.omega * blocks.mv(self.inv_diag, r)

    apply_t = apply


def gbp_smoother(sys: GridSystem, gains: GBPGains, damping: float = 0.5, relax: float = 0.8,
                 clamp: float = 0.6) -> GBPSmoother:
    """Frozen-gain GBP smoother (message damping ``damping``, output damping ``relax``)."""
    lam_c = clamp_lam(gains.lam_b, diagonal(sys), clamp)
    if blocks.is_full(gains.lam_b):
        return GBPSmoother(gains, None, relax * blocks.inv(lam_c), 1.0 - damping)
    sc = (gains.lam_b / lam_c).sqrt()
    return GBPSmoother(gains, sc, relax * sc / gains.lam_b, 1.0 - damping)


def jacobi_smoother(sys: GridSystem, relax: float = 0.8) -> JacobiSmoother:
    return JacobiSmoother(blocks.inv(diagonal(sys)), relax)

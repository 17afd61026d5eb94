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
from .stencil import Stencil


def clamp_lam(lam_b: Tensor, diag: Tensor, clamp: float) -> Tensor:
    """Raise the diagonal of ``lam_b`` to at least ``clamp * diag(A)`` (lam fields)."""
    if clamp <= 0:
        return lam_b
    if not blocks.is_full(lam_b):
        return torch.maximum(lam_b, clamp * diag)
    lift = (clamp * diag[:, 0::2] - lam_b[:, 0::2]).clamp_min(0)
    return lam_b + torch.stack((lift[:, 0], torch.zeros_like(lift[:, 0]), lift[:, 1]), 1)


@dataclass
class BlockGBPSmoother:
    """One damped GBP step from zero eta-messages for full 2x2 lam fields.

    ``S r = post (r + beta sum_j G_ji r_j)`` with frozen gains G, ``post = omega lam_c^-1``
    (omega = output damping, lam_c = clamped belief precision) and beta = 1 - message damping;
    ``S^T r = y + beta sum_j G_ij^T y_j`` with ``y = post r``.
    """

    gains: GBPGains
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
        return blocks.mv(self.post, r + self._neighbours(r, False))

    def apply_t(self, r: Tensor) -> Tensor:
        y = blocks.mv(self.post, r)
        return y + self._neighbours(y, True)


@dataclass
class JacobiSmoother:
    """Damped (block-)Jacobi: ``S r = omega diag(A)^-1 r``."""

    inv_diag: Tensor
    omega: float

    def apply(self, r: Tensor) -> Tensor:
        return self.omega * blocks.mv(self.inv_diag, r)

    apply_t = apply


def gbp_smoother(diag: Tensor, gains: GBPGains, damping: float = 0.5, relax: float = 0.8,
                 clamp: float = 0.6) -> Stencil | BlockGBPSmoother:
    """Frozen-gain GBP smoother (message damping ``damping``, output damping ``relax``).

    diag: the diagonal blocks of A, a lam field (the system stencil's centre).
    Scalar fields: ``S r = post (u + beta sum_j G_ji u_j)`` with ``u = pre r``, where the clamp is
    applied symmetrically, ``pre = C^1/2``, ``post = omega C^1/2 lam_b^-1``,
    ``C = lam_b / max(lam_b, clamp diag(A))`` (so diag(S) = omega / clamped lam_b), folded into one
    5-point :class:`~.stencil.Stencil`. Full 2x2 fields: lam_b itself is clamped (:class:`BlockGBPSmoother`).
    """
    lam_c = clamp_lam(gains.lam_b, diag, clamp)
    beta = 1.0 - damping
    if blocks.is_full(gains.lam_b):
        return BlockGBPSmoother(gains, relax * blocks.inv(lam_c), beta)
    pre = (gains.lam_b / lam_c).sqrt()
    post = relax * pre / gains.lam_b
    centre = post * pre
    post, send = post.unsqueeze(1), (beta * pre).unsqueeze(1)
    gr, gl, gd, gu = (g.unsqueeze(1) for g in gains.g)
    k = (post[..., :, 1:] * gr * send[..., :, :-1], post[..., :, :-1] * gl * send[..., :, 1:],
         post[..., 1:, :] * gd * send[..., :-1, :], post[..., :-1, :] * gu * send[..., 1:, :])
    return Stencil(centre, k)


def jacobi_smoother(diag: Tensor, relax: float = 0.8) -> JacobiSmoother:
    """diag: the diagonal blocks of A, a lam field."""
    return JacobiSmoother(blocks.inv(diag), relax)

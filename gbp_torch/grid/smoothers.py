"""Smoothers for the multigrid V-cycle: frozen-gain GBP and damped Jacobi.

A smoother is an approximate inverse ``S``; one step on ``A e = r`` is
``e += S (r - A e)``. ``apply`` gives ``S r``, ``apply_t`` gives ``S^T r``
(pre-smoothing with S and post-smoothing with S^T makes the V-cycle symmetric).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from . import blocks
from .gbp import GBPGains
from .system import GridSystem, diagonal, scatter_edges


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
    """

    gains: GBPGains
    inv_lam: Tensor
    beta: float
    omega: float
    sc: Tensor | None = None

    def _core(self, r: Tensor) -> Tensor:
        gr, gl, gd, gu = self.gains.g
        nb = scatter_edges(blocks.mv(gr, r[..., :, :-1]), blocks.mv(gl, r[..., :, 1:]),
                           blocks.mv(gd, r[..., :-1, :]), blocks.mv(gu, r[..., 1:, :]))
        return blocks.mv(self.inv_lam, r + self.beta * nb)

    def _core_t(self, r: Tensor) -> Tensor:
        gr, gl, gd, gu = self.gains.g
        y = blocks.mv(self.inv_lam, r)
        nb = scatter_edges(blocks.mv(gl, y[..., :, :-1]), blocks.mv(gr, y[..., :, 1:]),
                           blocks.mv(gu, y[..., :-1, :]), blocks.mv(gd, y[..., 1:, :]))
        return y + self.beta * nb

    def apply(self, r: Tensor) -> Tensor:
        if self.sc is None:
            return self.omega * self._core(r)
        sc = self.sc.unsqueeze(1)
        return (self.omega * sc) * self._core(sc * r)

    def apply_t(self, r: Tensor) -> Tensor:
        if self.sc is None:
            return self.omega * self._core_t(r)
        sc = self.sc.unsqueeze(1)
        return (self.omega * sc) * self._core_t(sc * r)


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
        return GBPSmoother(gains, blocks.inv(lam_c), 1.0 - damping, relax)
    return GBPSmoother(gains, 1.0 / gains.lam_b, 1.0 - damping, relax, (gains.lam_b / lam_c).sqrt())


def jacobi_smoother(sys: GridSystem, relax: float = 0.8) -> JacobiSmoother:
    return JacobiSmoother(blocks.inv(diagonal(sys)), relax)

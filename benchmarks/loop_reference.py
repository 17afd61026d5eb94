"""Slow reference: synchronous GBP with a plain Python loop over factors (numpy).

The same update as :class:`gbp_torch.GBPEngine` (sync schedule, no damping,
linear factors), written the way per-factor GBP libraries are: one factor at a
time, small numpy matrices. Used by ``bench_factor_graph.py`` as the baseline
and to check that both compute the same messages.
"""

from __future__ import annotations

import numpy as np


class LoopGBP:
    """Per-factor GBP on a graph of linear factors.

    Args:
        num_vars: number of variables; dims: their dimension (one group).
        factors: list of (variable ids (K,), J (m, K*d), z (m,), L (m, m)).
    """

    def __init__(self, num_vars: int, dim: int, factors: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]):
        self.dim = dim
        self.factors = []
        for ids, jac, z, prec in factors:
            jt_l = jac.T @ prec
            self.factors.append((np.asarray(ids), jt_l @ z, jt_l @ jac))
        self.msg_eta = [np.zeros((len(ids), dim)) for ids, _, _ in self.factors]
        self.msg_lam = [np.zeros((len(ids), dim, dim)) for ids, _, _ in self.factors]
        self.belief_eta = np.zeros((num_vars, dim))
        self.belief_lam = np.zeros((num_vars, dim, dim))

    def factor_update(self, f: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """New messages from factor f to each of its variables."""
        ids, eta_f, lam_f = self.factors[f]
        d, k_slots = self.dim, len(ids)
        if k_slots == 1:
            return [eta_f.copy()], [lam_f.copy()]
        eta_in, lam_in = eta_f.copy(), lam_f.copy()
        for k, v in enumerate(ids):
            s = slice(k * d, (k + 1) * d)
            eta_in[s] += self.belief_eta[v] - self.msg_eta[f][k]
            lam_in[s, s] += self.belief_lam[v] - self.msg_lam[f][k]
        out_eta, out_lam = [], []
        for k, v in enumerate(ids):
            a = np.arange(k * d, (k + 1) * d)
            b = np.setdiff1d(np.arange(k_slots * d), a)
            eta_a = eta_in[a] - (self.belief_eta[v] - self.msg_eta[f][k])
            lam_aa = lam_in[np.ix_(a, a)] - (self.belief_lam[v] - self.msg_lam[f][k])
            lam_ab = lam_in[np.ix_(a, b)]
            lam_bb_inv = np.linalg.inv(lam_in[np.ix_(b, b)])
            out_lam.append(lam_aa - lam_ab @ lam_bb_inv @ lam_ab.T)
            out_eta.append(eta_a - lam_ab @ lam_bb_inv @ eta_in[b])
        return out_eta, out_lam

    def update_factors(self, factor_ids: range | None = None) -> None:
        """Compute (from the current beliefs) and store new messages of all or ``factor_ids`` factors."""
        factor_ids = range(len(self.factors)) if factor_ids is None else factor_ids
        new = {f: self.factor_update(f) for f in factor_ids}
        for f, (eta, lam) in new.items():
            self.msg_eta[f][:] = eta
            self.msg_lam[f][:] = lam

    def sum_beliefs(self) -> None:
        """Beliefs = sums of the incoming factor messages."""
        self.belief_eta[:] = 0.0
        self.belief_lam[:] = 0.0
        for f, (ids, _, _) in enumerate(self.factors):
            for k, v in enumerate(ids):
                self.belief_eta[v] += self.msg_eta[f][k]
                self.belief_lam[v] += self.msg_lam[f][k]

    def iterate(self) -> None:
        """One synchronous iteration."""
        self.update_factors()
        self.sum_beliefs()

    def means(self) -> np.ndarray:
        return np.linalg.solve(self.belief_lam, self.belief_eta[..., None])[..., 0]

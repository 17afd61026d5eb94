"""Shared test helpers: independent numpy oracles (factor graphs, the sparsification error).

Everything here is float64 numpy built straight from the families' stored
jacobian / z / precision tensors and slot indices, never from engine code.
"""

from __future__ import annotations

import numpy as np
import torch

from gbp_torch import FactorGraph, LinearFactors

DT = torch.float64


def t(x) -> torch.Tensor:
    """A float64 tensor."""
    return torch.as_tensor(np.asarray(x), dtype=DT)


def random_spd(rng: np.random.Generator, n: int, batch: tuple[int, ...] = (), cond: float = 10.0) -> np.ndarray:
    """Random SPD matrices (*batch, n, n) with eigenvalues in [1, cond]."""
    q, _ = np.linalg.qr(rng.standard_normal((*batch, n, n)))
    ev = rng.uniform(1.0, cond, size=(*batch, n))
    return (q * ev[..., None, :]) @ np.swapaxes(q, -1, -2)


def offsets(graph: FactorGraph) -> list[int]:
    """Start of each group's block in the global state vector (group-major, variable, component)."""
    out, o = [], 0
    for g in graph.groups:
        out.append(o)
        o += g.num * g.dim
    out.append(o)
    return out


def assemble(graph: FactorGraph, b: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Dense information matrix A and vector eta of a graph of LinearFactors (batch element b).

    energy = sum_f 1/2 (J_f x_f - z_f)^T L_f (J_f x_f - z_f)  =>  A = sum J^T L J, eta = sum J^T L z.
    """
    offs = offsets(graph)
    n = offs[-1]
    A = np.zeros((n, n))
    eta = np.zeros(n)
    for fam in graph.families:
        assert isinstance(fam, LinearFactors)
        J = fam.jacobian.detach().double().numpy()
        z = fam.z.detach().double().numpy()
        L = fam.precision.detach().double().numpy()
        J, z, L = J[min(b, J.shape[0] - 1)], z[min(b, z.shape[0] - 1)], L[min(b, L.shape[0] - 1)]
        for f in range(fam.num_factors):
            cols = []
            for slot in fam.slots:
                g = slot.group
                v = int(slot.index[f])
                cols.extend(range(offs[g.gid] + v * g.dim, offs[g.gid] + (v + 1) * g.dim))
            cols = np.array(cols)
            JtL = J[f].T @ L[f]
            A[np.ix_(cols, cols)] += JtL @ J[f]
            eta[cols] += JtL @ z[f]
    return A, eta


def split(graph: FactorGraph, vec: np.ndarray) -> list[np.ndarray]:
    """Global vector -> per-group (N, d) arrays."""
    offs = offsets(graph)
    return [vec[offs[i]:offs[i + 1]].reshape(g.num, g.dim) for i, g in enumerate(graph.groups)]


def marginal_covs(graph: FactorGraph, A: np.ndarray) -> list[np.ndarray]:
    """Per group (N, d, d): diagonal blocks of A^-1 (exact marginal covariances)."""
    S = np.linalg.inv(A)
    offs = offsets(graph)
    out = []
    for i, g in enumerate(graph.groups):
        blocks = np.zeros((g.num, g.dim, g.dim))
        for v in range(g.num):
            s = offs[i] + v * g.dim
            blocks[v] = S[s:s + g.dim, s:s + g.dim]
        out.append(blocks)
    return out


def exact(graph: FactorGraph, b: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Exact per-group means and marginal covariances of a linear graph."""
    A, eta = assemble(graph, b)
    return split(graph, np.linalg.solve(A, eta)), marginal_covs(graph, A)


def random_linear_graph(
    rng: np.random.Generator,
    dims: tuple[int, ...] = (1, 2, 3),
    nums: tuple[int, ...] = (3, 3, 2),
    edges: str = "tree",
    extra_edges: int = 3,
    prior_precision: float = 1.0,
    factor_scale: float = 1.0,
) -> FactorGraph:
    """A random linear graph with several variable groups of different dims.

    ``edges``: "chain" (consecutive variables in a global order), "tree" (each
    variable joined to a random earlier one), or "loopy" (tree plus
    ``extra_edges`` random pairwise factors and one 3-slot factor). Pairwise
    factors join variables of possibly different groups (different dims), with
    random J (m x n). Every variable also gets a prior (so A is SPD).
    """
    graph = FactorGraph()
    groups = [graph.add_variables(n, d) for n, d in zip(nums, dims)]
    order = [(gi, v) for gi, g in enumerate(groups) for v in range(g.num)]
    perm = rng.permutation(len(order))
    order = [order[i] for i in perm]

    # priors: one family per group
    for g in groups:
        graph.add(LinearFactors([g.all()], t(rng.standard_normal((g.num, g.dim, g.dim)) + 2 * np.eye(g.dim)),
                                t(rng.standard_normal((g.num, g.dim))), t(prior_precision)))

    pairs = []
    if edges == "chain":
        pairs = [(order[i], order[i + 1]) for i in range(len(order) - 1)]
    else:
        pairs = [(order[int(rng.integers(0, i))], order[i]) for i in range(1, len(order))]
        if edges == "loopy":
            for _ in range(extra_edges):
                i, j = rng.choice(len(order), size=2, replace=False)
                pairs.append((order[i], order[j]))
    # group the pairwise factors into families by (group_a, group_b)
    by_key: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for (ga, va), (gb, vb) in pairs:
        by_key.setdefault((ga, gb), []).append((va, vb))
    for (ga, gb), vs in by_key.items():
        n = dims[ga] + dims[gb]
        m = int(rng.integers(1, n + 1))
        F = len(vs)
        J = factor_scale * rng.standard_normal((F, m, n))
        L = random_spd(rng, m, (F,), cond=3.0)
        graph.add(LinearFactors([groups[ga][[a for a, _ in vs]], groups[gb][[b for _, b in vs]]],
                                t(J), t(rng.standard_normal((F, m))), t(L)))
    if edges == "loopy" and len(order) >= 3:
        i, j, k = rng.choice(len(order), size=3, replace=False)
        (g1, v1), (g2, v2), (g3, v3) = order[i], order[j], order[k]
        n = dims[g1] + dims[g2] + dims[g3]
        graph.add(LinearFactors([groups[g1][[v1]], groups[g2][[v2]], groups[g3][[v3]]],
                                t(factor_scale * rng.standard_normal((1, 2, n))), t(rng.standard_normal((1, 2))),
                                t(1.0)))
    return graph


def np_result(x) -> np.ndarray:
    return x.detach().double().numpy()



def unclip_oracle(mean, var, sigma):
    """Independent of gbp_torch.tasks.denoise.clipping: the clean value x in [0, 1] whose clipped noisy mean
    ``E[clip(x + n)] = int_0^1 P(x + n > t) dt`` (trapezoid rule over t, scipy's normal tail, tabulated on a
    fine grid of x and inverted by interpolation) equals ``mean``, and ``var`` divided by the squared
    probability of not clipping. Arrays of one shape, sigma broadcastable (few distinct values)."""
    from scipy.stats import norm

    mean = np.asarray(mean, dtype=np.float64)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), mean.shape)
    t = np.linspace(0.0, 1.0, 2001)
    grid = np.linspace(0.0, 1.0, 4001)
    x = np.empty_like(mean)
    for s in np.unique(sigma):
        tail = norm.sf((t[None, :] - grid[:, None]) / s)
        table = ((tail[:, 1:] + tail[:, :-1]) / 2).sum(1) * (t[1] - t[0])  # E(grid), increasing
        here = sigma == s
        x[here] = np.interp(mean[here], table, grid)  # clamps to 0 / 1 outside [E(0), E(1)]
    keep = norm.cdf((1 - x) / sigma) - norm.cdf(-x / sigma)
    return x, None if var is None else np.asarray(var, dtype=np.float64) / keep**2


def sparsification_loop(err, unc, steps):
    """The definition, in numpy: per fraction, the mean error left by each order; their mean gap over the MAE."""
    gaps = []
    for i in range(steps):
        k = int(i * err.size / steps)
        by_unc = err[np.argsort(-unc, kind="stable")][k:].mean()
        by_err = np.sort(err)[::-1][k:].mean()
        gaps.append(by_unc - by_err)
    return np.mean(gaps) / err.mean()

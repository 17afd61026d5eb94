"""Independent numpy / scipy oracles for the grid tests (no engine code used)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch


def assemble(a: np.ndarray, wh: np.ndarray, wv: np.ndarray, d: int = 1) -> sp.csc_matrix:
    """Sparse A of one batch item, unknowns ordered (y, x, component).

    a: (H, W) scalar precision or (2, 2, H, W) blocks; wh (H, W-1); wv (H-1, W).
    """
    h, w = wh.shape[0], wv.shape[1]
    n = h * w
    idx = np.arange(n).reshape(h, w)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    ww = np.concatenate([wh.ravel(), wv.ravel()])
    lap = sp.coo_matrix((np.concatenate([-ww, -ww, ww, ww]),
                         (np.concatenate([i, j, i, j]), np.concatenate([j, i, i, j]))), shape=(n, n))
    lap = sp.kron(lap, sp.eye(d))
    if a.ndim == 2:
        dat = sp.kron(sp.diags(a.ravel()), sp.eye(d))
    else:
        dat = sp.block_diag([a[:, :, y, x] for y in range(h) for x in range(w)])
    return (lap + dat).tocsc()


def direct_solve(z, a, wh, wv):
    """Exact means by spsolve, batched. z (B, H, W) or (B, 2, H, W); a (B, H, W) or (B, 2, 2, H, W)."""
    z, a, wh, wv = (t.detach().cpu().double().numpy() for t in (z, a, wh, wv))
    out = []
    for b in range(z.shape[0]):
        if z.ndim == 3:
            A = assemble(a[b], wh[b], wv[b])
            rhs = (a[b] * z[b]).ravel()
            out.append(spl.spsolve(A, rhs).reshape(z.shape[1:]))
        else:
            A = assemble(a[b], wh[b], wv[b], d=2)
            ab = a[b] if a.ndim == 5 else np.eye(2)[:, :, None, None] * a[b][None, None]
            rhs = np.einsum("ijhw,jhw->hwi", ab, z[b]).ravel()
            out.append(np.moveaxis(spl.spsolve(A, rhs).reshape(z.shape[2], z.shape[3], 2), -1, 0))
    return torch.as_tensor(np.stack(out))


def exact_marginal_var(a, wh, wv):
    """diag(A^-1) of a D = 1 batch item by dense inversion, (H, W)."""
    A = assemble(*(t.detach().cpu().double().numpy() for t in (a, wh, wv))).toarray()
    return torch.as_tensor(np.diag(np.linalg.inv(A)).reshape(a.shape).copy())


def naive_loopy_gbp(a, z, wh, wv, iters: int = 300):
    """Textbook synchronous loopy GBP with per-edge Python loops (D = 1, one item).

    Returns (means, variances) as (H, W) tensors. Slow; tiny grids only.
    """
    a, z, wh, wv = (t.detach().double().numpy() for t in (a, z, wh, wv))
    h, w = a.shape
    nbrs = {}
    for y in range(h):
        for x in range(w):
            nbrs[(y, x)] = []
    for y in range(h):
        for x in range(w - 1):
            nbrs[(y, x)].append(((y, x + 1), wh[y, x]))
            nbrs[(y, x + 1)].append(((y, x), wh[y, x]))
    for y in range(h - 1):
        for x in range(w):
            nbrs[(y, x)].append(((y + 1, x), wv[y, x]))
            nbrs[(y + 1, x)].append(((y, x), wv[y, x]))
    msg = {(i, j): (0.0, 0.0) for i in nbrs for j, _ in nbrs[i]}  # i -> j: (eta, lam)
    for _ in range(iters):
        new = {}
        for i in nbrs:
            for j, wij in nbrs[i]:
                eta_c = a[i] * z[i] + sum(msg[(k, i)][0] for k, _ in nbrs[i] if k != j)
                lam_c = a[i] + sum(msg[(k, i)][1] for k, _ in nbrs[i] if k != j)
                new[(i, j)] = (wij * eta_c / (wij + lam_c), wij * lam_c / (wij + lam_c))
        msg = new
    mean, var = np.zeros((h, w)), np.zeros((h, w))
    for i in nbrs:
        eta = a[i] * z[i] + sum(msg[(k, i)][0] for k, _ in nbrs[i])
        lam = a[i] + sum(msg[(k, i)][1] for k, _ in nbrs[i])
        mean[i], var[i] = eta / lam, 1.0 / lam
    return torch.as_tensor(mean), torch.as_tensor(var)


def random_problem(b: int, h: int, w: int, d: int = 1, full: bool = False, seed: int = 0,
                   ratio: float = 3.0, dtype=torch.float64):
    """Random z, data precision, edge weights (float64 by default)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn((b, h, w) if d == 1 else (b, 2, h, w), generator=g, dtype=dtype)
    if full:
        m = torch.randn(b, 2, 2, h, w, generator=g, dtype=dtype)
        a = torch.einsum("bijhw,bkjhw->bikhw", m, m) + 0.1 * torch.eye(2, dtype=dtype)[None, :, :, None, None]
    else:
        a = torch.rand(b, h, w, generator=g, dtype=dtype) + 0.2
    wh = ratio * torch.rand(b, h, w - 1, generator=g, dtype=dtype)
    wv = ratio * torch.rand(b, h - 1, w, generator=g, dtype=dtype)
    return z, a, wh, wv

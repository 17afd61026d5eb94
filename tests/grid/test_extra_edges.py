"""The grid plus extra (non-local) edges: against a scipy sparse solve, gradcheck, and the plain grid."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch

from gbp_torch.grid import MULTIGRID, solve
from gbp_torch.grid.extra_edges import edge_adjacency, edge_degree, solve_with_edges

DT = torch.float64


def problem(b=2, d=1, h=7, w=8, k=3, seed=0, strength=1.0):
    g = torch.Generator().manual_seed(seed)
    z = torch.rand(b, d, h, w, generator=g, dtype=DT)
    a = torch.rand(b, h, w, generator=g, dtype=DT) + 0.2
    wh = torch.rand(b, h, w - 1, generator=g, dtype=DT)
    wv = torch.rand(b, h - 1, w, generator=g, dtype=DT)
    index = torch.randint(0, h * w, (b, k, h, w), generator=g)
    weight = strength * torch.rand(b, k, h, w, generator=g, dtype=DT)
    return z, a, wh, wv, index, weight


def sparse_matrix(a, wh, wv, index, weight, bi):
    """A = diag(a) + grid Laplacian + extra edges' Laplacian, built edge by edge."""
    h, w = a.shape[-2:]
    rows, cols, vals = list(range(h * w)), list(range(h * w)), a[bi].flatten().tolist()

    def edge(i, j, v):
        rows.extend([i, j, i, j])
        cols.extend([i, j, j, i])
        vals.extend([v, v, -v, -v])

    for y in range(h):
        for x in range(w):
            i = y * w + x
            if x + 1 < w:
                edge(i, i + 1, float(wh[bi, y, x]))
            if y + 1 < h:
                edge(i, i + w, float(wv[bi, y, x]))
            for k in range(index.shape[1]):
                edge(i, int(index[bi, k, y, x]), float(weight[bi, k, y, x]))
    return sp.csc_matrix((vals, (rows, cols)), shape=(h * w, h * w))


@pytest.mark.parametrize("d", [1, 2])
def test_matches_sparse_solve(d):
    z, a, wh, wv, index, weight = problem(d=d)
    res = solve_with_edges(z, a, wh, wv, index, weight, iters=40)
    for bi in range(z.shape[0]):
        mat = sparse_matrix(a, wh, wv, index, weight, bi)
        for c in range(d):
            ref = spl.spsolve(mat, (a[bi] * z[bi, c]).flatten().numpy())
            np.testing.assert_allclose(res.mean[bi, c].flatten().numpy(), ref, rtol=1e-8, atol=1e-10)
    assert (res.residuals < 1e-8).all()


def test_operators_match_the_sparse_matrix():
    z, a, wh, wv, index, weight = problem(b=1, d=1)
    zero = torch.zeros_like(a)
    mat = sparse_matrix(zero, torch.zeros_like(wh), torch.zeros_like(wv), index, weight, 0)
    x = torch.randn(1, 1, *a.shape[-2:], dtype=DT)
    lap = edge_degree(index, weight).unsqueeze(1) * x - edge_adjacency(index, weight, x)
    np.testing.assert_allclose(lap.flatten().numpy(), mat @ x.flatten().numpy(), rtol=1e-10, atol=1e-12)


def test_zero_extra_weights_give_the_grid_solution():
    z, a, wh, wv, index, weight = problem()
    res = solve_with_edges(z, a, wh, wv, index, torch.zeros_like(weight), iters=30)
    ref = solve(z, a, (wh, wv), iters=30, tol=1e-12, config=MULTIGRID)
    torch.testing.assert_close(res.mean, ref.mean, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(res.var, ref.var.view_as(res.var), rtol=1e-6, atol=1e-8)


def test_gradcheck_implicit_backward():
    z, a, wh, wv, index, weight = problem(b=1, h=4, w=5, k=2, seed=3)
    args = [t.clone().requires_grad_() for t in (z, a, wh, wv, weight)]

    def f(z, a, wh, wv, weight):
        return solve_with_edges(z, a, wh, wv, index, weight, iters=30).mean

    assert torch.autograd.gradcheck(f, args, atol=1e-7, rtol=1e-5)


def test_strong_edges_still_converge_with_enough_steps():
    """Extra edges 20x stronger than the data: FCG with the grid V-cycle still gets there."""
    z, a, wh, wv, index, weight = problem(b=1, h=16, w=16, k=4, strength=20.0)
    res = solve_with_edges(z, a, wh, wv, index, weight, iters=60)
    assert float(res.residuals.max()) < 1e-6


@pytest.mark.parametrize("field,value,match", [("a", -1.0, "a"), ("weight", float("nan"), "weight"),
                                               ("index", 10**6, "index")])
def test_bad_values_are_refused(field, value, match):
    z, a, wh, wv, index, weight = problem()
    args = {"z": z, "a": a, "wh": wh, "wv": wv, "index": index, "weight": weight}
    args[field] = args[field].clone()
    args[field].view(-1)[0] = value
    with pytest.raises(ValueError, match=match):
        solve_with_edges(**args)


def test_bad_shapes_are_refused():
    z, a, wh, wv, index, weight = problem()
    with pytest.raises(ValueError, match="wh must have shape"):
        solve_with_edges(z, a, wv, wv, index, weight)
    with pytest.raises(ValueError, match="int64"):
        solve_with_edges(z, a, wh, wv, index.int(), weight)


def test_tolerance_stops_early_and_a_warm_start_at_the_answer_needs_nothing():
    z, a, wh, wv, index, weight = problem(b=1, h=16, w=16, k=4, strength=5.0)
    exact = solve_with_edges(z, a, wh, wv, index, weight, iters=80).mean
    loose = solve_with_edges(z, a, wh, wv, index, weight, iters=80, tol=1e-4)
    assert 1e-9 < float(loose.residuals.max()) <= 1e-4
    assert (loose.mean - exact).abs().max() > 0  # it stopped before the end
    warm = solve_with_edges(z, a, wh, wv, index, weight, iters=1, x0=exact)
    assert float(warm.residuals.max()) < 1e-9
    torch.testing.assert_close(warm.mean, exact, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("scale", [0.0, 1e-12])
def test_stays_finite_and_smooths_without_usable_data(scale):
    """Data precisions zero or far below rounding beside grid and extra edge weights 100 (float32): the
    search direction's curvature reaches rounding level, which must not give a huge step (the shared
    FCG floors it; the extra edges' own loop gave NaN on 3 of these 6 seeds)."""
    bad = 0
    for seed in range(6):
        g = torch.Generator().manual_seed(seed)
        h, w, k = 16, 21, 4
        a = scale * torch.rand(1, h, w, generator=g)
        z, x0 = torch.randn(2, 1, 1, h, w, generator=g).unbind(0)
        wh, wv = torch.full((1, h, w - 1), 100.0), torch.full((1, h - 1, w), 100.0)
        index = torch.randint(0, h * w, (1, k, h, w), generator=g)
        weight = torch.full((1, k, h, w), 100.0)
        res = solve_with_edges(z, a, wh, wv, index, weight, iters=60, x0=x0)
        bad += int(not torch.isfinite(res.mean).all())
        assert not torch.isfinite(res.mean).all() or float(res.mean.std()) < float(x0.std())
    assert bad == 0

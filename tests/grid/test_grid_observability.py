"""Unobservable regions (no data behind zero edge weights; D = 2 data of one direction) are found,
reported and regularised, and the rest of the image is solved exactly."""

import warnings

import numpy as np
import pytest
import scipy.sparse.csgraph as csgraph
import torch
from grid_reference import assemble, direct_solve, random_problem

from gbp_torch.grid import MULTIGRID, GridConfig, GridUnobservableWarning, solve
from gbp_torch.grid.observability import components

DT = torch.float64


@pytest.mark.parametrize("seed", range(4))
def test_components_match_scipy(seed):
    g = torch.Generator().manual_seed(seed)
    b, h, w = 2, 9, 13
    wh = (torch.rand(b, h, w - 1, generator=g) > 0.55).to(DT)  # sparse edges: many components
    wv = (torch.rand(b, h - 1, w, generator=g) > 0.55).to(DT)
    labels = components(wh, wv)
    for i in range(b):
        graph = assemble(np.zeros((h, w)), wh[i].numpy(), wv[i].numpy())  # Laplacian: off-diagonals = edges
        n, ref = csgraph.connected_components(graph, directed=False)
        ours = labels[i].reshape(-1).numpy()
        # same partition: a bijection between our labels and scipy's
        pairs = set(zip(ours.tolist(), ref.tolist()))
        assert len(pairs) == n == len(set(ours.tolist()))


def _cut_problem(d=1):
    """Item 1 has a 3-column strip without data, cut off from the rest by zero weights."""
    z, a, wh, wv = random_problem(2, 10, 12, d=d, seed=3)
    a, wh = a.clone(), wh.clone()
    if d == 1:
        a[1, :, :3] = 0
    else:
        a[1, ..., :3] = 0
    wh[1, :, 2] = 0
    return z, a, wh, wv


@pytest.mark.parametrize("config", [GridConfig(), MULTIGRID], ids=["flat", "multigrid"])
@pytest.mark.parametrize("d", [1, 2])
def test_region_without_data_is_reported_and_the_rest_is_exact(config, d):
    z, a, wh, wv = _cut_problem(d)
    with pytest.warns(GridUnobservableWarning, match=r"item 1: 30 px"):
        res = solve(z, a, (wh, wv), iters=3000 if config.flat else 40, tol=1e-11, config=config)
    assert res.converged
    expected = torch.zeros(2, 10, 12, dtype=torch.bool)
    expected[1, :, :3] = True
    assert torch.equal(res.unobservable, expected)
    assert torch.isfinite(res.mean).all()
    var = res.var if d == 1 else res.var[:, 0, 0]
    assert torch.isinf(var[expected]).all() and torch.isfinite(var[~expected]).all()
    # item 0 untouched; item 1's observed part equals the exact solve of that part alone
    torch.testing.assert_close(res.mean[0], direct_solve(z[:1], a[:1], wh[:1], wv[:1])[0], rtol=0, atol=1e-8)
    sub = (z[1:, ..., 3:], a[1:, ..., 3:], wh[1:, :, 3:], wv[1:, :, 3:])
    torch.testing.assert_close(res.mean[1:, ..., 3:], direct_solve(*sub), rtol=0, atol=1e-8)


def test_d2_one_directional_data_is_unobservable_in_the_other_direction():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(1, 2, 8, 8, generator=g, dtype=DT)
    a = torch.zeros(1, 2, 2, 8, 8, dtype=DT)
    a[:, 0, 0] = torch.rand(1, 8, 8, generator=g, dtype=DT) + 0.5  # only u is measured: v is free
    with pytest.warns(GridUnobservableWarning):
        res = solve(z, a, 3.0, iters=40, tol=1e-10, config=MULTIGRID)
    assert res.unobservable.all() and res.converged
    # u decouples: it is the D = 1 solve of the u data, up to the tiny regularisation
    u_only = direct_solve(z[:, 0], a[:, 0, 0], torch.full((1, 8, 7), 3.0, dtype=DT), torch.full((1, 7, 8), 3.0,
                                                                                                  dtype=DT))
    torch.testing.assert_close(res.mean[:, 0], u_only, rtol=0, atol=1e-2)
    # only v's variance is unknown; u's is the D = 1 solve's (same solver, the tiny regularisation aside)
    assert torch.isinf(res.var[:, 1, 1]).all()
    assert torch.isfinite(res.var[:, 0, 0]).all() and torch.isfinite(res.var[:, 0, 1]).all()
    u_var = solve(z[:, 0], a[:, 0, 0], 3.0, iters=40, tol=1e-10, config=MULTIGRID).var
    torch.testing.assert_close(res.var[:, 0, 0], u_var, rtol=1e-2, atol=0)


@pytest.mark.parametrize("angle", [0.3, 1.2])
def test_d2_data_of_an_oblique_direction_leave_both_coordinates_undetermined(angle):
    """Data along (cos t, sin t) only: the unseen direction (-sin t, cos t) moves u and v, so both variances are
    inf; rotated to the axes (t = 0) only v's would be."""
    g = torch.Generator().manual_seed(5)
    z = torch.randn(1, 2, 6, 7, generator=g, dtype=DT)
    n = torch.tensor([np.cos(angle), np.sin(angle)], dtype=DT)
    a = (torch.rand(1, 1, 1, 6, 7, generator=g, dtype=DT) + 0.5) * (n[:, None] * n[None, :])[None, :, :, None, None]
    with pytest.warns(GridUnobservableWarning):
        res = solve(z, a, 2.0, iters=40, tol=1e-10, config=MULTIGRID)
    assert res.unobservable.all() and torch.isinf(res.var).all()
    # the seen direction is solved: n . x equals the D = 1 solve of the projected data
    seen = torch.einsum("d,bdhw->bhw", n, res.mean)
    proj = solve(torch.einsum("d,bdhw->bhw", n, z), a[:, 0, 0] / n[0] ** 2, 2.0, iters=40, tol=1e-10,
                 config=MULTIGRID).mean
    torch.testing.assert_close(seen, proj, rtol=0, atol=1e-2)


def test_connected_batch_reports_only_the_item_without_two_directional_data():
    """Edges everywhere (one component per item, the summed-per-item path): item 0 has full 2x2 data on one
    pixel, item 1 measures u only; only item 1 is reported, relative eps RANK_DEFICIENT_EPS on every pixel."""
    from gbp_torch.grid.checks import check_inputs
    from gbp_torch.grid.observability import RANK_DEFICIENT_EPS, unobservable

    a = torch.zeros(2, 2, 2, 5, 6, dtype=DT)
    a[0, :, :, 2, 3] = torch.eye(2, dtype=DT)
    a[1, 0, 0] = 1.0
    sys, _, _ = check_inputs(torch.zeros(2, 2, 5, 6, dtype=DT), a, 1.0)
    rel, hidden = unobservable(sys)
    assert torch.equal(rel[0], torch.zeros(5, 6, dtype=DT))
    assert torch.equal(rel[1], torch.full((5, 6), RANK_DEFICIENT_EPS, dtype=DT))
    assert not hidden[0].any() and not hidden[1, 0].any() and hidden[1, 1].all()  # v of item 1 only


def test_observable_problems_are_untouched_and_validate_false_skips_the_search():
    z, a, wh, wv = random_problem(1, 6, 7, seed=5)
    res = solve(z, a, (wh, wv), iters=40, tol=1e-12, config=MULTIGRID)
    assert res.unobservable is None
    z, a, wh, wv = _cut_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridUnobservableWarning)
        res = solve(z, a, (wh, wv), iters=5, validate=False)  # the caller vouches for the inputs
    assert res.unobservable is None


def test_implicit_gradients_through_a_cut_problem_match_unrolled_ones():
    z, a, wh, wv = _cut_problem()
    z, a = z.clone().requires_grad_(), a.clone().requires_grad_()
    grads = {}
    for mode in ("unroll", "implicit"):
        with pytest.warns(GridUnobservableWarning):
            res = solve(z, a, (wh, wv), iters=40, tol=1e-12, config=MULTIGRID, backward=mode)
        grads[mode] = torch.autograd.grad(res.mean.square().sum(), [z, a])
    for gi, gu in zip(grads["implicit"], grads["unroll"]):
        torch.testing.assert_close(gi, gu, rtol=1e-5, atol=1e-8)

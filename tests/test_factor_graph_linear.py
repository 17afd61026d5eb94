"""Linear GBP vs a dense numpy solve of the assembled information system.

Oracle: A = sum J^T L J, eta = sum J^T L z assembled in numpy from the families'
stored tensors (tests/helpers.py); mean = solve(A, eta), marginal cov = diag
blocks of A^-1. float64, tolerance 1e-8 on means (all graphs) and on
covariances (trees only; loopy GBP covariances are only approximations).
"""

import numpy as np
import pytest
import torch
from helpers import assemble, exact, np_result, random_linear_graph, random_spd, t

from gbp_torch import DifferenceFactors, FactorGraph, GBPResult, LinearFactors, PriorFactors

TOL = 1e-8


def _check_means(graph, result, b=None, covs=True):
    means, cov_ref = exact(graph, 0 if b is None else b)
    for i in range(len(graph.groups)):
        m = result.means[i] if b is None else result.means[i][b]
        np.testing.assert_allclose(np_result(m), means[i], atol=TOL)
        if covs:
            c = result.covs[i] if b is None else result.covs[i][b]
            np.testing.assert_allclose(np_result(c), cov_ref[i], atol=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_random_chain_mixed_dims_exact(seed):
    rng = np.random.default_rng(seed)
    graph = random_linear_graph(rng, dims=(1, 2, 3), nums=(3, 3, 2), edges="chain")
    res = graph.solve(iters=100, tol=1e-12)
    assert res.converged and not res.diverged and res.status == "converged"
    assert [m.shape for m in res.means] == [(3, 1), (3, 2), (2, 3)]
    assert [c.shape for c in res.covs] == [(3, 1, 1), (3, 2, 2), (2, 3, 3)]
    _check_means(graph, res)


@pytest.mark.parametrize("seed", range(6))
def test_random_tree_mixed_dims_exact_means_and_covs(seed):
    rng = np.random.default_rng(100 + seed)
    nums = tuple(int(v) for v in rng.integers(1, 5, size=3))
    graph = random_linear_graph(rng, dims=(1, 2, 3), nums=nums, edges="tree")
    res = graph.solve(iters=100, tol=1e-12)
    assert res.converged, res.status
    _check_means(graph, res)


def test_hypertree_with_three_slot_factors_exact():
    """K = 3 factors joining variables of dims 1, 2, 3 in a tree-structured factor graph."""
    rng = np.random.default_rng(7)
    g = FactorGraph()
    X, Y, Z = g.add_variables(3, 1), g.add_variables(3, 2), g.add_variables(2, 3)
    for grp in (X, Y, Z):
        g.add(PriorFactors(grp.all(), t(rng.standard_normal((grp.num, grp.dim))), t(0.5)))
    # f0: (x0, y0, z0), f1: (x1, y1, z1)  -- one family of two 3-slot factors, m = 4
    g.add(LinearFactors([X[[0, 1]], Y[[0, 1]], Z[[0, 1]]], t(rng.standard_normal((2, 4, 6))),
                        t(rng.standard_normal((2, 4))), t(random_spd(rng, 4, (2,)))))
    g.add(LinearFactors([Z[[0]], X[[1]]], t(rng.standard_normal((1, 2, 4))), t(rng.standard_normal((1, 2))),
                        t(np.array([3.0]))))  # per-factor isotropic precision (F,)
    g.add(LinearFactors([X[[2]], Y[[2]]], t(rng.standard_normal((3, 3))), t(rng.standard_normal((1, 3))),
                        t(random_spd(rng, 3))))  # shared (m, n) jacobian and (m, m) precision
    g.add(DifferenceFactors(Y[[2]], Y[[1]], t(rng.standard_normal((1, 2))), t(2.0)))
    res = g.solve(iters=50, tol=1e-12)
    assert res.converged
    _check_means(g, res)
    # accessors
    assert res.mean(Y) is res.means[1] and res.cov(Z) is res.covs[2]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("damping", [0.0, 0.5])
def test_random_loopy_mixed_dims_exact_means(seed, damping):
    rng = np.random.default_rng(200 + seed)
    graph = random_linear_graph(rng, dims=(1, 2, 3), nums=(3, 3, 3), edges="loopy", extra_edges=4,
                                prior_precision=4.0, factor_scale=0.5)
    A, _ = assemble(graph)
    assert np.linalg.eigvalsh(A).min() > 0
    res = graph.solve(iters=400, tol=1e-12, damping=damping)
    assert res.converged, res.status
    _check_means(graph, res, covs=False)
    # covariances are GBP approximations: finite, symmetric PD, same shapes
    for c in res.covs:
        assert torch.isfinite(c).all()
        assert (torch.linalg.eigvalsh(c) > 0).all()


def test_loopy_cycle_of_scalars_means_exact_covs_approximate():
    """A single loop: means exact, variances differ from the true marginals (the known GBP behaviour)."""
    g = FactorGraph()
    x = g.add_variables(4, 1)
    g.add(PriorFactors(x.all(), t([[1.0], [2.0], [0.0], [-1.0]]), t(1.0)))
    g.add(DifferenceFactors(x[[0, 1, 2, 3]], x[[1, 2, 3, 0]], t([[0.5], [0.5], [0.5], [-1.5]]), t(1.0)))
    res = g.solve(iters=300, tol=1e-13)
    assert res.converged
    means, covs = exact(g)
    np.testing.assert_allclose(np_result(res.means[0]), means[0], atol=TOL)
    assert np.abs(np_result(res.covs[0]) - covs[0]).max() > 1e-4  # not exact on a loop


def test_priors_and_differences_match_closed_form_smoother():
    """x_i ~ prior at both ends, x_{i+1} - x_i ~ N(step, 1/4): a 2-D random walk."""
    rng = np.random.default_rng(3)
    N, d = 6, 2
    steps = rng.standard_normal((N - 1, d))
    g = FactorGraph()
    x = g.add_variables(N, d)
    g.add(PriorFactors(x[[0, N - 1]], t(rng.standard_normal((2, d))), t(10.0)))
    g.add(DifferenceFactors(x[:-1], x[1:], t(steps), t(4.0)))
    res = g.solve(iters=50, tol=1e-12)
    # independent oracle: build A directly (Laplacian) per coordinate
    A = np.zeros((N, N))
    for i in range(N - 1):
        A[i:i + 2, i:i + 2] += 4.0 * np.array([[1, -1], [-1, 1]])
    A[0, 0] += 10.0
    A[-1, -1] += 10.0
    pri = g.families[0].z[0].numpy()
    for c in range(d):
        rhs = np.zeros(N)
        rhs[0] += 10.0 * pri[0, c]
        rhs[-1] += 10.0 * pri[1, c]
        rhs[:-1] -= 4.0 * steps[:, c]
        rhs[1:] += 4.0 * steps[:, c]
        np.testing.assert_allclose(np_result(res.means[0])[:, c], np.linalg.solve(A, rhs), atol=TOL)
        np.testing.assert_allclose(np_result(res.covs[0])[:, c, c], np.diag(np.linalg.inv(A)), atol=TOL)


@pytest.mark.parametrize(
    "precision, expect",
    [
        (2.0, lambda F, m: np.broadcast_to(2.0 * np.eye(m), (F, m, m))),
        ("per_factor", None),
        ("shared_matrix", None),
        ("full", None),
    ],
)
def test_precision_forms(precision, expect):
    rng = np.random.default_rng(11)
    F, m = 3, 2
    if precision == "per_factor":
        p = rng.uniform(0.5, 2.0, F)
        expect_arr = p[:, None, None] * np.eye(m)
        precision = t(p)
    elif precision == "shared_matrix":
        p = random_spd(rng, m)
        expect_arr = np.broadcast_to(p, (F, m, m))
        precision = t(p)
    elif precision == "full":
        p = random_spd(rng, m, (F,))
        expect_arr = p
        precision = t(p)
    else:
        expect_arr = expect(F, m)
    g = FactorGraph()
    x = g.add_variables(F, 2)
    fam = g.add(PriorFactors(x.all(), t(rng.standard_normal((F, 2))), precision))
    assert fam.precision.shape == (1, F, m, m)
    np.testing.assert_allclose(fam.precision[0].double().numpy(), expect_arr, atol=1e-6)
    res = g.solve(iters=3)
    np.testing.assert_allclose(np_result(res.means[0]), fam.z[0].double().numpy(), atol=1e-6)
    np.testing.assert_allclose(np_result(res.covs[0]), np.linalg.inv(expect_arr), atol=1e-6)


# -- batched graphs ---------------------------------------------------------------


def _batched_chain(rng, B, batch_precision=True, batch_jacobian=True):
    """A mixed-dim chain whose parameters carry a leading batch dim B."""
    g = FactorGraph()
    X, Y = g.add_variables(3, 1), g.add_variables(3, 2)
    g.add(PriorFactors(X.all(), t(rng.standard_normal((B, 3, 1))), t(rng.uniform(0.5, 2, (B, 3))) if batch_precision
                       else t(1.0)))
    g.add(PriorFactors(Y.all(), t(rng.standard_normal((B, 3, 2))), t(random_spd(rng, 2, (B, 3))) if batch_precision
                       else t(random_spd(rng, 2))))
    J = rng.standard_normal((B, 3, 2, 3)) if batch_jacobian else rng.standard_normal((3, 2, 3))
    g.add(LinearFactors([X.all(), Y.all()], t(J), t(rng.standard_normal((B, 3, 2))),
                        t(random_spd(rng, 2, (B, 3))) if batch_precision else t(1.5)))
    g.add(LinearFactors([Y[:-1], X[1:]], t(rng.standard_normal((2, 1, 3))), t(rng.standard_normal((B, 2, 1))),
                        t(2.0)))
    return g


def test_batched_graph_equals_separate_solves():
    rng = np.random.default_rng(21)
    B = 4
    g = _batched_chain(rng, B)
    res = g.solve(iters=60, tol=1e-12)
    assert [m.shape for m in res.means] == [(B, 3, 1), (B, 3, 2)]
    assert [c.shape for c in res.covs] == [(B, 3, 1, 1), (B, 3, 2, 2)]
    for b in range(B):
        _check_means(g, res, b=b)
        # and the same graph built separately for element b
        sep = FactorGraph()
        X, Y = sep.add_variables(3, 1), sep.add_variables(3, 2)
        refs = {0: [X.all()], 1: [Y.all()], 2: [X.all(), Y.all()], 3: [Y[:-1], X[1:]]}
        for i, fam in enumerate(g.families):
            def el(v, b=b):
                return v[min(b, v.shape[0] - 1)]
            sep.add(LinearFactors(refs[i], el(fam.jacobian), el(fam.z), el(fam.precision)))
        r1 = sep.solve(iters=60, tol=1e-12)
        for i in range(2):
            np.testing.assert_allclose(np_result(res.means[i][b]), np_result(r1.means[i]), atol=TOL)
            np.testing.assert_allclose(np_result(res.covs[i][b]), np_result(r1.covs[i]), atol=TOL)


def test_batched_only_in_measurements():
    """z batched (B, F, m) while precision and jacobian are shared: still B graphs."""
    rng = np.random.default_rng(22)
    B = 3
    g = _batched_chain(rng, B, batch_precision=False, batch_jacobian=False)
    res = g.solve(iters=60, tol=1e-12)
    assert res.means[0].shape == (B, 3, 1)
    for b in range(B):
        _check_means(g, res, b=b)


def test_batched_init_only_gives_batched_result():
    rng = np.random.default_rng(23)
    g = FactorGraph()
    x = g.add_variables(3, 2, init=t(rng.standard_normal((2, 3, 2))))
    g.add(PriorFactors(x.all(), t(rng.standard_normal((3, 2))), t(1.0)))
    g.add(DifferenceFactors(x[:-1], x[1:], t(np.ones((2, 2))), t(1.0)))
    res = g.solve(iters=30, tol=1e-12)
    assert res.means[0].shape == (2, 3, 2)
    means, _ = exact(g)
    for b in range(2):  # a linear graph's solution does not depend on the init
        np.testing.assert_allclose(np_result(res.means[0][b]), means[0], atol=TOL)


def test_unbatched_result_has_no_batch_dim_and_residuals():
    rng = np.random.default_rng(24)
    g = random_linear_graph(rng, edges="tree")
    res = g.solve(iters=2)
    assert isinstance(res, GBPResult)
    assert res.iters == 2 and res.residuals.shape == (2,) and not res.converged
    assert res.status == "max_iters"
    assert res.means[0].dim() == 2


def test_float_precision_keeps_float64_measurements_exact():
    """precision given as a Python float with float64 z / jacobian: the solve must stay float64."""
    rng = np.random.default_rng(25)
    g = FactorGraph()
    x = g.add_variables(3, 1)
    g.add(PriorFactors(x.all(), t(rng.standard_normal((3, 1)) * 1e3), 1.0))
    g.add(DifferenceFactors(x[:-1], x[1:], t(rng.standard_normal((2, 1))), 3.0))
    res = g.solve(iters=30, tol=1e-12)
    assert res.means[0].dtype == torch.float64
    means, _ = exact(g)
    np.testing.assert_allclose(np_result(res.means[0]), means[0], atol=1e-9, rtol=1e-12)


def test_iterating_more_keeps_fixed_point():
    rng = np.random.default_rng(26)
    g = random_linear_graph(rng, edges="tree")
    r1 = g.solve(iters=100, tol=1e-12)
    r2 = g.solve(iters=100)  # no tol: runs all 100 iterations without drifting
    assert r2.iters == 100 and r2.status == "max_iters" and not r2.diverged
    for a, b in zip(r1.means, r2.means):
        np.testing.assert_allclose(np_result(a), np_result(b), atol=TOL)


def test_gradients_through_solve_match_implicit_differentiation():
    """d mean / d z and d mean / d L (autograd through the GBP iterations on a tree) vs numpy:
    mean = A^-1 eta, so d mean = A^-1 (d eta - dA mean)."""
    rng = np.random.default_rng(31)
    g = FactorGraph()
    X, Y = g.add_variables(2, 1), g.add_variables(2, 2)
    z_prior = t(rng.standard_normal((2, 2))).requires_grad_()
    w = t([2.0, 3.0]).requires_grad_()
    J = rng.standard_normal((2, 2, 3))
    z_pair = t(rng.standard_normal((2, 2))).requires_grad_()
    g.add(PriorFactors(X.all(), t(rng.standard_normal((2, 1))), t(1.0)))
    g.add(PriorFactors(Y.all(), z_prior, w))
    g.add(LinearFactors([X.all(), Y.all()], t(J), z_pair, t(1.5)))
    g.add(LinearFactors([X[[0]], X[[1]]], t(np.array([[1.0, -1.0]])), t(np.zeros((1, 1))), t(1.0)))
    res = g.solve(iters=30, tol=1e-14)
    assert res.converged
    c = rng.standard_normal(4 * 1 + 0)  # weights on the means: X (2x1) and Y (2x2) flattened
    cX, cY = t(c[:2].reshape(2, 1)), t(rng.standard_normal((2, 2)))
    loss = (res.means[0] * cX).sum() + (res.means[1] * cY).sum()
    gz_prior, gw, gz_pair = torch.autograd.grad(loss, (z_prior, w, z_pair))
    # numpy oracle: state order X0, X1, Y0(2), Y1(2)
    A, eta = assemble(g)
    mean = np.linalg.solve(A, eta)
    cvec = np.concatenate([c[:2], cY.numpy().ravel()])
    lam_c = np.linalg.solve(A, cvec)  # adjoint: d loss / d eta
    # z_prior (Y priors, J = I, L = w_i I): d eta_Y_i = w_i dz  -> grad = w_i * lam_c[Y_i]
    Ycols = [np.arange(2, 4), np.arange(4, 6)]
    wn = np.array([2.0, 3.0])
    np.testing.assert_allclose(gz_prior.numpy(), np.stack([wn[i] * lam_c[Ycols[i]] for i in range(2)]), atol=1e-8)
    # w_i: d eta = z_i, dA = I on Y_i  -> grad = lam_c[Y_i] . (z_i - mean[Y_i])
    zp = z_prior.detach().numpy()
    np.testing.assert_allclose(gw.numpy(), [lam_c[Ycols[i]] @ (zp[i] - mean[Ycols[i]]) for i in range(2)], atol=1e-8)
    # z_pair f: d eta_cols = J_f^T L df, cols = (X_f, Y_f)
    for f in range(2):
        cols = np.concatenate([[f], Ycols[f]])
        np.testing.assert_allclose(gz_pair[f].numpy(), 1.5 * J[f] @ lam_c[cols], atol=1e-8)

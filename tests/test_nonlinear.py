"""Nonlinear factors: 2-D range-bearing localisation vs scipy.optimize.least_squares.

At a GBP fixed point with relinearisation every move (threshold 0) the means
satisfy the Gauss-Newton normal equations, i.e. they are a stationary point of
the nonlinear least-squares energy; from a good init it is the scipy minimiser.
Tolerance 1e-6 on means.
"""

import numpy as np
import pytest
import scipy.optimize
import torch
from helpers import np_result, t

from gbp_torch import FactorGraph, NonlinearFactors, PriorFactors

TOL = 1e-6

ANCHORS = np.array([[-1.0, -1.0], [-1.5, 1.5], [-0.5, 4.0]])


def h_range(x, a):
    return torch.linalg.vector_norm(x - a).reshape(1)


def h_bearing(x, a):
    d = x - a
    return torch.atan2(d[1], d[0]).reshape(1)


def h_between(x):
    return torch.linalg.vector_norm(x[:2] - x[2:]).reshape(1)


def _problem(rng, N=4, loop=True):
    truth = rng.uniform(0.5, 3.0, size=(N, 2))
    ia = np.repeat(np.arange(N), len(ANCHORS))
    ja = np.tile(np.arange(len(ANCHORS)), N)
    a = ANCHORS[ja]
    d = truth[ia] - a
    z_r = np.linalg.norm(d, axis=1, keepdims=True) + rng.normal(0, 0.05, (len(ia), 1))
    z_b = np.arctan2(d[:, 1], d[:, 0])[:, None] + rng.normal(0, 0.02, (len(ia), 1))
    pairs = [(i, i + 1) for i in range(N - 1)] + ([(0, N - 1)] if loop else [])
    pi, pj = np.array(pairs).T
    z_p = np.linalg.norm(truth[pi] - truth[pj], axis=1, keepdims=True) + rng.normal(0, 0.05, (len(pi), 1))
    return dict(truth=truth, ia=ia, a=a, z_r=z_r, z_b=z_b, pi=pi, pj=pj, z_p=z_p,
                w_r=1 / 0.05**2, w_b=1 / 0.02**2, w_p=1 / 0.05**2)


def _scipy_solution(p, x0):
    def resid(v):
        x = v.reshape(-1, 2)
        d = x[p["ia"]] - p["a"]
        r1 = np.sqrt(p["w_r"]) * (np.linalg.norm(d, axis=1) - p["z_r"][:, 0])
        r2 = np.sqrt(p["w_b"]) * (np.arctan2(d[:, 1], d[:, 0]) - p["z_b"][:, 0])
        r3 = np.sqrt(p["w_p"]) * (np.linalg.norm(x[p["pi"]] - x[p["pj"]], axis=1) - p["z_p"][:, 0])
        return np.concatenate([r1, r2, r3])

    sol = scipy.optimize.least_squares(resid, x0.ravel(), xtol=1e-15, ftol=1e-15, gtol=1e-15, method="lm")
    return sol.x.reshape(-1, 2)


def _gbp_graph(p, init, relin=0.0, every=None):
    N = len(p["truth"])
    g = FactorGraph()
    x = g.add_variables(N, 2, init=t(init))
    kw = dict(relinearise_threshold=relin, relinearise_every=every)
    g.add(NonlinearFactors([x[p["ia"]]], h_range, t(p["z_r"]), t(p["w_r"]), params=[t(p["a"])], **kw))
    g.add(NonlinearFactors([x[p["ia"]]], h_bearing, t(p["z_b"]), t(p["w_b"]), params=[t(p["a"])], **kw))
    g.add(NonlinearFactors([x[p["pi"]], x[p["pj"]]], h_between, t(p["z_p"]), t(p["w_p"]), **kw))
    return g, x


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("loop", [False, True])
def test_range_bearing_localisation_matches_least_squares(seed, loop):
    rng = np.random.default_rng(seed)
    p = _problem(rng, loop=loop)
    init = p["truth"] + rng.normal(0, 0.3, p["truth"].shape)
    ref = _scipy_solution(p, init)
    assert np.abs(ref - p["truth"]).max() < 0.5  # the oracle found the basin of the truth
    g, x = _gbp_graph(p, init)
    res = g.solve(iters=300, tol=1e-11)
    assert res.converged, res.status
    mean = np_result(res.mean(x))
    assert mean.shape == (4, 2)  # per-factor params must not add a batch dim
    np.testing.assert_allclose(mean, ref, atol=TOL)
    # the answer moved away from the init: the relinearisation did real work
    assert np.abs(init - ref).max() > 0.05


def test_relinearise_every_matches_threshold_relinearisation():
    rng = np.random.default_rng(3)
    p = _problem(rng, loop=True)
    init = p["truth"] + rng.normal(0, 0.2, p["truth"].shape)
    ref = _scipy_solution(p, init)
    g, x = _gbp_graph(p, init, relin=10.0, every=1)  # threshold never reached: only the periodic relinearisation
    res = g.solve(iters=300, tol=1e-11)
    assert res.converged, res.status
    np.testing.assert_allclose(np_result(res.mean(x)), ref, atol=TOL)


def test_without_relinearisation_stays_at_first_linearisation():
    """A huge threshold and no periodic relinearisation: GBP solves the linear model at the init only."""
    rng = np.random.default_rng(4)
    p = _problem(rng, loop=False)
    init = p["truth"] + rng.normal(0, 0.3, p["truth"].shape)
    ref = _scipy_solution(p, init)
    g, x = _gbp_graph(p, init, relin=1e9)
    res = g.solve(iters=200, tol=1e-11)
    assert np.abs(np_result(res.mean(x)) - ref).max() > 1e-4


def test_batched_nonlinear_equals_separate_solves():
    rng = np.random.default_rng(6)
    p = _problem(rng, N=3, loop=False)
    B = 2
    z_r = p["z_r"][None] + rng.normal(0, 0.05, (B, *p["z_r"].shape))
    init = p["truth"] + rng.normal(0, 0.2, p["truth"].shape)
    N = 3
    g = FactorGraph()
    x = g.add_variables(N, 2, init=t(init))
    g.add(NonlinearFactors([x[p["ia"]]], h_range, t(z_r), t(p["w_r"]), params=[t(p["a"])],
                           relinearise_threshold=0.0))
    g.add(NonlinearFactors([x[p["ia"]]], h_bearing, t(p["z_b"]), t(p["w_b"]), params=[t(p["a"])],
                           relinearise_threshold=0.0))
    g.add(NonlinearFactors([x[p["pi"]], x[p["pj"]]], h_between, t(p["z_p"]), t(p["w_p"]),
                           relinearise_threshold=0.0))
    res = g.solve(iters=300, tol=1e-11)
    assert res.converged and res.means[0].shape == (B, N, 2)
    for b in range(B):
        pb = dict(p, z_r=z_r[b])
        np.testing.assert_allclose(np_result(res.means[0][b]), _scipy_solution(pb, init), atol=TOL)


def test_nonlinear_with_linear_prior_and_per_factor_params_batch():
    """Range-only to 2 anchors + a weak linear prior, params given as (B, F, 2): per-graph anchors."""
    rng = np.random.default_rng(8)
    B = 3  # not 2: a leading dim equal to F (= 2 here) is read as an unbatched (F, ...) param
    anchors = rng.uniform(-2, 2, size=(B, 2, 2))
    truth = np.array([[0.7, 0.4]])
    z = np.linalg.norm(truth[None] - anchors, axis=-1, keepdims=True)  # (B, 2, 1)
    prior_mean, prior_w = np.array([[0.5, 0.5]]), 0.01
    g = FactorGraph()
    x = g.add_variables(1, 2, init=t(prior_mean))
    g.add(PriorFactors(x.all(), t(prior_mean), t(prior_w)))
    g.add(NonlinearFactors([x[[0, 0]]], h_range, t(z), t(100.0), params=[t(anchors)], relinearise_threshold=0.0))
    res = g.solve(iters=300, tol=1e-12)
    assert res.converged and res.means[0].shape == (B, 1, 2)
    for b in range(B):
        def resid(v, b=b):
            r = np.sqrt(100.0) * (np.linalg.norm(v - anchors[b], axis=1) - z[b, :, 0])
            return np.concatenate([r, np.sqrt(prior_w) * (v - prior_mean[0])])
        ref = scipy.optimize.least_squares(resid, prior_mean[0], xtol=1e-15, ftol=1e-15, gtol=1e-15).x
        np.testing.assert_allclose(np_result(res.means[0][b, 0]), ref, atol=TOL)


def test_nonlinear_factor_checks():
    g = FactorGraph()
    x = g.add_variables(2, 2)
    with pytest.raises(ValueError, match="relinearise"):
        NonlinearFactors([x.all()], lambda v: v[:1], t(np.zeros((2, 1))), relinearise_threshold=-1.0)
    with pytest.raises(ValueError, match="relinearise"):
        NonlinearFactors([x.all()], lambda v: v[:1], t(np.zeros((2, 1))), relinearise_every=0)
    with pytest.raises(ValueError, match="params"):
        NonlinearFactors([x.all()], h_range, t(np.zeros((2, 1))), params=[t(np.zeros(3))])
    # h returning the wrong size is caught at linearisation
    g.add(NonlinearFactors([x.all()], lambda v: v, t(np.zeros((2, 1)))))
    with pytest.raises(ValueError, match="h must return"):
        g.solve(iters=2)


def test_robust_nonlinear_range_outlier_matches_scipy():
    """Range-only localisation with one gross outlier range and Huber factors vs scipy on the same energy."""
    from test_robust_factors import _minimise, rho_and_drho

    rng = np.random.default_rng(12)
    anchors = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [3.0, 3.0], [1.5, -1.0]])
    truth = np.array([1.2, 1.7])
    z = np.linalg.norm(truth - anchors, axis=1) + rng.normal(0, 0.01, 5)
    z[1] += 2.0  # outlier
    w, k = 1 / 0.01**2, 2.0
    init = np.array([[1.0, 1.5]])
    g = FactorGraph()
    x = g.add_variables(1, 2, init=t(init))
    g.add(NonlinearFactors([x[[0] * 5]], h_range, t(z[:, None]), t(w), params=[t(anchors)], robust="huber",
                           k=t(np.full(5, k)), relinearise_threshold=0.0))
    res = g.solve(iters=500, tol=1e-12)
    assert res.converged, res.status

    def fun(v):
        d = v - anchors
        dist = np.linalg.norm(d, axis=1)
        e = np.sqrt(w) * (dist - z)
        rho, drho = rho_and_drho("huber", np.abs(e), k)
        return rho.sum(), (drho * np.sign(e) * np.sqrt(w) / dist) @ d

    ref = _minimise(fun, init[0].copy())
    np.testing.assert_allclose(np_result(res.mean(x))[0], ref, atol=TOL)
    assert np.linalg.norm(ref - truth) < 0.05  # the outlier was down-weighted

"""Robust factors: GBP with IRLS weights converges to the robust-energy minimiser (scipy).

Energy: sum_f rho(r_f; k_f) + (quadratic priors), r_f = sqrt((J x - z)^T L (J x - z))
the Mahalanobis residual. The oracle minimises this energy with
scipy.optimize.minimize (BFGS, analytic gradient written here from rho'(r)).
Tolerance 1e-6 on means.
"""

import numpy as np
import pytest
import scipy.optimize
import torch
from helpers import np_result, t

from gbp_torch import DifferenceFactors, FactorGraph, LinearFactors, PriorFactors, RobustKernel

TOL = 1e-6


def rho_and_drho(name, r, k):
    """Energy rho(r) and its derivative rho'(r) in numpy (independent of gbp_torch)."""
    if name == "huber":
        return np.where(r <= k, 0.5 * r**2, k * r - 0.5 * k**2), np.where(r <= k, r, k)
    if name == "tukey":
        u = np.minimum(r / k, 1.0)
        return k**2 / 6 * (1 - (1 - u**2) ** 3), np.where(r <= k, r * (1 - u**2) ** 2, 0.0)
    if name == "cauchy":
        return 0.5 * k**2 * np.log1p((r / k) ** 2), r / (1 + (r / k) ** 2)
    raise ValueError(name)


def _minimise(fun, x0):
    """BFGS on (energy, analytic gradient), then Newton steps with a finite-difference Hessian of the
    gradient to drive |grad| to ~1e-10 (BFGS alone stalls near the Huber kinks)."""
    sol = scipy.optimize.minimize(fun, x0, jac=True, method="BFGS", options={"gtol": 1e-11, "maxiter": 10000})
    x = sol.x
    for _ in range(20):
        g = fun(x)[1]
        if np.linalg.norm(g) < 1e-10:
            break
        h = 1e-6
        H = np.stack([(fun(x + h * e)[1] - fun(x - h * e)[1]) / (2 * h) for e in np.eye(len(x))], 1)
        x = x - np.linalg.solve(0.5 * (H + H.T), g)
    assert np.linalg.norm(fun(x)[1]) < 1e-9
    return x


def robust_minimiser(x0, terms, name):
    """argmin of sum over robust terms (cols, J, z, L, k) + quadratic terms (cols, J, z, L, None)."""

    def f(x):
        e, g = 0.0, np.zeros_like(x)
        for cols, J, z, L, k in terms:
            res = np.einsum("fmn,fn->fm", J, x[cols]) - z  # (F, m)
            Lres = np.einsum("fmk,fk->fm", L, res)
            grad_q = np.einsum("fmn,fm->fn", J, Lres)  # d(1/2 r^2)/dx_f
            if k is None:
                e += 0.5 * np.sum(res * Lres)
                np.add.at(g, cols, grad_q)
            else:
                r = np.sqrt(np.maximum(np.sum(res * Lres, -1), 0))
                rho, drho = rho_and_drho(name, r, k)
                e += rho.sum()
                scale = np.where(r > 1e-300, drho / np.maximum(r, 1e-300), 1.0)  # d rho / d(r^2/2)
                np.add.at(g, cols, scale[:, None] * grad_q)
        return e, g.ravel() if g.ndim == 1 else g

    shape = x0.shape

    def fun(v):
        e, g = f(v.reshape(shape))
        return e, g.ravel()

    return _minimise(fun, x0.ravel()).reshape(shape)


def _line_data(rng, N=30, outliers=6):
    xs = np.linspace(-2, 2, N)
    ys = 1.5 * xs - 0.7 + rng.normal(0, 0.1, N)
    idx = rng.choice(N, outliers, replace=False)
    ys[idx] += rng.choice([-1, 1], outliers) * rng.uniform(2, 5, outliers)
    return xs, ys


@pytest.mark.parametrize("seed", [0, 1])
def test_huber_line_fit_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    xs, ys = _line_data(rng)
    N = len(xs)
    sigma = 0.1
    k = t(np.full(N, 1.345))  # per-factor tensor threshold
    g = FactorGraph()
    theta = g.add_variables(1, 2)  # (slope, intercept)
    J = np.stack([xs, np.ones(N)], -1)[:, None, :]  # (F, 1, 2)
    g.add(LinearFactors([theta[[0] * N]], t(J), t(ys[:, None]), t(1 / sigma**2), robust="huber", k=k))
    g.add(PriorFactors(theta.all(), t([[0.0, 0.0]]), t(1e-4)))
    res = g.solve(iters=500, tol=1e-12)
    assert res.converged, res.status
    L = np.full((N, 1, 1), 1 / sigma**2)
    terms = [(np.zeros(N, int), J, ys[:, None], L, 1.345),
             (np.zeros(1, int), np.eye(2)[None], np.zeros((1, 2)), np.full((1, 2, 2), 1e-4) * np.eye(2), None)]
    ref = robust_minimiser(np.zeros((1, 2)), terms, "huber")
    np.testing.assert_allclose(np_result(res.mean(theta)), ref, atol=TOL)
    # the robust fit is near the true line, the least-squares fit is not
    lsq = np.linalg.lstsq(J[:, 0], ys, rcond=None)[0]
    assert np.abs(ref[0] - [1.5, -0.7]).max() < np.abs(lsq - [1.5, -0.7]).max()


def _robust_smoothing_problem(rng, N=8):
    """2-D signal, robust unary measurements with full 2x2 precision, quadratic smoothness chain."""
    truth = np.cumsum(rng.normal(0, 0.3, (N, 2)), 0)
    z = truth + rng.normal(0, 0.1, (N, 2))
    z[[2, 5]] += np.array([[3.0, -2.0], [-2.5, -3.0]])  # outliers
    Lm = np.linalg.inv(np.array([[0.02, 0.005], [0.005, 0.01]]))  # measurement precision
    return truth, z, Lm


@pytest.mark.parametrize("name, k", [("huber", 1.0), ("tukey", 4.0), ("cauchy", 1.5)])
def test_robust_chain_matches_scipy(name, k):
    rng = np.random.default_rng(42)
    N = 8
    truth, z, Lm = _robust_smoothing_problem(rng, N)
    smooth_w = 5.0
    init = truth + rng.normal(0, 0.02, truth.shape)  # good init (redescending kernels are non-convex)
    kt = t(np.full(N, k)) if name != "cauchy" else t(k)  # tensor per factor, or scalar tensor
    g = FactorGraph()
    x = g.add_variables(N, 2, init=t(init))
    g.add(LinearFactors([x.all()], t(np.eye(2)), t(z), t(Lm), robust=RobustKernel(name, kt)))
    g.add(DifferenceFactors(x[:-1], x[1:], t(np.zeros((N - 1, 2))), t(smooth_w)))
    res = g.solve(iters=500, tol=1e-12)
    assert res.converged, res.status
    terms = [(np.arange(N), np.broadcast_to(np.eye(2), (N, 2, 2)), z, np.broadcast_to(Lm, (N, 2, 2)), k)]
    # smoothness: x_{i+1} - x_i ~ 0 as a 4-column term over (x_i, x_{i+1}) written per coordinate pair
    ref = _minimise_chain(init, terms, smooth_w, name)
    np.testing.assert_allclose(np_result(res.mean(x)), ref, atol=TOL)
    # the outliers were down-weighted: the estimate at an outlier stays near the truth
    err = np.linalg.norm(ref[[2, 5]] - truth[[2, 5]], axis=1)
    assert (err < 0.5 * np.linalg.norm(z[[2, 5]] - truth[[2, 5]], axis=1)).all()


def _minimise_chain(init, terms, smooth_w, name):
    (cols, J, z, L, k), = terms
    N = init.shape[0]

    def fun(v):
        x = v.reshape(N, 2)
        res = x - z
        Lres = np.einsum("fmk,fk->fm", L, res)
        r = np.sqrt(np.sum(res * Lres, -1))
        rho, drho = rho_and_drho(name, r, k)
        scale = np.where(r > 0, drho / np.maximum(r, 1e-300), 1.0)
        d = x[1:] - x[:-1]
        e = rho.sum() + 0.5 * smooth_w * np.sum(d * d)
        g = scale[:, None] * Lres
        g[1:] += smooth_w * d
        g[:-1] -= smooth_w * d
        return e, g.ravel()

    return _minimise(fun, init.ravel()).reshape(N, 2)


def test_huber_threshold_tensor_changes_solution_and_is_differentiable():
    """k enters as a tensor: a per-factor threshold changes the answer, and gradients flow to k."""
    rng = np.random.default_rng(3)
    xs, ys = _line_data(rng, N=12, outliers=3)
    N = len(xs)
    J = np.stack([xs, np.ones(N)], -1)[:, None, :]

    def solve(k):
        g = FactorGraph()
        th = g.add_variables(1, 2)
        g.add(LinearFactors([th[[0] * N]], t(J), t(ys[:, None]), t(100.0), robust="huber", k=k))
        g.add(PriorFactors(th.all(), t([[0.0, 0.0]]), t(1e-4)))
        return g.solve(iters=300, tol=1e-12).mean(th)

    k = t(np.full(N, 1.0)).requires_grad_()
    m1 = solve(k)
    m2 = solve(t(np.full(N, 100.0)))  # effectively least squares
    assert np.abs(np_result(m1) - np_result(m2)).max() > 1e-2
    lsq = np.linalg.lstsq(np.concatenate([J[:, 0], np.sqrt(1e-6) * np.eye(2)]),
                          np.concatenate([ys, np.zeros(2)]), rcond=None)[0]
    np.testing.assert_allclose(np_result(m2)[0], lsq, atol=TOL)
    (gk,) = torch.autograd.grad(m1.sum(), k)
    assert torch.isfinite(gk).all() and gk.abs().sum() > 0


def test_bad_robust_arguments():
    g = FactorGraph()
    x = g.add_variables(2, 1)
    with pytest.raises(ValueError, match="unknown robust kernel"):
        PriorFactors(x.all(), t(np.zeros((2, 1))), t(1.0), robust="welsch")
    with pytest.raises(ValueError, match="PriorFactors: threshold k of the 'huber' kernel must be finite and > 0"):
        PriorFactors(x.all(), t(np.zeros((2, 1))), t(1.0), robust="huber", k=t([1.0, -1.0]))


def test_batched_thresholds_equal_separate_robust_solves():
    """k of shape (B, F) is the only batched input: B graphs, each the robust minimiser for its k."""
    z = np.array([[0.0], [1.0], [5.0], [1.5]])
    ks = np.array([[0.5, 0.5, 0.5, 0.5], [100.0, 100.0, 100.0, 100.0], [0.2, 1.0, 0.3, 2.0]])
    g = FactorGraph()
    x = g.add_variables(4, 1)
    g.add(PriorFactors(x.all(), t(z), t(1.0), robust="huber", k=t(ks)))
    g.add(DifferenceFactors(x[:-1], x[1:], t(np.zeros((3, 1))), t(1.0)))
    res = g.solve(iters=500, tol=1e-12)
    assert res.converged and res.means[0].shape == (3, 4, 1)
    D = np.diff(np.eye(4), axis=0)  # (3, 4): x_{i+1} - x_i

    for b in range(3):
        def fun(v, b=b):
            r = np.abs(v - z[:, 0])
            rho, drho = rho_and_drho("huber", r, ks[b])
            d = D @ v
            return rho.sum() + 0.5 * d @ d, drho * np.sign(v - z[:, 0]) + D.T @ d

        ref = _minimise(fun, z[:, 0].copy())
        np.testing.assert_allclose(np_result(res.means[0][b, :, 0]), ref, atol=TOL)

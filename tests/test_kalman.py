"""A linear-Gaussian state-space chain: GBP == Kalman filter + RTS smoother (numpy), 1e-8."""

import numpy as np
import pytest
from helpers import np_result, t

from gbp_torch import FactorGraph, LinearFactors

TOL = 1e-8


def kalman_rts(m0, P0, F, Q, H, R, ys):
    """Independent numpy Kalman filter and Rauch-Tung-Striebel smoother.

    Model: s_0 ~ N(m0, P0); s_{t+1} = F s_t + N(0, Q); y_t = H s_t + N(0, R).
    Returns smoothed means (T, d) and covariances (T, d, d).
    """
    T, d = len(ys), len(m0)
    mf, Pf, mp, Pp = np.zeros((T, d)), np.zeros((T, d, d)), np.zeros((T, d)), np.zeros((T, d, d))
    m, P = m0, P0
    for k in range(T):
        if k > 0:
            m, P = F @ m, F @ P @ F.T + Q
        mp[k], Pp[k] = m, P
        S = H @ P @ H.T + R
        K = P @ H.T @ np.linalg.inv(S)
        m = m + K @ (ys[k] - H @ m)
        P = (np.eye(d) - K @ H) @ P @ (np.eye(d) - K @ H).T + K @ R @ K.T  # Joseph form
        mf[k], Pf[k] = m, P
    ms, Ps = mf.copy(), Pf.copy()
    for k in range(T - 2, -1, -1):
        G = Pf[k] @ F.T @ np.linalg.inv(Pp[k + 1])
        ms[k] = mf[k] + G @ (ms[k + 1] - mp[k + 1])
        Ps[k] = Pf[k] + G @ (Ps[k + 1] - Pp[k + 1]) @ G.T
    return ms, Ps, mf, Pf


def _simulate(rng, T, dt, q, r):
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    H = np.array([[1.0, 0.0]])
    R = np.array([[r]])
    s = np.array([0.0, 1.0])
    ys = []
    for _ in range(T):
        ys.append(H @ s + rng.normal(0, np.sqrt(r), 1))
        s = F @ s + rng.multivariate_normal(np.zeros(2), Q)
    return F, Q, H, R, np.array(ys)


def _gbp_chain(m0, P0, F, Q, H, R, ys, schedule="sync"):
    """GBP on the state chain; ys (T, 1), or (B, T, 1) for B sequences in one batched graph."""
    T = ys.shape[-2]
    g = FactorGraph()
    s = g.add_variables(T, 2)
    g.add(LinearFactors([s[[0]]], t(np.eye(2)), t(m0[None]), t(np.linalg.inv(P0))))
    # process factors: energy 1/2 (F s_t - s_{t+1})^T Q^-1 (F s_t - s_{t+1}), J = [F, -I], z = 0
    g.add(LinearFactors([s[:-1], s[1:]], t(np.hstack([F, -np.eye(2)])), t(np.zeros((T - 1, 2))),
                        t(np.linalg.inv(Q))))
    # position measurements
    g.add(LinearFactors([s.all()], t(H), t(ys), t(np.linalg.inv(R))))
    return g.solve(iters=4 * T, tol=1e-13, schedule=schedule)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_constant_velocity_chain_equals_kalman_rts(seed):
    rng = np.random.default_rng(seed)
    T = 10
    F, Q, H, R, ys = _simulate(rng, T, dt=0.5, q=0.3, r=0.2)
    m0, P0 = np.array([0.0, 1.0]), np.diag([1.0, 0.5])
    ms, Ps, _, _ = kalman_rts(m0, P0, F, Q, H, R, ys)
    res = _gbp_chain(m0, P0, F, Q, H, R, ys)
    assert res.converged, res.status
    np.testing.assert_allclose(np_result(res.means[0]), ms, atol=TOL)
    np.testing.assert_allclose(np_result(res.covs[0]), Ps, atol=TOL)


def test_last_state_equals_kalman_filter_and_sweep_schedule():
    """The smoothed last state is the filtered one; also reached with the sweep schedule."""
    rng = np.random.default_rng(5)
    T = 8
    F, Q, H, R, ys = _simulate(rng, T, dt=1.0, q=0.1, r=0.5)
    m0, P0 = np.array([0.5, 0.0]), np.eye(2)
    ms, Ps, mf, Pf = kalman_rts(m0, P0, F, Q, H, R, ys)
    np.testing.assert_allclose(ms[-1], mf[-1])  # sanity of the oracle itself
    res = _gbp_chain(m0, P0, F, Q, H, R, ys, schedule="sweep")
    assert res.converged, res.status
    np.testing.assert_allclose(np_result(res.means[0])[-1], mf[-1], atol=TOL)
    np.testing.assert_allclose(np_result(res.covs[0])[-1], Pf[-1], atol=TOL)
    np.testing.assert_allclose(np_result(res.means[0]), ms, atol=TOL)


def test_batched_kalman_sequences():
    """B measurement sequences in one batched graph == B independent smoothers."""
    rng = np.random.default_rng(9)
    T, B = 6, 3
    F, Q, H, R, _ = _simulate(rng, T, dt=0.5, q=0.3, r=0.2)
    ys = rng.standard_normal((B, T, 1))
    m0, P0 = np.zeros(2), np.eye(2)
    res = _gbp_chain(m0, P0, F, Q, H, R, ys)  # (B, T, 1) measurements: a batched graph
    assert res.converged and res.means[0].shape == (B, T, 2)
    for b in range(B):
        ms, Ps, _, _ = kalman_rts(m0, P0, F, Q, H, R, ys[b])
        np.testing.assert_allclose(np_result(res.means[0][b]), ms, atol=TOL)
        np.testing.assert_allclose(np_result(res.covs[0][b]), Ps, atol=TOL)

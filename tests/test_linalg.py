"""Batched small-matrix linear algebra and factor-to-variable messages (float64, 1e-8)."""

import numpy as np
import pytest
import torch
from helpers import random_spd, t

from gbp_torch.linalg import matvec, spd_inverse, spd_solve, spd_solve_checked, symmetrize
from gbp_torch.messages import factor_to_variable

TOL = 1e-8


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize("m", [1, 3])
def test_spd_solve_matches_numpy(n, m):
    rng = np.random.default_rng(10 * n + m)
    a = random_spd(rng, n, (5, 2), cond=100.0)
    b = rng.standard_normal((5, 2, n, m))
    x, ok = spd_solve_checked(t(a), t(b))
    assert x.shape == (5, 2, n, m) and ok.shape == (5, 2)
    assert ok.all()
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(spd_solve(t(a), t(b)).numpy(), np.linalg.solve(a, b), atol=TOL, rtol=TOL)


@pytest.mark.parametrize("n", range(1, 9))
def test_spd_solve_broadcasts_batch(n):
    rng = np.random.default_rng(n)
    a = random_spd(rng, n, (1, 3))
    b = rng.standard_normal((4, 1, n, 2))
    x, ok = spd_solve_checked(t(a), t(b))
    assert x.shape == (4, 3, n, 2) and ok.shape == (4, 3) and ok.all()
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(np.broadcast_to(a, (4, 3, n, n)),
                                                          np.broadcast_to(b, (4, 3, n, 2))), atol=TOL)


@pytest.mark.parametrize("n", range(1, 9))
def test_spd_solve_checked_flags_indefinite(n):
    rng = np.random.default_rng(100 + n)
    good = random_spd(rng, n, (3,))
    q, _ = np.linalg.qr(rng.standard_normal((3, n, n)))
    ev = rng.uniform(1.0, 5.0, size=(3, n))
    ev[0, 0] = -2.0  # one negative eigenvalue
    ev[1, :] = -ev[1, :]  # negative definite
    ev[2, -1] = -0.5
    bad = (q * ev[:, None, :]) @ np.swapaxes(q, -1, -2)
    a = np.concatenate([good, bad])
    _, ok = spd_solve_checked(t(a), t(np.ones((6, n, 1))))
    assert ok.tolist() == [True] * 3 + [False] * 3


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_spd_inverse_and_small_ops(n):
    rng = np.random.default_rng(n)
    a = random_spd(rng, n, (4,))
    np.testing.assert_allclose(spd_inverse(t(a)).numpy(), np.linalg.inv(a), atol=TOL)
    v = rng.standard_normal((4, n))
    np.testing.assert_allclose(matvec(t(a), t(v)).numpy(), np.einsum("bij,bj->bi", a, v), atol=1e-12)
    c = rng.standard_normal((4, n, n))
    np.testing.assert_allclose(symmetrize(t(c)).numpy(), (c + np.swapaxes(c, -1, -2)) / 2, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_spd_solve_gradcheck(n):
    rng = np.random.default_rng(n)
    a = t(random_spd(rng, n, (2,))).requires_grad_()
    b = t(rng.standard_normal((2, n, 2))).requires_grad_()

    def f(a, b):
        return spd_solve(symmetrize(a), b)

    assert torch.autograd.gradcheck(f, (a, b), eps=1e-6, atol=1e-6)


def _f2v(eta_f, lam_f, in_eta, in_lam, dims):
    """factor_to_variable in the natural (B, F, ...) layout, via the engine's lanes layout (F last)."""
    vec = lambda x: x.movedim(1, -1)  # (B, F, n) -> (B, n, F)
    mat = lambda x: x.movedim(1, -1)  # (B, F, n, n) -> (B, n, n, F)
    m_eta, m_lam = factor_to_variable(vec(eta_f), mat(lam_f), [vec(e) for e in in_eta], [mat(l) for l in in_lam],
                                      dims)
    return [e.movedim(-1, 1) for e in m_eta], [l.movedim(-1, 1) for l in m_lam]


def _dense_messages(eta_f, lam_f, in_eta, in_lam, dims):
    """Oracle: message to slot k = marginal on x_k of potential * prod_{j != k} incoming_j (numpy)."""
    offs = np.cumsum([0] + dims)
    out_eta, out_lam = [], []
    for k in range(len(dims)):
        lam = lam_f.copy()
        eta = eta_f.copy()
        for j in range(len(dims)):
            if j != k:
                s = slice(offs[j], offs[j + 1])
                lam[s, s] += in_lam[j]
                eta[s] += in_eta[j]
        a = np.arange(offs[k], offs[k + 1])
        b = np.setdiff1d(np.arange(offs[-1]), a)
        lab = lam[np.ix_(a, b)]
        out_lam.append(lam[np.ix_(a, a)] - lab @ np.linalg.solve(lam[np.ix_(b, b)], lab.T))
        out_eta.append(eta[a] - lab @ np.linalg.solve(lam[np.ix_(b, b)], eta[b]))
    return out_eta, out_lam


def _random_family(rng, dims, B=2, F=3):
    n = sum(dims)
    eta_f = rng.standard_normal((B, F, n))
    lam_f = random_spd(rng, n, (B, F))
    in_eta = [rng.standard_normal((B, F, d)) for d in dims]
    in_lam = [random_spd(rng, d, (B, F)) for d in dims]
    return eta_f, lam_f, in_eta, in_lam


@pytest.mark.parametrize("dims", [[2], [1, 1], [2, 3], [1, 2, 3], [3, 1, 2, 1]])
def test_factor_to_variable_matches_dense_schur(dims):
    rng = np.random.default_rng(sum(dims) * len(dims))
    eta_f, lam_f, in_eta, in_lam = _random_family(rng, dims)
    m_eta, m_lam = _f2v(t(eta_f), t(lam_f), [t(e) for e in in_eta], [t(l) for l in in_lam], dims)
    assert len(m_eta) == len(dims)
    for b in range(2):
        for f in range(3):
            ref_eta, ref_lam = _dense_messages(eta_f[b, f], lam_f[b, f], [e[b, f] for e in in_eta],
                                               [l[b, f] for l in in_lam], dims)
            for k in range(len(dims)):
                # the engine adds a ridge of ~1e-15 relative: 1e-8 is far above it
                np.testing.assert_allclose(m_eta[k][b, f].numpy(), ref_eta[k], atol=TOL, rtol=1e-7)
                np.testing.assert_allclose(m_lam[k][b, f].numpy(), ref_lam[k], atol=TOL, rtol=1e-7)


def test_factor_to_variable_rank_deficient_factor_is_finite():
    """A pairwise factor x2 - x1 with no incoming information: the message is the (finite) limit 0."""
    J = np.array([[-1.0, 1.0]])
    lam_f = (J.T @ J)[None, None]
    eta_f = (J.T @ np.array([2.0]))[None, None]
    zeros = [t(np.zeros((1, 1, 1))), t(np.zeros((1, 1, 1)))]
    zl = [t(np.zeros((1, 1, 1, 1))), t(np.zeros((1, 1, 1, 1)))]
    m_eta, m_lam = _f2v(t(eta_f), t(lam_f), zeros, zl, [1, 1])
    for k in range(2):
        assert torch.isfinite(m_eta[k]).all() and torch.isfinite(m_lam[k]).all()
        np.testing.assert_allclose(m_lam[k].numpy(), 0.0, atol=1e-10)
        np.testing.assert_allclose(m_eta[k].numpy(), 0.0, atol=1e-10)


@pytest.mark.parametrize("dims", [[1, 2], [1, 1, 1]])
def test_factor_to_variable_gradcheck(dims):
    rng = np.random.default_rng(7)
    eta_f, lam_f, in_eta, in_lam = _random_family(rng, dims, B=1, F=2)
    K = len(dims)
    inputs = [t(eta_f), t(lam_f)] + [t(e) for e in in_eta] + [t(l) for l in in_lam]
    inputs = [x.requires_grad_() for x in inputs]

    def f(*args):
        e_f, l_f = args[0], symmetrize(args[1])
        ie = list(args[2:2 + K])
        il = [symmetrize(x) for x in args[2 + K:]]
        m_eta, m_lam = _f2v(e_f, l_f, ie, il, dims)
        return tuple(m_eta) + tuple(m_lam)

    assert torch.autograd.gradcheck(f, tuple(inputs), eps=1e-6, atol=1e-5)

"""Canonical-form Gaussian algebra vs numpy moment-form formulas (float64, atol 1e-8)."""

import numpy as np
import pytest
from helpers import random_spd, t

from gbp_torch import Gaussian

TOL = 1e-8


def _random(rng, d, batch=()):
    mean = rng.standard_normal((*batch, d))
    cov = random_spd(rng, d, batch)
    return mean, cov


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8])
def test_from_moments_roundtrip(d):
    rng = np.random.default_rng(d)
    mean, cov = _random(rng, d, (4,))
    g = Gaussian.from_moments(t(mean), t(cov))
    lam = np.linalg.inv(cov)
    np.testing.assert_allclose(g.lam.numpy(), lam, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(g.eta.numpy(), np.einsum("bij,bj->bi", lam, mean), atol=TOL, rtol=TOL)
    np.testing.assert_allclose(g.mean.numpy(), mean, atol=TOL)
    np.testing.assert_allclose(g.cov.numpy(), cov, atol=TOL)
    assert g.dim == d


def test_product_matches_moment_formula():
    rng = np.random.default_rng(0)
    m1, c1 = _random(rng, 3)
    m2, c2 = _random(rng, 3)
    g = Gaussian.from_moments(t(m1), t(c1)) * Gaussian.from_moments(t(m2), t(c2))
    # product of N(m1, C1) N(m2, C2) is prop. to N(m, C) with C = (C1^-1 + C2^-1)^-1,
    # m = C2 (C1 + C2)^-1 m1 + C1 (C1 + C2)^-1 m2
    C = c1 @ np.linalg.solve(c1 + c2, c2)
    m = c2 @ np.linalg.solve(c1 + c2, m1) + c1 @ np.linalg.solve(c1 + c2, m2)
    np.testing.assert_allclose(g.cov.numpy(), C, atol=TOL)
    np.testing.assert_allclose(g.mean.numpy(), m, atol=TOL)


def test_division_inverts_product():
    rng = np.random.default_rng(1)
    m1, c1 = _random(rng, 4, (3,))
    m2, c2 = _random(rng, 4, (3,))
    g1, g2 = Gaussian.from_moments(t(m1), t(c1)), Gaussian.from_moments(t(m2), t(c2))
    q = (g1 * g2) / g2
    np.testing.assert_allclose(q.mean.numpy(), m1, atol=TOL)
    np.testing.assert_allclose(q.cov.numpy(), c1, atol=TOL)
    # and the quotient of moments: (C^-1 - C2^-1)^-1 where C = cov of g1 (dividing g1 by g2)
    d = g1 / g2
    np.testing.assert_allclose(d.lam.numpy(), np.linalg.inv(c1) - np.linalg.inv(c2), atol=TOL)


@pytest.mark.parametrize("keep", [[0], [2], [0, 2], [3, 1], [0, 1, 2, 3]])
def test_marginalise_is_covariance_subblock(keep):
    rng = np.random.default_rng(2)
    mean, cov = _random(rng, 4, (2,))
    g = Gaussian.from_moments(t(mean), t(cov)).marginalise(keep)
    np.testing.assert_allclose(g.mean.numpy(), mean[:, keep], atol=TOL)
    np.testing.assert_allclose(g.cov.numpy(), cov[:, keep][:, :, keep], atol=TOL)


def test_marginalise_int_index():
    rng = np.random.default_rng(3)
    mean, cov = _random(rng, 3)
    g = Gaussian.from_moments(t(mean), t(cov)).marginalise(1)
    np.testing.assert_allclose(g.mean.numpy(), mean[[1]], atol=TOL)
    np.testing.assert_allclose(g.cov.numpy(), cov[[1]][:, [1]], atol=TOL)


@pytest.mark.parametrize("idx", [[0], [1, 3], [4, 0, 2]])
def test_condition_matches_moment_formula(idx):
    rng = np.random.default_rng(4)
    D = 5
    mean, cov = _random(rng, D, (3,))
    value = rng.standard_normal((3, len(idx)))
    rest = [i for i in range(D) if i not in idx]
    g = Gaussian.from_moments(t(mean), t(cov)).condition(idx, t(value))
    for b in range(3):
        S_aa = cov[b][np.ix_(rest, rest)]
        S_ab = cov[b][np.ix_(rest, idx)]
        S_bb = cov[b][np.ix_(idx, idx)]
        m = mean[b, rest] + S_ab @ np.linalg.solve(S_bb, value[b] - mean[b, idx])
        C = S_aa - S_ab @ np.linalg.solve(S_bb, S_ab.T)
        np.testing.assert_allclose(g.mean[b].numpy(), m, atol=TOL)
        np.testing.assert_allclose(g.cov[b].numpy(), C, atol=TOL)


def test_validate_accepts_good_and_psd_ok():
    rng = np.random.default_rng(5)
    mean, cov = _random(rng, 3)
    g = Gaussian.from_moments(t(mean), t(cov))
    assert g.validate() is g
    psd = Gaussian(t(np.zeros(2)), t(np.array([[1.0, 1.0], [1.0, 1.0]])))
    psd.validate(psd_ok=True)
    with pytest.raises(ValueError, match="positive definite"):
        psd.validate()


@pytest.mark.parametrize(
    "eta, lam, match",
    [
        (np.zeros(2), np.array([[2.0, 1.0], [0.0, 2.0]]), "symmetric"),
        (np.zeros(2), np.array([[1.0, 0.0], [0.0, -1.0]]), "positive definite"),
        (np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]), "positive definite"),
        (np.zeros(3), np.eye(2), "shape"),
        (np.zeros(2), np.ones((2, 3)), "shape"),
        (np.zeros((3, 2)), np.broadcast_to(np.eye(2), (2, 2, 2)).copy(), "batch"),
        (np.zeros(2), np.array([[np.nan, 0.0], [0.0, 1.0]]), "NaN"),
        (np.array([np.nan, 0.0]), np.eye(2), "NaN"),
        (np.array([np.inf, 0.0]), np.eye(2), "NaN or inf"),
    ],
)
def test_validate_rejects_bad_inputs(eta, lam, match):
    with pytest.raises(ValueError, match=match):
        Gaussian(t(eta), t(lam)).validate()


@pytest.mark.parametrize(
    "mean, cov",
    [
        (np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]])),  # non-symmetric
        (np.zeros(2), np.array([[1.0, 0.0], [0.0, 0.0]])),  # singular
        (np.zeros(3), np.eye(2)),  # mismatched
        (np.array([0.0, np.nan]), np.eye(2)),  # NaN mean
    ],
)
def test_from_moments_rejects_bad_inputs(mean, cov):
    with pytest.raises(ValueError):
        Gaussian.from_moments(t(mean), t(cov))


def test_bad_operations_raise():
    g2 = Gaussian(t(np.zeros(2)), t(np.eye(2)))
    g3 = Gaussian(t(np.zeros(3)), t(np.eye(3)))
    with pytest.raises(ValueError, match="different dimensions"):
        g2 * g3
    with pytest.raises(ValueError, match="different dimensions"):
        g2 / g3
    for bad in ([], [3], [-1], [0, 0]):
        with pytest.raises(ValueError, match="distinct and in"):
            g3.marginalise(bad)
    with pytest.raises(ValueError, match="last dim"):
        g3.condition([0, 1], t(np.zeros(3)))
    with pytest.raises(ValueError, match="NaN"):
        g3.condition([0], t(np.array([np.nan])))

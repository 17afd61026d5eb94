"""Robust kernels: IRLS weight = rho'(r) / r, tensor thresholds, input checks."""

import numpy as np
import pytest
import torch
from helpers import t

from gbp_torch import RobustKernel
from gbp_torch.robust import as_kernel, cauchy_energy, huber_energy, tukey_energy

KERNELS = ["huber", "tukey", "cauchy", "l2"]


def _closed_form_energy(name, r, k):
    """Independent numpy energies."""
    if name == "huber":
        return np.where(r <= k, 0.5 * r**2, k * r - 0.5 * k**2)
    if name == "tukey":
        u = np.minimum(r / k, 1.0)
        return k**2 / 6 * (1 - (1 - u**2) ** 3)
    if name == "cauchy":
        return 0.5 * k**2 * np.log1p((r / k) ** 2)
    return 0.5 * r**2


# residuals away from the kinks at r = k (the finite difference straddles nothing)
R = np.array([0.05, 0.3, 0.9, 1.4, 2.5, 4.0, 9.0])
K = np.array([0.5, 1.0, 2.0, 3.5])


@pytest.mark.parametrize("name", KERNELS)
def test_energy_matches_closed_form(name):
    r, k = np.meshgrid(R, K, indexing="ij")
    kern = RobustKernel(name, t(k))
    np.testing.assert_allclose(kern.energy(t(r)).numpy(), _closed_form_energy(name, r, k), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", KERNELS)
def test_weight_is_energy_derivative_over_r_finite_difference(name):
    r, k = np.meshgrid(R, K, indexing="ij")
    mask = np.abs(r - k) > 1e-3
    h = 1e-6
    d_rho = (_closed_form_energy(name, r + h, k) - _closed_form_energy(name, r - h, k)) / (2 * h)
    w = RobustKernel(name, t(k)).weight(t(r)).numpy()
    np.testing.assert_allclose(w[mask], (d_rho / r)[mask], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", KERNELS)
def test_weight_is_energy_derivative_over_r_autograd(name):
    r, k = np.meshgrid(R, K, indexing="ij")
    rt = t(r).requires_grad_()
    kern = RobustKernel(name, t(k))
    (grad,) = torch.autograd.grad(kern.energy(rt).sum(), rt)
    np.testing.assert_allclose(kern.weight(t(r)).numpy(), (grad / rt).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_weight_values_and_shapes():
    r = t([0.5, 1.0, 2.0, 4.0])
    np.testing.assert_allclose(RobustKernel("huber", 1.0).weight(r).numpy(), [1, 1, 0.5, 0.25])
    np.testing.assert_allclose(RobustKernel("tukey", 2.0).weight(r).numpy(),
                               [(1 - 1 / 16) ** 2, (1 - 0.25) ** 2, 0.0, 0.0])
    np.testing.assert_allclose(RobustKernel("cauchy", 2.0).weight(r).numpy(), 1 / (1 + (r.numpy() / 2) ** 2))
    np.testing.assert_allclose(RobustKernel("l2").weight(r).numpy(), 1.0)
    # tensor threshold broadcasts: (3, 1) k against (4,) residuals
    k = t([[0.5], [1.0], [3.0]])
    w = RobustKernel("huber", k).weight(r)
    assert w.shape == (3, 4)
    np.testing.assert_allclose(w.numpy(), np.where(r.numpy() <= k.numpy(), 1.0, k.numpy() / r.numpy()))
    # weights are finite at r = 0
    for name in KERNELS:
        assert torch.isfinite(RobustKernel(name, 1.0).weight(t([0.0]))).all()


def test_threshold_gradient_flows():
    k = t([1.5]).requires_grad_()
    w = RobustKernel("huber", k).weight(t([3.0]))
    (g,) = torch.autograd.grad(w.sum(), k)
    np.testing.assert_allclose(g.numpy(), [1 / 3.0])  # d(k/r)/dk
    k2 = t([1.5]).requires_grad_()
    e = cauchy_energy(t([2.0]), k2)
    (g2,) = torch.autograd.grad(e.sum(), k2)
    kk, rr = 1.5, 2.0
    expected = kk * np.log1p((rr / kk) ** 2) + 0.5 * kk**2 * (-2 * rr**2 / kk**3) / (1 + (rr / kk) ** 2)
    np.testing.assert_allclose(g2.numpy(), [expected], rtol=1e-10)


@pytest.mark.parametrize("name", ["huber", "tukey", "cauchy"])
@pytest.mark.parametrize("k", [0.0, -1.0, float("nan"), [1.0, 0.0], [1.0, float("nan")]])
def test_bad_threshold_raises_at_construction(name, k):
    with pytest.raises(ValueError, match=f"threshold k of the '{name}' kernel must be finite and > 0"):
        RobustKernel(name, t(k) if isinstance(k, list) else k)


def test_unknown_kernel_and_as_kernel():
    with pytest.raises(ValueError, match="unknown robust kernel"):
        RobustKernel("welsch")
    assert as_kernel(None) is None
    kern = as_kernel("tukey", 2.5)
    assert isinstance(kern, RobustKernel) and kern.name == "tukey" and kern.k == 2.5
    same = RobustKernel("huber", 1.0)
    assert as_kernel(same) is same
    with pytest.raises(ValueError):
        as_kernel("nope")


def test_energy_functions_direct():
    r = t([0.5, 3.0])
    np.testing.assert_allclose(huber_energy(r, 1.0).numpy(), [0.125, 2.5])
    np.testing.assert_allclose(tukey_energy(r, 1.0).numpy(), [(1 - 0.75**3) / 6, 1 / 6])

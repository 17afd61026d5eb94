"""Robust (IRLS / covariance scaling) grid solves against scipy.optimize on the robust energy."""

import numpy as np
import pytest
import scipy.optimize as so
import torch
from grid_reference import random_problem

from gbp_torch.grid import MULTIGRID, GridConfig, GridRobust, solve
from gbp_torch.robust import RobustKernel


def _energy_np(x, z, a, wh, wv, kd, ks, d):
    """Huber robust energy of one item, independent numpy code. x flat."""
    x = x.reshape(z.shape)

    def huber(r, k):
        return np.where(r <= k, 0.5 * r * r, k * r - 0.5 * k * k)

    r = x - z
    if d == 1:
        rd = np.sqrt(a * r * r)
        dh, dv = (x[:, 1:] - x[:, :-1]) ** 2, (x[1:] - x[:-1]) ** 2
    else:
        rd = np.sqrt(np.maximum(np.einsum("ihw,ijhw,jhw->hw", r, a, r), 0))
        dh = ((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum(0)
        dv = ((x[:, 1:] - x[:, :-1]) ** 2).sum(0)
    return huber(rd, kd).sum() + huber(np.sqrt(wh * dh), ks).sum() + huber(np.sqrt(wv * dv), ks).sum()


def _minimize(z, a, wh, wv, kd, ks, d):
    z, a, wh, wv = (t.numpy() for t in (z, a, wh, wv))
    out = so.minimize(_energy_np, z.ravel().copy(), args=(z, a, wh, wv, kd, ks, d), method="L-BFGS-B",
                      options=dict(maxiter=20000, maxfun=200000, ftol=1e-15, gtol=1e-11))
    return torch.as_tensor(out.x.reshape(z.shape)), out.fun


@pytest.mark.parametrize("d,levels", [(1, 1), (2, None)])
def test_huber_irls_reaches_the_robust_minimum(d, levels):
    nb = 2 if d == 1 else 1
    z, a, wh, wv = random_problem(nb, 5, 6, d=d, full=(d == 2), seed=1, ratio=4.0)
    g = torch.Generator().manual_seed(0)
    outl = torch.rand(z.shape, generator=g, dtype=z.dtype) < 0.15
    z = torch.where(outl, z + 8.0, z)  # gross outliers in the data
    kd, ks = 1.0, 0.8
    rb = GridRobust(data=RobustKernel("huber", kd), smooth=RobustKernel("huber", ks), outer_iters=1500,
                    outer_tol=1e-13)
    res = solve(z, a, (wh, wv), iters=3000, tol=1e-12, robust=rb, config=GridConfig(levels=levels))
    l2 = solve(z, a, (wh, wv), iters=3000, tol=1e-12)
    for b in range(nb):
        ref, fmin = _minimize(z[b], a[b], wh[b], wv[b], kd, ks, d)
        f_irls = _energy_np(res.mean[b].numpy().ravel(), *(t[b].numpy() for t in (z, a, wh, wv)), kd, ks, d)
        f_l2 = _energy_np(l2.mean[b].numpy().ravel(), *(t[b].numpy() for t in (z, a, wh, wv)), kd, ks, d)
        assert f_irls <= fmin + 1e-9 * abs(fmin) and f_l2 > fmin + 1e-3
        torch.testing.assert_close(res.mean[b], ref, rtol=0, atol=1e-4)


def test_tensor_thresholds_per_pixel_and_per_edge_pair():
    z, a, wh, wv = random_problem(1, 6, 7, seed=2)
    kd = torch.full((1, 6, 7), 0.7, dtype=torch.float64)
    ks = (torch.full_like(wh, 0.5), torch.full_like(wv, 0.5))
    r1 = solve(z, a, (wh, wv), iters=2000, tol=1e-12, robust=GridRobust(data=RobustKernel("huber", kd),
                                                                        smooth=RobustKernel("huber", ks)))
    r2 = solve(z, a, (wh, wv), iters=2000, tol=1e-12, robust=GridRobust(data=RobustKernel("huber", 0.7),
                                                                        smooth=RobustKernel("huber", 0.5)))
    torch.testing.assert_close(r1.mean, r2.mean, rtol=0, atol=1e-12)
    assert r1.outer_iters == 10


def test_tukey_data_term_rejects_salt_and_pepper():
    g = torch.Generator().manual_seed(3)
    clean = torch.linspace(0, 1, 24, dtype=torch.float64).repeat(1, 24, 1)
    noisy = clean.clone()
    salt = torch.rand(clean.shape, generator=g, dtype=torch.float64) < 0.1
    noisy = torch.where(salt, torch.full_like(noisy, 5.0), noisy)
    l2 = solve(noisy, 1.0, 2.0, tol=1e-10, config=MULTIGRID)
    rob = solve(noisy, 1.0, 2.0, tol=1e-10, robust=GridRobust(data=RobustKernel("tukey", 0.5), outer_iters=15),
                config=MULTIGRID)
    ideal = solve(clean, 1.0, 2.0, tol=1e-10, config=MULTIGRID)  # same smoother, no outliers
    assert (rob.mean - ideal.mean).abs().max() < 0.05 < 0.5 < (l2.mean - ideal.mean).abs().max()


def test_robust_gradients_flow_to_thresholds():
    z, a, wh, wv = random_problem(1, 4, 4, seed=4)
    k = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    z = z + 3.0 * (torch.arange(16).reshape(1, 4, 4) == 5)
    res = solve(z, a, (wh, wv), iters=30, robust=GridRobust(data=RobustKernel("huber", k), outer_iters=3))
    res.mean.sum().backward()
    assert torch.isfinite(k.grad) and k.grad.abs() > 0


def test_bare_kernel_is_rejected_as_ambiguous():
    z, a, wh, wv = random_problem(1, 3, 3)
    with pytest.raises(ValueError, match="robust must be None or a GridRobust"):
        solve(z, a, (wh, wv), robust=RobustKernel("huber", 1.0))
    with pytest.raises(ValueError, match="GridRobust.data must be a RobustKernel"):
        GridRobust(data="huber")

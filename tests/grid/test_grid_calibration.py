"""GBP variances vs exact marginal variances, and the probing calibration."""

import pytest
import torch
from grid_reference import exact_marginal_var

from gbp_torch.grid import solve
from gbp_torch.grid.calibration import calibrate, probe_diag_inverse, variance_scale


def test_probe_scale_matches_exact_ratio_on_32x32():
    n, ratio = 32, 30.0
    z = torch.zeros(1, n, n, dtype=torch.float64)
    res = solve(z, 1.0, ratio, iters=3000, tol=1e-10)
    a = torch.ones(n, n, dtype=torch.float64)
    exact = exact_marginal_var(a, torch.full((n, n - 1), ratio, dtype=torch.float64),
                               torch.full((n - 1, n), ratio, dtype=torch.float64))
    true_scale = exact.sum() / res.var.sum()
    assert 1.3 < true_scale < 2.5  # GBP is overconfident on a loopy grid
    s = variance_scale(res.var, 1.0, ratio, z, probes=32, generator=torch.Generator().manual_seed(0))
    assert abs(float(s) / float(true_scale) - 1) < 0.03
    cal = calibrate(res.var, s)
    assert abs(float(cal.sum() / exact.sum()) - 1) < 0.03


def test_probe_diag_inverse_is_unbiased_on_a_chain():
    z = torch.zeros(1, 1, 30, dtype=torch.float64)
    est = probe_diag_inverse(1.0, 5.0, z, probes=400, generator=torch.Generator().manual_seed(1))
    res = solve(z, 1.0, 5.0, iters=500, tol=1e-12)  # chain: GBP variances are exact
    assert abs(float(est.mean() / res.var.mean()) - 1) < 0.05


@pytest.mark.slow
def test_report_gbp_vs_exact_variance_64x64():
    n = 64
    z = torch.zeros(1, n, n, dtype=torch.float64)
    for ratio, lo, hi in ((1.0, 0.9, 1.0), (10.0, 0.7, 0.85), (100.0, 0.45, 0.65)):
        res = solve(z, 1.0, ratio, iters=5000, tol=1e-10)
        a = torch.ones(n, n, dtype=torch.float64)
        exact = exact_marginal_var(a, torch.full((n, n - 1), ratio, dtype=torch.float64),
                                   torch.full((n - 1, n), ratio, dtype=torch.float64))
        q = res.var[0] / exact
        assert lo < float(q[16:-16, 16:-16].mean()) < hi

"""Flow covariance calibration: the motion range against a per-pixel loop, the boundary term's shape, the
two-term fit against errors drawn from a known variance model."""

import numpy as np
import pytest
import torch

from gbp_torch.tasks.flow.calibrate import (
    boundary_variance,
    fit_variance_model,
    fit_variance_terms,
    motion_range,
)
from gbp_torch.tasks.flow.output import FlowOutput


def test_motion_range_matches_a_per_pixel_loop():
    g = torch.Generator().manual_seed(0)
    flow = torch.randn(2, 2, 9, 11, generator=g, dtype=torch.float64)
    out = motion_range(flow, 5)
    f = flow.numpy()
    expected = np.zeros((2, 1, 9, 11))
    for b in range(2):
        for y in range(9):
            for x in range(11):
                win = f[b, :, max(0, y - 2):y + 3, max(0, x - 2):x + 3].reshape(2, -1)
                expected[b, 0, y, x] = (win.max(1) - win.min(1)).max()
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)
    assert torch.equal(motion_range(torch.ones(1, 2, 4, 4) * 3.5, 7), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="window"):
        motion_range(flow, 4)


def test_boundary_variance_is_the_squared_range_near_the_jump():
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0, :, 4:] = 2.0  # a vertical motion boundary with a 2 px jump in u
    var = boundary_variance(flow, 0.25, window=3)
    expected = torch.zeros(1, 1, 6, 8)
    expected[..., 3:5] = 0.25 * 4.0  # only the columns whose 3x3 window straddles the jump
    assert torch.equal(var, expected)


def _draws(n, s, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    var = torch.exp(torch.randn(n, generator=g, dtype=torch.float64) - 4)
    near = torch.rand(n, generator=g, dtype=torch.float64) < 0.2
    rng2 = torch.where(near, 4 * torch.rand(n, generator=g, dtype=torch.float64), torch.zeros(n, dtype=torch.float64))
    err2 = (s * var + t * rng2) * torch.randn(n, generator=g, dtype=torch.float64).square()
    return err2, var, rng2


def test_fit_recovers_a_known_variance_model_and_its_coverage():
    """Gaussian errors with variance 3 var + 0.2 rng2: the likelihood fit finds (3, 0.2) and, the errors being
    Gaussian, the coverage factor changes little; the fitted model covers 95 % of fresh draws."""
    fit = fit_variance_terms([_draws(400_000, 3.0, 0.2)])
    assert fit.var_scale == pytest.approx(3.0, rel=0.03) and fit.boundary_var == pytest.approx(0.2, rel=0.05)
    err2, var, rng2 = _draws(400_000, 3.0, 0.2, seed=1)
    covered = (err2 < 1.96**2 * (fit.var_scale * var + fit.boundary_var * rng2)).double().mean()
    assert float(covered) == pytest.approx(0.95, abs=0.003)
    # without boundary pixels only the scale is fitted
    err2, var, _ = _draws(100_000, 3.0, 0.0)
    alone = fit_variance_terms([(err2, var, torch.zeros_like(var))])
    assert alone.boundary_var == 0.0 and alone.var_scale == pytest.approx(3.0, rel=0.05)
    with pytest.raises(ValueError, match="equal-length"):
        fit_variance_terms([(err2, var, var), (err2, var[:-1], var)])
    with pytest.raises(ValueError, match="fit failed"):
        fit_variance_terms([(torch.full_like(var, float("nan")), var, torch.ones_like(var))])
    with pytest.raises(ValueError, match="at least one regime"):
        fit_variance_terms([])


def test_every_regime_is_covered():
    """Two regimes whose errors are 1x and 3x the model's variance (GBP's variance alone: no boundary pixels):
    the factor is the larger regime's own 95 % quantile of err2 / var (numpy oracle), so the second regime is
    covered at 95 % and the first more; pooling them would have under-covered the second."""
    small, large = _draws(50_000, 1.0, 0.0, seed=2), _draws(50_000, 3.0, 0.0, seed=3)
    regimes = [(e, v, torch.zeros_like(v)) for e, v, _ in (small, large)]
    fit = fit_variance_terms(regimes)
    quantiles = [np.quantile((e / v).numpy(), 0.95) / 1.96**2 for e, v, _ in regimes]
    assert fit.boundary_var == 0.0 and fit.var_scale == pytest.approx(max(quantiles), rel=1e-9)
    covered = [float((e < 1.96**2 * fit.var_scale * v).double().mean()) for e, v, _ in regimes]
    assert covered[1] == pytest.approx(0.95, abs=1e-3) and covered[0] > 0.99
    pooled = fit_variance_terms([tuple(torch.cat(parts) for parts in zip(*regimes))])
    assert float((large[0] < 1.96**2 * pooled.var_scale * large[1]).double().mean()) < 0.93


def test_fit_variance_model_covers_a_misplaced_motion_boundary():
    """A stand-in model with a piecewise constant flow, small Gaussian errors everywhere, that draws a motion
    boundary (a jump of 2 px in u and v) one column late: only the range term can cover that column; GBP's
    covariance with one factor (window 1) cannot."""
    g = torch.Generator().manual_seed(0)
    flow = torch.zeros(1, 2, 32, 32)
    flow[:, :, :, 17:] = 2.0
    gt = flow + 0.01 * torch.randn(flow.shape, generator=g)
    gt[:, :, :, 16] += 2.0  # the true jump is at column 16
    var = torch.full((1, 32, 32, 2), 1e-4)

    def model(f1, f2):
        return FlowOutput(flow=flow, cov=torch.diag_embed(var).permute(0, 3, 4, 1, 2))

    pairs = [(None, None, gt, torch.ones(1, 32, 32, dtype=torch.bool))]
    column = slice(16, 17)
    for window, covers in ((3, True), (1, False)):
        fit = fit_variance_model(model, pairs, window=window)
        twice = fit_variance_model(model, {"one": pairs, "the same again": pairs}, window=window)
        assert tuple(twice) == pytest.approx(tuple(fit), rel=1e-6)  # a regime repeated changes nothing
        cov = fit.var_scale * var.permute(0, 3, 1, 2) + fit.boundary_var * motion_range(flow, window).square()
        inside = (flow - gt).abs() < 1.96 * cov.sqrt()
        assert float(inside.double().mean()) == pytest.approx(0.95, abs=0.002)
        assert bool(inside[..., column].all()) == covers and bool(inside[..., column].any()) == covers


def test_components_with_infinite_variance_stay_out_of_the_fit():
    """Pixels a model reports as undetermined (inf variance) must not turn the fit into NaN: the fit equals the
    one on the finite pixels alone, whatever the errors there."""
    g = torch.Generator().manual_seed(1)
    flow = torch.zeros(1, 2, 24, 24)
    flow[:, :, :, 12:] = 1.5
    gt = flow + 0.05 * torch.randn(flow.shape, generator=g)
    var = 1e-3 * (1 + torch.rand(1, 24, 24, 2, generator=g))
    valid = torch.ones(1, 24, 24, dtype=torch.bool)
    hidden = torch.zeros(1, 24, 24, dtype=torch.bool)
    hidden[:, :3, :4] = True

    def model_with(v):
        return lambda f1, f2: FlowOutput(flow=flow, cov=torch.diag_embed(v).permute(0, 3, 4, 1, 2))

    with_inf = var.clone()
    with_inf[hidden] = float("inf")
    bad_gt = gt.clone()
    bad_gt[:, :, :3, :4] = 100.0  # huge errors where the model says it does not know
    fit = fit_variance_model(model_with(with_inf), [(None, None, bad_gt, valid)])
    alone = fit_variance_model(model_with(var), [(None, None, gt, valid & ~hidden)])
    assert fit.var_scale == pytest.approx(alone.var_scale, rel=1e-9)
    assert fit.boundary_var == pytest.approx(alone.boundary_var, rel=1e-9)

"""gbp_torch.metrics against numpy formulas and a calibrated Gaussian."""

import numpy as np
import torch

from gbp_torch.metrics import coverage, psnr, psnr_db


def test_psnr_per_image_matches_numpy_and_clips_the_estimate():
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 1, 8, 9, generator=gen)
    est = clean + 0.1 * torch.randn(3, 1, 8, 9, generator=gen)
    clipped = np.clip(est.numpy(), 0, 1)
    expected = [10 * np.log10(1 / np.mean((clipped[i] - clean[i].numpy()) ** 2)) for i in range(3)]
    np.testing.assert_allclose(psnr(est, clean).numpy(), expected, rtol=1e-5)
    assert abs(psnr_db(est[1, 0], clean[1, 0]) - expected[1]) < 1e-4


def test_coverage_of_a_calibrated_gaussian_is_095_and_shrinks_when_overconfident():
    gen = torch.Generator().manual_seed(1)
    std = 0.05 + 0.1 * torch.rand(2, 1, 200, 200, generator=gen)
    clean = torch.rand(2, 1, 200, 200, generator=gen)
    est = clean + std * torch.randn(2, 1, 200, 200, generator=gen)
    cov = coverage(est, std.square(), clean)
    assert cov.shape == (2,) and torch.all((cov - 0.95).abs() < 0.005)
    assert torch.all(coverage(est, 0.25 * std.square(), clean) < 0.70)  # half the std: 2 * Phi(0.98) - 1 = 0.67

"""Sliding-window sums against numpy's convolution (valid part)."""

import numpy as np
import pytest
import torch

from gbp_torch.vision.windows import weighted_window_sum, window_sum


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 13])
@pytest.mark.parametrize("dim", [-1, -2])
def test_window_sum_is_a_valid_convolution_with_ones(n, dim):
    x = torch.randn(2, 3, 17, 19, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    got = window_sum(x, n, dim).numpy()
    ref = np.apply_along_axis(lambda v: np.convolve(v, np.ones(n), mode="valid"), dim, x.numpy())
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dim", [-1, -2])
def test_weighted_window_sum_is_a_valid_correlation(dim):
    x = torch.randn(2, 3, 17, 19, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    weights = [0.1, -0.4, 2.0, 0.25, 1.5]
    got = weighted_window_sum(x, weights, dim).numpy()
    ref = np.apply_along_axis(lambda v: np.correlate(v, np.array(weights), mode="valid"), dim, x.numpy())
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)

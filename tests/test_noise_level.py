"""Noise-level estimation for blind denoising."""

import pytest
import torch

from gbp_torch.tasks.denoise_gbp import GBPDenoiser
from gbp_torch.tasks.noise_level import estimate_noise_sigma


def _smooth_image(h=128, w=160):
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return 0.5 + 0.3 * torch.sin(3 * x) * torch.cos(2 * y)


@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.2])
def test_recovers_the_level_of_white_noise_per_image(sigma):
    g = torch.Generator().manual_seed(0)
    clean = _smooth_image()
    levels = torch.tensor([sigma, 2 * sigma])
    noisy = clean + levels.view(2, 1, 1, 1) * torch.randn(2, 1, *clean.shape, generator=g)
    torch.testing.assert_close(estimate_noise_sigma(noisy), levels, rtol=0.05, atol=0)
    assert float(estimate_noise_sigma(clean[None, None])) < 0.01 * sigma + 1e-3


def test_blind_conditioned_denoiser_uses_the_estimate():
    torch.manual_seed(0)
    model = GBPDenoiser(width=8, depth=3, iters=3, sigma_input=True)
    for p in model.parameters():
        p.data.normal_(0, 0.1)
    noisy = (_smooth_image(32, 32) + 0.1 * torch.randn(32, 32))[None, None]
    torch.testing.assert_close(model(noisy).mean, model(noisy, estimate_noise_sigma(noisy)).mean)
    with pytest.raises(ValueError, match="H, W >= 2"):
        estimate_noise_sigma(torch.rand(1, 1, 1, 8))

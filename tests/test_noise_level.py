"""Noise-level estimation for blind denoising."""

import pytest
import torch

from gbp_torch.io import read_gray
from gbp_torch.paths import samples_dir
from gbp_torch.tasks.denoise.gbp import GBPDenoiser
from gbp_torch.tasks.denoise.noise_level import estimate_noise_sigma, mad_noise_sigma


def _shipped_photos() -> list[torch.Tensor]:
    """The gray sample images shipped in samples/denoise, (H, W) each."""
    return [read_gray(p) for p in sorted((samples_dir() / "denoise").glob("*.png"))]


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


@pytest.mark.parametrize("grey_levels", [5.0, 15.0, 50.0])
def test_weak_texture_estimate_beats_mad_on_real_images(grey_levels):
    """Shipped photos: within 20 % of the true level (bsd68_test001 is textured all over) and
    never worse than the MAD rule, which texture inflates at low noise."""
    images = _shipped_photos()
    g = torch.Generator().manual_seed(1)
    sigma = grey_levels / 255
    for img in images:
        noisy = (img + sigma * torch.randn(img.shape, generator=g))[None, None]
        est, mad = float(estimate_noise_sigma(noisy)), float(mad_noise_sigma(noisy))
        assert abs(est - sigma) < 0.2 * sigma
        assert abs(est - sigma) <= abs(mad - sigma) + 0.01 * sigma
    if grey_levels == 5.0:
        assert abs(mad - sigma) > 0.1 * sigma  # the case the refinement is for


def test_an_images_estimate_does_not_depend_on_its_batch():
    """Images converge after different numbers of refinements; each must stop at its own."""
    crops = [img[:160, :160] for img in _shipped_photos()]
    levels = torch.tensor([5.0, 30.0, 12.0]) / 255  # one per shipped photo
    g = torch.Generator().manual_seed(4)
    noisy = torch.stack(crops)[:, None] + levels.view(-1, 1, 1, 1) * torch.randn(len(crops), 1, 160, 160, generator=g)
    alone = torch.cat([estimate_noise_sigma(n[None]) for n in noisy])
    torch.testing.assert_close(estimate_noise_sigma(noisy), alone, rtol=1e-6, atol=0)


@pytest.mark.parametrize("grey_levels", [5.0, 15.0])
def test_rms_error_on_bsd68_is_a_fraction_of_the_mad_rules(grey_levels):
    from train.denoise.datasets import load_dataset

    images = load_dataset("bsd68")[::4]
    g = torch.Generator().manual_seed(3)
    err, mad_err = [], []
    for _, img in images:
        clean = img.float()[None, None] / 255  # uint8 (H, W) -> (1, 1, H, W) in [0, 1]
        noisy = clean + grey_levels / 255 * torch.randn(clean.shape, generator=g)
        err.append(float(estimate_noise_sigma(noisy)) * 255 - grey_levels)
        mad_err.append(float(mad_noise_sigma(noisy)) * 255 - grey_levels)
    rms, mad_rms = torch.tensor(err).square().mean().sqrt(), torch.tensor(mad_err).square().mean().sqrt()
    assert rms < 0.6 and rms < mad_rms / 4, (rms, mad_rms)


def test_large_images_are_sampled_on_a_stride_and_small_ones_get_the_mad_rule():
    g = torch.Generator().manual_seed(2)
    big = 0.5 + 0.05 * torch.randn(1, 1, 900, 700, generator=g)  # 629k patch positions > MAX_PATCHES
    est = estimate_noise_sigma(big)
    assert est.dtype == big.dtype and abs(float(est) - 0.05) < 0.001
    for shape in [(3, 1, 7, 30), (2, 1, 28, 28)]:
        small = torch.rand(*shape, generator=g)
        torch.testing.assert_close(estimate_noise_sigma(small), mad_noise_sigma(small))
    just_big_enough = torch.rand(2, 1, 29, 29, generator=g)  # 23^2 = 529 >= 490 positions: refined
    assert not torch.equal(estimate_noise_sigma(just_big_enough), mad_noise_sigma(just_big_enough))

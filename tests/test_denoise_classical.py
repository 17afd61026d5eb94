"""The hand-set GBP baseline: parameter lookup, and it beats the median filter / noisy input where it should."""

import pytest
import torch

from gbp_torch.io import read_gray
from gbp_torch.metrics import psnr_db
from gbp_torch.paths import samples_dir
from gbp_torch.tasks.denoise.classical import PARAMS, ClassicalDenoiser, tuned_params
from gbp_torch.vision import median_filter


def test_tuned_params_pick_the_nearest_level():
    assert tuned_params("gaussian", 25) == PARAMS[("gaussian", 25)]
    assert tuned_params("gaussian", 18) == PARAMS[("gaussian", 15)]
    assert tuned_params("gaussian", 40) == PARAMS[("gaussian", 50)]
    with pytest.raises(ValueError, match="noise must be"):
        tuned_params("poisson", 10)
    with pytest.raises(ValueError, match="positive"):
        tuned_params("gaussian", 0.0)
    with pytest.raises(ValueError, match="sigma > 0"):
        ClassicalDenoiser()(torch.rand(1, 8, 8), sigma=0.0)


def test_salt_and_pepper_beats_the_median_filter_on_a_shipped_crop():
    clean = read_gray(samples_dir() / "denoise" / "set12_02_house.png")[64:192, 64:192]
    u = torch.rand(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = torch.where(u < 0.1, torch.zeros_like(clean), torch.where(u < 0.2, torch.ones_like(clean), clean))
    mean, var = ClassicalDenoiser(noise="saltpepper", rate=20)(noisy[None])
    assert psnr_db(mean[0], clean) > psnr_db(median_filter(noisy[None, None], 3)[0, 0], clean) + 1.0
    assert var.shape == mean.shape and (var > 0).all()

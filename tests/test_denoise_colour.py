"""Colour denoising in the opponent space (gbp_torch.tasks.denoise.colour) against explicit matrices,
stand-in gray models and the per-channel baseline."""

import pytest
import torch

from gbp_torch.io import read_image
from gbp_torch.metrics import psnr_db
from gbp_torch.paths import samples_dir
from gbp_torch.pretrained import denoiser
from gbp_torch.tasks.denoise.colour import (
    ColourDenoiser,
    from_opponent,
    opponent_sigma,
    opponent_variance_to_rgb,
    to_opponent,
)
from gbp_torch.tasks.denoise.noise_level import estimate_noise_sigma
from gbp_torch.tasks.denoise.output import DenoiseOutput

T = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]], dtype=torch.float64)


class Recorder(torch.nn.Module):
    """A stand-in gray model: returns its input and variance sigma^2, records the sigmas it was given."""

    def __init__(self, sigma_input: bool):
        super().__init__()
        self.sigma_input, self.sigmas = sigma_input, []

    def forward(self, noisy, sigma=None):
        assert noisy.shape[1] == 1
        self.sigmas.append(sigma)
        s = torch.zeros(noisy.shape[0], dtype=noisy.dtype) if sigma is None else sigma
        return DenoiseOutput(noisy.clone(), s.view(-1, 1, 1, 1).square().expand_as(noisy).clone())


def test_opponent_transform_round_trips_and_keeps_rgb_in_the_unit_range():
    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(2, 3, 5, 7, generator=g, dtype=torch.float64)
    opp = to_opponent(rgb)
    assert torch.allclose(opp, torch.einsum("ij,bjhw->bihw", T, rgb) + torch.tensor([0, 0.5, 0.5],
                          dtype=torch.float64).view(1, 3, 1, 1))
    assert torch.allclose(from_opponent(opp), rgb, atol=1e-12)
    corners = torch.tensor([[r, gg, b] for r in (0, 1) for gg in (0, 1) for b in (0, 1)], dtype=torch.float64)
    corner_opp = to_opponent(corners.T.reshape(1, 3, 8, 1))
    assert corner_opp.min() >= 0 and corner_opp.max() <= 1  # every RGB colour maps into [0, 1]^3


def test_white_rgb_noise_stays_independent_with_the_predicted_stds():
    sigma = torch.tensor([[0.1, 0.1, 0.1], [0.05, 0.2, 0.1]], dtype=torch.float64)
    cov = torch.einsum("ij,bj,kj->bik", T, sigma.square(), T)  # T diag(sigma^2) T^T
    assert torch.allclose(opponent_sigma(sigma), cov.diagonal(dim1=1, dim2=2).sqrt())
    off = cov[0] - torch.diag(cov[0].diagonal())
    assert off.abs().max() < 1e-15  # equal RGB noise: independent opponent noise
    assert torch.allclose(opponent_sigma(sigma[0, :1]), opponent_sigma(sigma[:1]))  # (B,) means all three
    # Monte Carlo: the empirical stds of transformed noise
    noise = torch.randn(200_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * sigma[1]
    assert torch.allclose((noise @ T.T).std(0), opponent_sigma(sigma[1:])[0], rtol=0.01)


def test_variances_go_back_to_rgb_as_for_independent_channel_errors():
    v = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    inv = torch.linalg.inv(T)
    explicit = torch.einsum("ij,bjhw,kj->bikhw", inv, v, inv).diagonal(dim1=1, dim2=2).movedim(-1, 1)
    assert torch.allclose(opponent_variance_to_rgb(v), explicit)


def test_a_sigma_conditioned_model_sees_the_opponent_channels_and_their_noise_levels():
    rgb = torch.rand(2, 3, 6, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    gray = Recorder(sigma_input=True)
    out = ColourDenoiser(gray)(rgb, torch.tensor([0.1, 0.2], dtype=torch.float64))
    assert torch.allclose(out.mean, rgb, atol=1e-12)  # the identity model: the transform round trips
    given = torch.stack(gray.sigmas, 1)  # (B, 3): Y, C1, C2
    norms = T.square().sum(1).sqrt()
    assert torch.allclose(given, torch.tensor([[0.1], [0.2]], dtype=torch.float64) * norms)
    # the identity "denoiser" with variance sigma_c^2 per opponent channel: RGB variance sigma_rgb^2 back
    assert torch.allclose(out.var, torch.tensor([0.01, 0.04], dtype=torch.float64).view(2, 1, 1, 1).expand_as(rgb))


def test_a_model_without_sigma_input_runs_on_r_g_b_and_gray_passes_through():
    rgb = torch.rand(1, 3, 6, 8, generator=torch.Generator().manual_seed(4))
    gray = Recorder(sigma_input=False)
    out = ColourDenoiser(gray)(rgb, torch.tensor([[0.1, 0.2, 0.3]]))
    assert torch.equal(out.mean, rgb)
    assert [float(s) for s in torch.cat(gray.sigmas)] == pytest.approx([0.1, 0.2, 0.3])
    one = Recorder(sigma_input=True)
    out = ColourDenoiser(one)(rgb[:, :1], 0.05)
    assert torch.equal(out.mean, rgb[:, :1]) and len(one.sigmas) == 1
    assert float(one.sigmas[0]) == pytest.approx(0.05)


def test_channel_sigma_goes_to_the_channels_and_blind_measures_them():
    rgb = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    gray = Recorder(sigma_input=True)
    ColourDenoiser(gray)(rgb, channel_sigma=torch.tensor([[0.01, 0.02, 0.03]], dtype=torch.float64))
    assert [float(s) for s in torch.cat(gray.sigmas)] == pytest.approx([0.01, 0.02, 0.03])
    blind = Recorder(sigma_input=True)
    ColourDenoiser(blind)(rgb)
    opp = torch.einsum("ij,bjhw->bihw", T, rgb) + torch.tensor([0, 0.5, 0.5], dtype=torch.float64).view(1, 3, 1, 1)
    expected = estimate_noise_sigma(opp.reshape(3, 1, 40, 48))
    assert torch.allclose(torch.cat(blind.sigmas), expected)
    with pytest.raises(ValueError, match="not both"):
        ColourDenoiser(gray)(rgb, 0.1, channel_sigma=torch.ones(1, 3))


def test_noise_shared_by_r_g_b_is_measured_in_the_luminance():
    """The same noise in R, G and B (as demosaicking leaves much of it) lies all in Y: the blind estimate on the
    opponent channels sees it there, and almost none in the chroma channels."""
    g = torch.Generator().manual_seed(7)
    clean = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 100, 100, generator=g), 9, 1, 4)
    noisy = clean + 0.1 * torch.randn(1, 1, 100, 100, generator=g)
    est = ColourDenoiser(Recorder(sigma_input=True)).estimate_sigma(noisy)[0]
    assert abs(float(est[0]) - 0.1) < 0.015 and float(est[1:].max()) < 0.02
    assert ColourDenoiser(Recorder(sigma_input=True)).channel_names(3) == ("Y", "C1", "C2")
    assert ColourDenoiser(Recorder(sigma_input=False)).channel_names(3) == ("R", "G", "B")


@pytest.mark.parametrize("sigma, match", [(-0.1, "finite and >= 0"), (float("nan"), "finite and >= 0"),
                                          (torch.ones(2, 2), "sigma must be a number")])
def test_bad_sigma_is_a_value_error(sigma, match):
    with pytest.raises(ValueError, match=match):
        ColourDenoiser(Recorder(True))(torch.rand(1, 3, 4, 4), sigma)
    with pytest.raises(ValueError, match="noisy must be a"):
        ColourDenoiser(Recorder(True))(torch.rand(3, 4, 4), 0.1)


def test_the_opponent_space_beats_denoising_r_g_b_separately():
    """A colour photo crop (the shipped RubberWhale frame), sigma 25: the default model gains > 0.5 dB
    (1.1-1.4 dB over 8 whole Middlebury frames in benchmarks/bench_colour_denoise.py)."""
    clean = read_image(samples_dir() / "flow" / "rubberwhale_frame10.png")[None, :, :128, :128]
    sigma = 25 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    model = denoiser()
    with torch.no_grad():
        opponent = ColourDenoiser(model)(noisy, sigma).mean
        separate = torch.cat([model(noisy[:, c:c + 1], torch.tensor([sigma])).mean for c in range(3)], 1)
    assert psnr_db(opponent, clean) > psnr_db(separate, clean) + 0.5


@pytest.mark.parametrize("channels", [1, 3])
def test_integer_samples_give_the_float_images_result_and_the_input_is_never_written(channels):
    """uint8 samples (what gbp-denoise passes, a quarter of the float image's memory) give exactly the result
    of the float image; without autograd the channels' estimates are written over the method's own opponent
    channels / float copy, never over the caller's tensor; with autograd the (out-of-place) result is the same."""
    clean = read_image(samples_dir() / "flow" / "rubberwhale_frame10.png")[None, :channels, :40, :48]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(8))
    samples = (noisy * 255).round().clamp(0, 255).to(torch.uint8)
    as_float = samples.float() / 255
    kept = as_float.clone()
    wrapper = ColourDenoiser(denoiser())
    with torch.no_grad():
        from_samples, from_float = wrapper(samples, 25 / 255), wrapper(as_float, 25 / 255)
    assert torch.equal(as_float, kept)
    assert torch.equal(from_samples.mean, from_float.mean) and torch.equal(from_samples.var, from_float.var)
    with torch.enable_grad():
        recorded = wrapper(as_float.requires_grad_(), 25 / 255)
    torch.testing.assert_close(recorded.mean.detach(), from_float.mean, rtol=0, atol=1e-5)
    torch.testing.assert_close(recorded.var.detach(), from_float.var, rtol=1e-4, atol=1e-9)

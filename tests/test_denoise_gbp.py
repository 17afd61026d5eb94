"""The learned GBP denoiser: outputs, ablation, gradients through multigrid GBP."""

import pytest
import torch

from gbp_torch.nets import count_parameters
from gbp_torch.tasks.denoise.gbp import GBPDenoiser


def test_outputs_ablation_and_parameter_budget():
    torch.manual_seed(0)
    full, ablation = GBPDenoiser(width=16, depth=4), GBPDenoiser(width=16, depth=4, use_gbp=False)
    assert count_parameters(full) == count_parameters(ablation)
    assert count_parameters(GBPDenoiser()) < 500_000
    assert count_parameters(GBPDenoiser(sigma_input=True, context_width=64, context_depth=8)) < 500_000
    noisy = torch.rand(2, 1, 20, 24)
    out = full(noisy, torch.tensor([0.1, 0.2]))
    assert out.mean.shape == (2, 1, 20, 24) and out.var.shape == (2, 1, 20, 24) and (out.var > 0).all()
    assert ablation(noisy).var is None
    # untrained: z = noisy, equal data and smoothness weights -> GBP smooths (less total variation)
    tv = lambda x: (x[..., 1:] - x[..., :-1]).abs().mean()  # noqa: E731
    assert tv(out.mean) < 0.7 * tv(noisy)
    with pytest.raises(ValueError, match="B, 1, H, W"):
        full(torch.rand(2, 20, 24))
    with pytest.raises(ValueError, match="noisy contains NaN"):  # once 'z contains NaN', from the solver
        full(noisy.clone().fill_(float("nan")), torch.tensor([0.1, 0.2]))
    samples = (noisy * 65535).round()  # uint16 (a 16-bit read_image) is scaled by 65535; int64 is refused
    torch.testing.assert_close(full(samples.to(torch.uint16), torch.tensor([0.1, 0.2])).mean,
                               full(samples / 65535, torch.tensor([0.1, 0.2])).mean)
    with pytest.raises(ValueError, match="noisy must be floating point"):
        full(samples.long(), torch.tensor([0.1, 0.2]))
    torch.testing.assert_close(full(noisy, 0.1).mean, full(noisy, torch.tensor([0.1, 0.1])).mean)  # a number
    with pytest.raises(ValueError, match="sigma must be a number or B = 2 values"):  # was a RuntimeError
        full(noisy, torch.tensor([0.1, 0.2, 0.3]))
    for bad_sigma in (-0.1, float("nan")):  # a negative sigma was clamped silently
        with pytest.raises(ValueError, match="sigma must be finite and >= 0"):
            full(noisy, torch.tensor([0.1, bad_sigma]))
    with pytest.raises(ValueError, match="0-1 scale .* divided by 255"):  # 0-255 by mistake: was garbage and a
        full(noisy, torch.tensor([25.0, 0.1]))  # warning about pixels that no data determines


def test_implicit_and_unrolled_gradients_agree_for_the_denoiser():
    torch.manual_seed(1)
    noisy = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    grads = []
    for backward in ("unroll", "implicit"):
        torch.manual_seed(2)
        model = GBPDenoiser(width=8, depth=3, iters=40, backward=backward).double()
        for p in model.parameters():
            torch.nn.init.normal_(p, std=0.05)
        model.gbp.tol = 1e-13
        loss = model(noisy, torch.tensor([0.1], dtype=torch.float64)).mean.square().sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)
    assert all(g.abs().sum() > 0 for g in grads[1])


def test_mixed_precision_cnn_feeds_a_float32_solve():
    """Under bfloat16 autocast the CNN runs in bfloat16, the GBP solve in float32 on the upcast factors."""
    from gbp_torch.modules import MultigridGBP

    torch.manual_seed(3)
    z, a = torch.rand(2, 16, 16).bfloat16(), (torch.rand(2, 16, 16) + 0.5).bfloat16()
    wh, wv = (torch.rand(2, 16, 15) * 4).bfloat16(), (torch.rand(2, 15, 16) * 4).bfloat16()
    layer = MultigridGBP(iters=6)
    ref = layer(z.float(), a.float(), (wh.float(), wv.float()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(z, a, (wh, wv))
    assert out.mean.dtype == torch.float32 and out.var.dtype == torch.float32
    torch.testing.assert_close(out.mean, ref.mean, rtol=0, atol=0)
    model = GBPDenoiser(width=8, depth=3, iters=4)
    noisy, sigma = torch.rand(1, 1, 16, 16), torch.tensor([0.1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(noisy, sigma)
    assert mixed.mean.dtype == torch.float32
    torch.testing.assert_close(mixed.mean, model(noisy, sigma).mean, atol=2e-2, rtol=0)


def test_fixed_noise_level_overrides_the_callers_sigma():
    torch.manual_seed(4)
    model = GBPDenoiser(width=8, depth=3, iters=3, noise_level=0.2)
    noisy = torch.rand(2, 1, 12, 12)
    ref = model(noisy, torch.full((2,), 0.2))
    for sigma in (None, torch.full((2,), 0.05)):
        out = model(noisy, sigma)
        torch.testing.assert_close(out.mean, ref.mean)
        torch.testing.assert_close(out.var, ref.var)
    with pytest.raises(ValueError, match="noise_level"):
        GBPDenoiser(noise_level=0.0)


def test_variance_calibration_power_law_in_sigma():
    from gbp_torch.tasks.denoise.gbp import REFERENCE_SIGMA

    torch.manual_seed(5)
    raw = GBPDenoiser(width=8, depth=3, iters=3, sigma_input=True)
    cal = GBPDenoiser(width=8, depth=3, iters=3, sigma_input=True, var_scale=2.0, var_slope=1.0)
    cal.load_state_dict(raw.state_dict())
    noisy = torch.rand(2, 1, 10, 10)
    sigma = torch.tensor([REFERENCE_SIGMA, 2 * REFERENCE_SIGMA])
    ratio = cal(noisy, sigma).var / raw(noisy, sigma).var
    torch.testing.assert_close(ratio[:, 0, 0, 0], torch.tensor([2.0, 4.0]))

"""The shipped models on a shipped image: each beats the 3x3 median filter on its noise; blind works."""

import pytest
import torch
from helpers import unclip_oracle

from gbp_torch.io import read_gray
from gbp_torch.metrics import psnr_db
from gbp_torch.nets import count_parameters
from gbp_torch.paths import samples_dir
from gbp_torch.pretrained import CHECKPOINT_DIR, denoiser, load, manifest, names_of
from gbp_torch.tasks.denoise.median import MedianDenoiser
from gbp_torch.tasks.denoise.noise import add_salt_pepper
from gbp_torch.tasks.denoise.noise_level import estimate_noise_sigma


@pytest.fixture(scope="module")
def clean():
    return read_gray(samples_dir() / "denoise" / "set12_02_house.png")[64:192, 64:192]


@pytest.mark.parametrize("sigma255", [15.0, 50.0])
def test_default_denoiser_any_sigma_and_blind(clean, sigma255):
    sigma = sigma255 / 255
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    model = denoiser()
    with torch.no_grad():
        known = model(noisy[None, None], torch.tensor([sigma]))
        blind = model(noisy[None, None])
    median = MedianDenoiser(3)(noisy[None, None], None)
    assert psnr_db(known.mean[0, 0], clean) > psnr_db(median[0, 0], clean) + 1.5
    assert abs(psnr_db(blind.mean[0, 0], clean) - psnr_db(known.mean[0, 0], clean)) < 0.3
    assert known.var.shape == known.mean.shape and (known.var > 0).all()


def test_salt_and_pepper_model_beats_the_median_filter(clean):
    noisy = add_salt_pepper(clean[None, None], 0.2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = load("gbp_denoiser_saltpepper")(noisy)
    assert psnr_db(out.mean[0, 0], clean) > psnr_db(MedianDenoiser(3)(noisy, None)[0, 0], clean) + 2.0


def test_cli_blind_gives_what_the_default_model_gives_without_sigma(clean, tmp_path, capsys):
    from gbp_torch.cli import denoise_main
    from gbp_torch.io import write_image

    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    write_image(tmp_path / "in.png", noisy)
    denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--blind"])
    noisy = read_gray(tmp_path / "in.png")[None, None]
    assert bool((noisy == 0).any() | (noisy == 1).any())  # clipped: the model's clipped means are unclipped
    share = float(((noisy == 0) | (noisy == 1)).float().mean())
    assert f"clipped input: {share:.1%} of the values" in capsys.readouterr().out
    with torch.no_grad():
        raw = denoiser()(noisy).mean[0, 0]
    expected, _ = unclip_oracle(raw.numpy(), None, float(estimate_noise_sigma(noisy)))
    assert (read_gray(tmp_path / "out.png") - torch.from_numpy(expected).float()).abs().max() <= 0.5 / 255 + 1e-5


@pytest.mark.parametrize("noise_args", [["--sigma", "25"], ["--blind"]])
def test_cli_denoises_a_colour_image_in_an_opponent_space(tmp_path, noise_args):
    from gbp_torch.cli import denoise_main
    from gbp_torch.io import read_image, write_image
    from gbp_torch.tasks.denoise.noise_level import estimate_noise_sigma

    clean = read_image(samples_dir() / "flow" / "rubberwhale_frame10.png")[:, 100:196, 50:162]  # a colour photo
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    write_image(tmp_path / "in.png", clean + 25 / 255 * noise)
    denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--uncertainty", str(tmp_path / "std.png"),
                  *noise_args])
    noisy, out = read_image(tmp_path / "in.png"), read_image(tmp_path / "out.png")
    assert out.shape == noisy.shape == (3, 96, 112) and read_image(tmp_path / "std.png").shape == (3, 96, 112)
    # oracle: Y = mean, C1 = (R - B) / 2 + 1/2, C2 = (R - 2 G + B) / 4 + 1/2, each through the gray model with
    # its noise std (sigma_rgb times the row's norm), then back to RGB
    t = torch.tensor([[1 / 3, 1 / 3, 1 / 3], [1 / 2, 0, -1 / 2], [1 / 4, -1 / 2, 1 / 4]])
    opp = torch.einsum("ij,jhw->ihw", t, noisy) + torch.tensor([0, 0.5, 0.5]).view(3, 1, 1)
    if noise_args == ["--blind"]:  # measured on Y, C1, C2 themselves
        sigma = estimate_noise_sigma(opp[:, None])
    else:  # 25 in each of R, G, B: the rows' norms times 25
        sigma = (t.square() @ torch.full((3,), 25 / 255).square()).sqrt()
    model = denoiser()
    with torch.no_grad():
        den = torch.stack([model(opp[c][None, None], sigma[c:c + 1]).mean[0, 0] for c in range(3)])
    expected = torch.einsum("ij,jhw->ihw", torch.linalg.inv(t), den - torch.tensor([0, 0.5, 0.5]).view(3, 1, 1))
    # clipped channels (values at exactly 0 or 1) are unclipped with R, G, B noise stds sqrt(Tinv^2 sigma^2)
    rgb_sigma = (torch.linalg.inv(t).square() @ sigma.square()).sqrt()
    for c in range(3):
        if bool((noisy[c] == 0).any() | (noisy[c] == 1).any()):
            expected[c] = torch.from_numpy(unclip_oracle(expected[c].numpy(), None, float(rgb_sigma[c]))[0])
    assert (out - expected.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-5
    for c in range(3):
        assert psnr_db(out[c], clean[c]) > psnr_db(noisy[c], clean[c]) + 4.0


@pytest.mark.parametrize("name", sorted(manifest()))
def test_shipped_models_are_small_and_their_manifest_is_true(name):
    entry = manifest()[name]
    model = load(name)
    assert entry["parameters"] == sum(p.numel() for p in model.parameters()) < 500_000  # frozen ones too
    assert count_parameters(model) <= entry["parameters"]
    assert entry["bytes"] == (CHECKPOINT_DIR / entry["file"]).stat().st_size < 4_000_000


def test_cli_tiled_equals_untiled(tmp_path):
    """--tile 96 (tiles with the network's receptive margin) against --tile 0 (the whole image at once)."""
    from gbp_torch.cli import denoise_main
    from gbp_torch.io import write_image

    clean = read_gray(samples_dir() / "denoise" / "set12_02_house.png")[:200, :230]
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(4))
    write_image(tmp_path / "in.png", clean + 25 / 255 * noise)
    outs = {}
    for tile in ("96", "0"):
        denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / f"out{tile}.png"), "--sigma", "25",
                      "--uncertainty", str(tmp_path / f"std{tile}.png"), "--tile", tile])
        outs[tile] = read_gray(tmp_path / f"out{tile}.png"), read_gray(tmp_path / f"std{tile}.png")
    for tiled, whole in zip(outs["96"], outs["0"]):
        assert (tiled - whole).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("name", names_of("denoise"))
def test_shipped_denoisers_run_under_a_callers_bfloat16_autocast(clean, name):
    """A mixed-precision caller (``torch.autocast``) gets float32 outputs within 0.1 dB of the float32 run (the
    non-local model's match weights once failed there on a bfloat16 table)."""
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = noisy[None, None]
    model = load(name)
    with torch.no_grad():
        ref = model(noisy, torch.tensor([25 / 255]))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(noisy, torch.tensor([25 / 255]))
    ref, mixed = (getattr(o, "mean", o) for o in (ref, mixed))
    assert mixed.dtype == torch.float32
    assert abs(psnr_db(mixed[0, 0].clamp(0, 1), clean) - psnr_db(ref[0, 0].clamp(0, 1), clean)) < 0.1


@pytest.mark.parametrize("name", ["handset", *names_of("flow")])
def test_flow_models_under_a_callers_autocast_give_their_float32_flow(name):
    """The flow pipeline runs in float32 whatever the caller's autocast (its pre-blur once returned bfloat16
    frames there and the constancy terms refused them); ``pretrained.flow("handset")`` is the hand-set model, as
    ``pretrained.stereo("handset")`` is."""
    from gbp_torch.io import read_image
    from gbp_torch.pretrained import flow

    f1, f2 = (read_image(samples_dir() / "flow" / f"rubberwhale_frame{i}.png")[None][..., :64, :96]
              for i in (10, 11))
    model = flow(name)
    assert not model.training and (name != "handset" or type(model).__name__ == "HandsetFlow")
    with torch.no_grad():
        ref = model(f1, f2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(f1, f2)
    assert mixed.flow.dtype == torch.float32
    torch.testing.assert_close(mixed.flow, ref.flow, rtol=0, atol=0)
    torch.testing.assert_close(mixed.cov, ref.cov, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["handset", *names_of("stereo")])
def test_stereo_models_run_under_a_callers_bfloat16_autocast(name):
    """float32 disparities under a caller's autocast, within 0.25 px of the float32 run on most pixels."""
    from gbp_torch.io import read_image
    from gbp_torch.pretrained import stereo

    left, right = (read_image(samples_dir() / "stereo" / f"tsukuba_{side}.png")[None][..., :96, :128]
                   for side in ("left", "right"))
    model = stereo(name)
    with torch.no_grad():
        ref = model(left, right, 16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(left, right, 16)
    assert mixed.disparity.dtype == torch.float32
    assert float(((mixed.disparity - ref.disparity).abs() < 0.25).float().mean()) > 0.95


@pytest.mark.parametrize("name", names_of("denoise"))
def test_shipped_denoisers_take_float64_images(clean, name):
    """A float64 image (e.g. from numpy) meets the float32 networks: the networks run in float32, the solve and
    the output in float64, within 0.01 dB of the float32 run (it raised inside the first convolution)."""
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    model = load(name)
    with torch.no_grad():
        ref = model(noisy[None, None], torch.tensor([25 / 255]))
        wide = model(noisy[None, None].double(), torch.tensor([25 / 255], dtype=torch.float64))
    ref, wide = (getattr(o, "mean", o) for o in (ref, wide))
    assert wide.dtype == torch.float64
    assert abs(psnr_db(wide[0, 0].float().clamp(0, 1), clean) - psnr_db(ref[0, 0].clamp(0, 1), clean)) < 0.01


def test_float_images_on_the_0_255_scale_are_refused_naming_the_argument(clean):
    """0-255 samples in a float tensor (numpy / OpenCV habits) are refused by every task's model, naming the
    argument; the denoiser used to return garbage with a warning about pixels that no data determines. Values a
    noisy [0, 1] image reaches (sigma 1) and NaN (refused by the finiteness check) are not taken for them."""
    from gbp_torch.pretrained import flow, stereo

    img = clean[None, None].expand(1, 3, -1, -1)[..., :48, :64]
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"noisy must be in \[0, 1\].*divide 0-255 samples by 255"):
            denoiser()(clean[None, None] * 255, 0.1)
        with pytest.raises(ValueError, match=r"left must be in \[0, 1\]"):
            stereo()(img * 255, img * 255, 8)
        with pytest.raises(ValueError, match=r"frame1 must be in \[0, 1\]"):
            flow()(img * 255, img * 255)
        noisy = clean + torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))  # sigma 1: accepted
        assert denoiser()(noisy[None, None], 1.0).mean.shape == (1, 1, *clean.shape)
        with pytest.raises(ValueError, match="noisy contains NaN"):
            denoiser()(torch.full((1, 1, 8, 8), float("nan")), 0.1)


def test_an_empty_batch_is_a_value_error_naming_the_argument():
    """B = 0 (or no rows) raised deep inside each task (a convolution's channel count, a reshape, a division by
    zero); now the input checks say so."""
    from gbp_torch.pretrained import flow, stereo

    with torch.no_grad():
        with pytest.raises(ValueError, match="noisy holds no pixels"):
            denoiser()(torch.zeros(0, 1, 16, 16), 0.1)
        with pytest.raises(ValueError, match="left and right hold no pixels"):
            stereo()(torch.zeros(0, 1, 32, 32), torch.zeros(0, 1, 32, 32), 8)
        with pytest.raises(ValueError, match=r"frame1 and frame2 hold no pair \(B = 0\)"):
            flow()(torch.zeros(0, 1, 32, 32), torch.zeros(0, 1, 32, 32))


@pytest.mark.parametrize("bits", [8, 16])
def test_cli_keeps_the_alpha_channel_of_a_transparent_png(tmp_path, bits):
    """An RGBA input gives an RGBA output: its alpha unchanged, its colour what the same image without alpha gives."""
    from gbp_torch.cli import denoise_main
    from gbp_torch.io import read_alpha, read_image, write_image

    clean = read_image(samples_dir() / "flow" / "rubberwhale_frame10.png")[:, 100:164, 50:130]
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(5))
    alpha = torch.zeros(1, 64, 80)
    alpha[:, 8:56, 10:70] = torch.linspace(0.2, 1.0, 60)  # a transparent margin and a ramp
    write_image(tmp_path / "rgba.png", noisy, bits=bits, alpha=alpha)
    write_image(tmp_path / "rgb.png", noisy, bits=bits)
    for name in ("rgba", "rgb"):
        denoise_main([str(tmp_path / f"{name}.png"), "-o", str(tmp_path / f"{name}_out.png"), "--sigma", "25"])
    assert torch.equal(read_alpha(tmp_path / "rgba_out.png"), read_alpha(tmp_path / "rgba.png"))
    assert read_alpha(tmp_path / "rgb_out.png") is None
    out, out_bits = read_image(tmp_path / "rgba_out.png", return_bits=True)
    assert out_bits == bits and torch.equal(out, read_image(tmp_path / "rgb_out.png"))


def test_a_colour_image_given_to_a_gray_denoiser_is_pointed_to_the_colour_wrapper(clean):
    """The shipped denoisers are gray models: an RGB tensor is refused with the way to denoise it, which works."""
    from gbp_torch.tasks.denoise.colour import ColourDenoiser

    rgb = clean[None, None, :32, :40].expand(1, 3, -1, -1).contiguous()
    with pytest.raises(ValueError, match=r"noisy must be \(B, 1, H, W\).*ColourDenoiser\(model\)"):
        denoiser()(rgb, 0.1)
    with pytest.raises(ValueError, match=r"noisy must be \(B, 1, H, W\), got \(1, 2, 32, 40\)$"):
        denoiser()(rgb[:, :2], 0.1)  # not colour: no hint
    with torch.no_grad():
        out = ColourDenoiser(denoiser())(rgb, 0.1)
    assert out.mean.shape == rgb.shape

"""Export a trained checkpoint, load it through the pretrained API (hash checked) and the CLI."""

import json

import pytest
import torch
from train_helpers import compose_train_cfg

from gbp_torch import pretrained
from gbp_torch.cli import denoise_main
from gbp_torch.io import read_gray, write_image


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from train.export import export
    from train.train import train

    out = tmp_path_factory.mktemp("run")
    cfg = compose_train_cfg(out, "model=gbp", "model.net.depth=3", "model.net.width=8", "logger=none",
                            "debug=fast_dev_run")
    metrics = train(cfg)
    ckpt_dir = tmp_path_factory.mktemp("ckpts")
    entry = export(metrics["last_ckpt"], "tiny_gbp", "pytest fast_dev_run", {"note": 1.0}, directory=ckpt_dir)
    return ckpt_dir, entry


def test_export_writes_a_verified_manifest_entry(exported):
    ckpt_dir, entry = exported
    manifest = json.loads((ckpt_dir / "MANIFEST").read_text())
    assert manifest["tiny_gbp"]["sha256"] == pretrained.sha256(ckpt_dir / "tiny_gbp.pt") == entry["sha256"]
    assert entry["class"] == "gbp_torch.tasks.denoise.gbp.GBPDenoiser" and entry["training"]["global_step"] == 1
    model = pretrained.load("tiny_gbp", directory=ckpt_dir)
    out = model(torch.rand(1, 1, 16, 16), torch.tensor([0.1]))
    assert out.mean.shape == (1, 1, 16, 16) and (out.var > 0).all() and not model.training


def test_corrupt_or_missing_checkpoint_is_a_clear_error(exported, tmp_path):
    ckpt_dir, _ = exported
    bad = tmp_path / "ck"
    bad.mkdir()
    (bad / "MANIFEST").write_text((ckpt_dir / "MANIFEST").read_text())
    data = bytearray((ckpt_dir / "tiny_gbp.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "tiny_gbp.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or modified"):
        pretrained.load("tiny_gbp", directory=bad)
    with pytest.raises(KeyError, match="available"):
        pretrained.load("nope", directory=ckpt_dir)
    with pytest.raises(ValueError, match="is a denoise model, not a stereo model"):
        pretrained.load("tiny_gbp", directory=ckpt_dir, task="stereo")
    with pytest.raises(KeyError, match=r"no pretrained flow model 'nope'; available: \[\]"):
        pretrained.load("nope", directory=ckpt_dir, task="flow")
    (bad / "tiny_gbp.pt").unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        pretrained.load("tiny_gbp", directory=bad)


def test_cli_denoises_and_writes_uncertainty(exported, tmp_path, monkeypatch):
    ckpt_dir, _ = exported
    monkeypatch.setattr(pretrained, "denoiser", lambda name, device="cpu": pretrained.load(name, device, ckpt_dir))
    clean = torch.linspace(0, 1, 24).expand(24, 24)
    noisy = clean + 0.1 * torch.randn(24, 24, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "in.png", noisy)
    denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--sigma", "25",
                  "--uncertainty", str(tmp_path / "std.png"), "--model", "tiny_gbp"])
    out = read_gray(tmp_path / "out.png")
    assert out.shape == (24, 24) and (tmp_path / "std.png").is_file()
    assert (out - clean).square().mean() < (read_gray(tmp_path / "in.png") - clean).square().mean()
    with pytest.raises(SystemExit):
        denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png")])  # neither --sigma nor --blind


def test_export_calibrates_the_variances_on_train400(exported, tmp_path):
    from train.denoise.datasets import NoiseSpec, load_dataset
    from train.export import export
    from train.metrics import coverage

    _, entry = exported
    entry = export(entry["training"]["source_checkpoint"], "tiny_cal", "pytest", directory=tmp_path, calibrate=3)
    scale = entry["calibration"]["var_scale"]
    model = pretrained.load("tiny_cal", directory=tmp_path)
    assert model.var_scale == scale > 0 and entry["calibration"]["var_slope"] == 0.0
    # the same images and noise seeds as the fit: exactly 95 % of the pixels are covered
    covered = []
    for i, (_, img) in enumerate(load_dataset("train400", limit=3)):
        clean = img.float()[None, None] / 255
        noisy, sigma = NoiseSpec(**entry["calibration"]["noise"]).apply(clean, torch.Generator().manual_seed(i))
        with torch.no_grad():
            out = model(noisy, sigma)
        covered.append(coverage(out.mean, out.var, clean) * clean.numel())
    assert abs(float(sum(covered)) / (3 * clean.numel()) - 0.95) < 2e-3


def test_calibration_scale_recovers_a_known_variance_ratio():
    from train.denoise.calibrate import calibration_scale

    g = torch.Generator().manual_seed(0)
    var = torch.rand(200_000, generator=g) + 0.1
    err = 2.0 * var.sqrt() * torch.randn(200_000, generator=g)  # true variance = 4 var
    assert abs(calibration_scale(err, var) - 4.0) < 0.1
    with pytest.raises(ValueError, match="coverage"):
        calibration_scale(err, var, coverage=1.0)


def test_cli_blind_reports_the_estimated_noise_level(exported, tmp_path, monkeypatch, capsys):
    ckpt_dir, _ = exported
    monkeypatch.setattr(pretrained, "denoiser", lambda name, device="cpu": pretrained.load(name, device, ckpt_dir))
    clean = torch.linspace(0.3, 0.7, 64).expand(64, 64)
    write_image(tmp_path / "in.png", clean + 0.1 * torch.randn(64, 64, generator=torch.Generator().manual_seed(1)))
    denoise_main([str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--blind", "--model", "tiny_gbp"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("blind"))
    assert abs(float(line.split("sigma ")[1].split("/")[0]) - 25.5) < 2.0
    assert read_gray(tmp_path / "out.png").shape == (64, 64)


def test_calibration_power_law_over_noise_levels():
    """Variances off by a factor 100 sigma (all levels): the fit finds slope 1 and scale 100 * 25/255."""
    from gbp_torch.tasks.denoise.gbp import REFERENCE_SIGMA
    from gbp_torch.tasks.denoise.output import DenoiseOutput
    from train.denoise.calibrate import fit_variance_scale
    from train.denoise.datasets import NoiseSpec

    class NoisyIsTheEstimate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, noisy, sigma):
            return DenoiseOutput(noisy, 0.01 * sigma.view(-1, 1, 1, 1) * torch.ones_like(noisy))

    images = [torch.full((64, 64), 128, dtype=torch.uint8)] * 24
    scale, slope = fit_variance_scale(NoisyIsTheEstimate(), images, NoiseSpec("blind", sigma_min=5, sigma_max=50))
    assert abs(slope - 1.0) < 0.05 and abs(scale / (100 * REFERENCE_SIGMA) - 1) < 0.05

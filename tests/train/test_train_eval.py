import json
import math

import torch

from gbp_torch.tasks.denoise.cnn import DenoiseCNN
from gbp_torch.tasks.denoise.median import MedianDenoiser
from train.denoise.baselines import ClassicalBaseline, PretrainedBaseline
from train.denoise.conditions import Condition
from train.denoise.evaluate import evaluate, format_table
from train.eval import run


def test_eval_cli_table_on_two_images(tmp_path, trained_ckpt, capsys):
    rows = run([f"ckpt={trained_ckpt}", "--limit", "2", "--no-classical", "--out", str(tmp_path), "--png", "1",
                 "--baseline", "median5=gbp_torch.tasks.denoise.median:MedianDenoiser"])
    out = capsys.readouterr().out
    assert len(rows) == 9 and all(r["n"] == 2 for r in rows)
    assert "bsd68 s&p 30%" in out and "median3" in out and "model" in out
    for r in rows:
        assert set(r["psnr"]) == {"noisy", "median3", "model", "median5"}
        assert all(math.isfinite(v) for v in [*r["psnr"].values(), *r["ssim"].values()])
        if "s&p" in r["condition"]:
            assert r["psnr"]["median3"] > r["psnr"]["noisy"] + 5
    assert (tmp_path / "bsd68_sigma_25" / "test001_model.png").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["rows"][0]["n"] == 2


def test_eval_model_override_and_variance_calibration(tmp_path, trained_ckpt):
    # model=... rebuilds from the config and loads the checkpoint's weights
    rows = run([f"ckpt={trained_ckpt}", "model=cnn", "model.net.depth=3", "model.net.width=8", "--limit", "1",
                 "--no-classical", "--out", str(tmp_path), "--png", "0"])
    assert len(rows) == 9
    net = DenoiseCNN(depth=3, width=4, predict_var=True)
    rows = evaluate({"median3": MedianDenoiser(), "cnn_var": net}, conditions=[Condition("set12", "gaussian", 25)],
                    limit=1)
    assert set(rows[0]["coverage"]) == {"cnn_var"} and 0 <= rows[0]["coverage"]["cnn_var"] <= 1
    assert "calibration" in format_table(rows)


def test_classical_baseline_adapter_shapes():
    clean = torch.full((1, 1, 12, 10), 0.5)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    out = ClassicalBaseline(iters=30)(noisy, torch.tensor([0.1]))
    assert out.mean.shape == out.var.shape == (1, 1, 12, 10)
    assert float((out.mean - clean).square().mean()) < float((noisy - clean).square().mean())


def test_eval_shipped_model_column_only_on_its_training_noise(tmp_path, capsys):
    rows = run(["--pretrained", "gbp_denoiser_sigma25", "--limit", "1", "--no-classical", "--png", "0",
                "--out", str(tmp_path), "--conditions", "set12:gaussian:25,bsd68:saltpepper:20,set12:gaussian:50"])
    assert "model" not in rows[0]["psnr"]
    assert rows[0]["psnr"]["gbp_denoiser_sigma25"] > rows[0]["psnr"]["median3"] + 2
    assert "gbp_denoiser_sigma25" in rows[0]["coverage"]
    assert all("gbp_denoiser_sigma25" not in r["psnr"] for r in rows[1:])  # other noise than it was trained on
    table = capsys.readouterr().out
    sp_row = next(line for line in table.splitlines() if line.startswith("bsd68 s&p 20%"))
    assert sp_row.rstrip().endswith("-")  # no cell for a Gaussian model


def test_eval_blind_twin_column_for_models_of_many_noise_levels(tmp_path):
    rows = run(["--pretrained", "gbp_denoiser_gaussian", "--pretrained", "gbp_denoiser_sigma25", "--blind",
                "--limit", "1", "--no-classical", "--png", "0", "--out", str(tmp_path),
                "--conditions", "set12:gaussian:25"])
    psnr = rows[0]["psnr"]
    assert "gbp_denoiser_gaussian/blind" in psnr and "gbp_denoiser_sigma25/blind" not in psnr
    assert abs(psnr["gbp_denoiser_gaussian/blind"] - psnr["gbp_denoiser_gaussian"]) < 0.3
    assert psnr["gbp_denoiser_gaussian/blind"] > psnr["median3"] + 2


def test_eval_self_ensemble_column_averages_the_eight_orientations(tmp_path):
    from gbp_torch.pretrained import load
    from gbp_torch.tasks.denoise.ensemble import SelfEnsemble

    baseline = PretrainedBaseline("gbp_denoiser_sigma25", self_ensemble=True)
    noisy = torch.rand(1, 1, 20, 24, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([25 / 255])
    with torch.no_grad():
        torch.testing.assert_close(baseline(noisy, sigma).mean,
                                   SelfEnsemble(load("gbp_denoiser_sigma25"))(noisy, sigma).mean)
    rows = run(["--pretrained", "gbp_denoiser_sigma25", "--self-ensemble", "--limit", "1", "--no-classical",
                "--png", "0", "--out", str(tmp_path), "--conditions", "set12:gaussian:25"])
    psnr = rows[0]["psnr"]
    assert abs(psnr["gbp_denoiser_sigma25/x8"] - psnr["gbp_denoiser_sigma25"]) < 0.5
    assert psnr["gbp_denoiser_sigma25/x8"] > psnr["median3"] + 2

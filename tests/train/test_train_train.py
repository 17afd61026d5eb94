import json
import math
import os
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from train_helpers import CONF_DIR, REPO, TINY, compose_train_cfg

from train.denoise.lit_module import DenoiseLitModule
from train.train import train


def test_fast_dev_run_with_the_real_config(tmp_path):
    metrics = train(compose_train_cfg(tmp_path, "debug=fast_dev_run", "logger=none", "test=true"))
    assert metrics["global_step"] == 1
    assert 5 < metrics["test/bsd68/psnr"] < 40 and 5 < metrics["test/set12/psnr"] < 40
    assert math.isfinite(metrics["train/loss"]) and 0 < metrics["val/ssim"] < 1
    assert 5 < metrics["val/psnr"] < 40
    assert json.loads((tmp_path / "metrics.json").read_text())["global_step"] == 1


@pytest.mark.parametrize("overrides", [
    ["data=denoise_blind"], ["data=denoise_saltpepper"], ["experiment=cnn_sigma25"], ["debug=overfit"],
    ["experiment=gbp_finetune", "data=denoise_blind", "model.net.sigma_input=true", "init_weights=x.ckpt"],
    ["experiment=gbp_context", "init_weights=x.ckpt"],
    ["model.scheduler.name=step", "model.loss=l1"], ["trainer=ddp"], ["trainer=gpu"], ["logger=wandb"],
])
def test_config_groups_compose_and_build(tmp_path, overrides):
    cfg = compose_train_cfg(tmp_path, *overrides)
    dm = instantiate(cfg.data)
    model = instantiate(cfg.model, _recursive_=False)
    assert isinstance(model, DenoiseLitModule) and dm.noise.kind in ("gaussian", "blind", "saltpepper")
    if overrides == ["data=denoise_saltpepper"]:
        assert dm.noise.kind == "saltpepper" and dm.noise.rate == 0.2
    if overrides[0] == "experiment=gbp_context":
        assert dm.noise.kind == "blind" and model.net.factors.context is not None
    if overrides == ["trainer=ddp"]:
        assert cfg.trainer.devices == 2 and cfg.trainer.strategy.process_group_backend == "gloo"


def test_gbp_context_recipe_builds_the_shipped_gaussian_architecture():
    """experiment=gbp_context (untouched by the tests' tiny overrides) = the MANIFEST's kwargs."""
    from hydra import compose, initialize_config_dir

    from gbp_torch.pretrained import manifest

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=gbp_context", "init_weights=x.pt"])
    shipped = manifest()["gbp_denoiser_gaussian"]["kwargs"]
    keys = ("width", "depth", "iters", "sigma_input", "context_width", "context_depth")
    assert {k: cfg.model.net[k] for k in keys} == {k: shipped[k] for k in keys}
    assert cfg.trainer.precision == "bf16-mixed" and cfg.data.noise.kind == "blind"


def _weights(ckpt):
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_resume_from_checkpoint_continues_exactly(tmp_path):
    """2 steps + resume to 4 steps == 4 steps straight (fixed patches; LR halves every step)."""
    common = ["logger=csv", "data.fixed_patches=true", "model.scheduler.name=step",
              "model.scheduler.step_size=1", "model.scheduler.gamma=0.5"]
    straight = train(compose_train_cfg(tmp_path / "a", *common, "trainer.max_steps=4"))
    first = train(compose_train_cfg(tmp_path / "b", *common, "trainer.max_steps=2"))
    assert first["global_step"] == 2
    w_first = _weights(first["last_ckpt"])
    resumed = train(compose_train_cfg(tmp_path / "c", *common, "trainer.max_steps=4",
                                      f"ckpt_path={first['last_ckpt']}"))
    assert resumed["global_step"] == 4
    w_straight, w_resumed = _weights(straight["last_ckpt"]), _weights(resumed["last_ckpt"])
    assert not torch.equal(w_first["net.body.0.weight"], w_resumed["net.body.0.weight"])
    for k in w_straight:
        torch.testing.assert_close(w_resumed[k], w_straight[k], rtol=1e-5, atol=1e-7)
    assert resumed["val/psnr"] == pytest.approx(straight["val/psnr"], abs=1e-4)
    assert list((tmp_path / "a" / "csv").rglob("metrics.csv"))  # the csv logger wrote


def test_a_run_stopped_in_mid_epoch_keeps_its_last_steps(tmp_path):
    metrics = train(compose_train_cfg(tmp_path, "logger=none", "trainer.max_steps=3"))  # 2 steps per epoch
    assert torch.load(metrics["last_ckpt"], map_location="cpu", weights_only=False)["global_step"] == 3


def test_wandb_logger_offline_logs_panels_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # any online attempt fails at once
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    import wandb

    metrics = train(compose_train_cfg(tmp_path, "logger=wandb", "trainer.max_steps=2",
                                      "model.net.predict_var=true", "model.loss=nll"))
    assert 0 <= metrics["val/coverage95"] <= 1
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    panels = list(runs[0].rglob("val/panel_0*.png"))
    assert panels, "the validation panel was not logged"
    assert wandb.run is None  # finished


def test_missing_data_root_fails_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="denoise/train400"):
        train(compose_train_cfg(tmp_path, "debug=fast_dev_run", "logger=none", f"data.root={tmp_path}"))


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "train.train", "trainer=ddp", "debug=fast_dev_run", "logger=none",
           *TINY,
           f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "MEMBER: 2/2" in proc.stdout + proc.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["global_step"] == 1 and math.isfinite(metrics["val/psnr"])

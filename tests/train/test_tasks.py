"""One house for several tasks: train.eval dispatches by task, experiments choose theirs, and
train.train refuses data or a model of another task than the config's."""

import importlib

import pytest
import torch
from train_helpers import CONF_DIR, compose_train_cfg

from train import eval as eval_front
from train.checkpoint import checkpoint_task
from train.denoise.lit_module import DenoiseLitModule
from train.train import train


def test_eval_dispatch_picks_the_denoise_evaluator():
    assert eval_front.evaluator("denoise") is importlib.import_module("train.denoise.evaluate")
    assert eval_front.resolve_task(["--limit", "1"]) == ("denoise", ["--limit", "1"])  # the default
    assert eval_front.resolve_task(["--task", "denoise", "--png", "0"]) == ("denoise", ["--png", "0"])
    assert eval_front.resolve_task(["--task=denoise", "task=denoise"]) == ("denoise", ["task=denoise"])


def test_eval_unknown_task_names_the_known_ones(capsys):
    with pytest.raises(ValueError, match=r"unknown task 'segment'; known tasks: denoise, flow, stereo"):
        eval_front.run(["--task", "segment", "--limit", "1"])
    with pytest.raises(SystemExit, match="known tasks: denoise, flow, stereo"):
        eval_front.main(["--task=segment"])


@pytest.mark.parametrize("task", ["denoise", "stereo", "flow"])
def test_eval_without_its_data_is_one_line_naming_the_folder(tmp_path, monkeypatch, task):
    """flow and denoise used to end in a FileNotFoundError traceback (stereo already caught it)."""
    monkeypatch.setenv("GBP_DATA_ROOT", str(tmp_path))
    argv = ["--task", task] + (["--no-classical", "--limit", "1"] if task == "denoise" else [])
    with pytest.raises(SystemExit, match=rf"train.eval --task {task}: error: dataset folder .* is missing or empty"):
        eval_front.main(argv)


def test_eval_task_from_the_checkpoint(trained_ckpt, tmp_path):
    assert checkpoint_task(trained_ckpt) == "denoise"
    assert eval_front.resolve_task([f"ckpt={trained_ckpt}"])[0] == "denoise"
    raw = torch.load(trained_ckpt, map_location="cpu", weights_only=True)
    old = dict(raw)
    del old["task"]  # as written before tasks had names: still a denoiser, and still loads
    torch.save(old, tmp_path / "old.ckpt")
    assert checkpoint_task(tmp_path / "old.ckpt") is None
    assert eval_front.resolve_task([f"ckpt={tmp_path / 'old.ckpt'}"])[0] == "denoise"
    lit = DenoiseLitModule.load_from_checkpoint(tmp_path / "old.ckpt", map_location="cpu")
    torch.testing.assert_close(lit.state_dict(), raw["state_dict"])
    torch.save({**raw, "task": "segment"}, tmp_path / "segment.ckpt")
    with pytest.raises(ValueError, match="unknown task 'segment'; known tasks: denoise, flow, stereo"):
        eval_front.run([f"ckpt={tmp_path / 'segment.ckpt'}"])


@pytest.fixture()
def toy_conf(tmp_path):
    """A second task's configs on Hydra's search path: task/toy.yaml and an experiment that selects it."""
    (tmp_path / "task").mkdir()
    (tmp_path / "experiment").mkdir()
    (tmp_path / "task" / "toy.yaml").write_text(
        "# @package _global_\ntask: toy\noptimized_metric: val/epe\noptimized_mode: min\n")
    (tmp_path / "experiment" / "toy_recipe.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /task: toy\ntags: [toy]\n")
    return tmp_path


#: what each task's checkpoints keep: (monitored metric, mode)
TASK_METRICS = {"denoise": ("val/psnr", "max"), "stereo": ("val/bad1", "min"), "flow": ("val/epe", "min")}


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_shipped_experiments_select_their_task(tmp_path, experiment):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):  # as shipped: no tiny overrides
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", "init_weights=x.pt",
                                                      f"paths.output_dir={tmp_path}"])
    task = next((t for t in ("stereo", "flow") if experiment.startswith(t)), "denoise")  # named by task
    assert cfg.task == task
    assert (cfg.callbacks.model_checkpoint.monitor, cfg.callbacks.model_checkpoint.mode) == TASK_METRICS[task]
    assert cfg.data._target_.startswith(f"train.{task}.") and cfg.model._target_.startswith(f"train.{task}.")


def test_an_experiment_selects_its_task_and_its_metric(tmp_path, toy_conf):
    cfg = compose_train_cfg(tmp_path, "experiment=toy_recipe", f"hydra.searchpath=[file://{toy_conf}]")
    assert cfg.task == "toy" and cfg.tags == ["toy"]
    ckpt = cfg.callbacks.model_checkpoint
    assert (ckpt.monitor, ckpt.mode, ckpt.filename) == ("val/epe", "min", "epoch{epoch:03d}-{val/epe:.3f}")
    # the default data and model are the denoiser's: train refuses to mix tasks, before any training
    with pytest.raises(ValueError, match="config task is 'toy', but DenoiseDataModule is for task 'denoise'"):
        train(cfg)

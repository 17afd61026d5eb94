"""train.precision: bf16 falls back to float32 on CPUs without native bfloat16, and only there."""

import logging

import pytest
import yaml
from train_helpers import RecordPrecision, compose_train_cfg

import train.precision as precision_mod
from train.precision import resolve_precision
from train.train import train


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true", "32-true", "16-mixed", 32])
@pytest.mark.parametrize("accelerator", ["cpu", "gpu", "cuda"])
def test_resolve_precision_changes_only_emulated_bf16_on_cpu(monkeypatch, caplog, native, precision, accelerator):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level(logging.WARNING, logger="train.precision"):
        got = resolve_precision(precision, accelerator)
    fallback = str(precision).startswith("bf16") and accelerator == "cpu" and not native
    assert got == ("32-true" if fallback else precision)
    assert ("no native bfloat16" in caplog.text) == fallback


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_accelerator_falls_back_only_without_cuda(monkeypatch, cuda):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(precision_mod.torch.cuda, "is_available", lambda: cuda)
    assert resolve_precision("bf16-mixed", "auto") == ("bf16-mixed" if cuda else "32-true")


@pytest.mark.parametrize("native", [False, True])
def test_train_runs_and_logs_the_resolved_precision(tmp_path, monkeypatch, native):
    monkeypatch.setattr(precision_mod, "cpu_has_native_bf16", lambda: native)
    RecordPrecision.seen.clear()
    cfg = compose_train_cfg(tmp_path, "trainer.max_steps=1", "logger=csv", "trainer.precision=bf16-mixed",
                            "+callbacks.record._target_=train_helpers.RecordPrecision")
    assert train(cfg)["global_step"] == 1
    expected = "bf16-mixed" if native else "32-true"
    assert RecordPrecision.seen == [expected]
    (hparams,) = tmp_path.glob("csv/version_*/hparams.yaml")
    assert yaml.safe_load(hparams.read_text())["trainer"]["precision"] == expected

"""Train a model of any task: ``train(cfg)`` plus the Hydra entry point.

``cfg.data`` (a LightningDataModule) and ``cfg.model`` (a LightningModule holding its ``net``) are
instantiated from their ``_target_``; an experiment config picks the task (conf/task/), its data and
model. Nothing here knows a task: each lives in its own package (train/denoise/, ...).

    python -m train.train                                  # conf/train.yaml defaults (denoise: CNN, sigma 25, CPU)
    python -m train.train experiment=cnn_sigma25           # a recipe: task, data, model, trainer settings
    python -m train.train debug=fast_dev_run               # one batch of train/val, no checkpoints
    python -m train.train data=denoise_blind trainer.max_epochs=100 logger=wandb
    python -m train.train ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt   # resume exactly
    python -m train.train model=gbp init_weights=checkpoints/gbp_denoiser_sigma25.pt  # fine-tune
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import lightning.pytorch as L
from omegaconf import DictConfig, OmegaConf

from train.init_weights import load_init_sources
from train.precision import resolve_precision

log = logging.getLogger(__name__)


def _instantiate_all(group: DictConfig | None) -> list:
    """Instantiate every entry with a ``_target_`` of a config group like ``callbacks`` or ``logger``."""
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if isinstance(c, DictConfig) and "_target_" in c]


def _save_final_last(trainer: L.Trainer) -> None:
    """Write last.ckpt once more after fitting: ModelCheckpoint writes it after validation, so a run that
    max_steps stops in mid-epoch would otherwise lose its last steps. Lightning's saves are atomic."""
    cb = trainer.checkpoint_callback
    if cb is None or not cb.save_last or not cb.dirpath or trainer.fast_dev_run:
        return
    path = Path(cb.dirpath) / f"{cb.CHECKPOINT_NAME_LAST}{cb.FILE_EXTENSION}"
    trainer.save_checkpoint(path)
    cb.last_model_path = str(path)


def _check_task(cfg: DictConfig, *parts: object) -> None:
    """Every part that names its task (a ``task`` attribute) must be for the config's ``task``."""
    task = cfg.get("task")
    for part in parts:
        if task and getattr(part, "task", task) != task:
            raise ValueError(f"config task is {task!r}, but {type(part).__name__} is for task {part.task!r}: "
                             "choose data and model of one task (an experiment config sets all three)")


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Fit (and optionally test) the configured model; returns the final metrics
    (``trainer.callback_metrics`` as floats, plus ``global_step`` and ``best_ckpt``/``last_ckpt`` paths)."""
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    datamodule = hydra.utils.instantiate(cfg.data)
    model = hydra.utils.instantiate(cfg.model, _recursive_=False)
    _check_task(cfg, datamodule, model)
    if cfg.get("init_weights") and not cfg.get("ckpt_path"):
        load_init_sources(model.net, cfg.init_weights, cfg.get("init_weights_module"))
    callbacks = _instantiate_all(cfg.get("callbacks"))
    loggers = _instantiate_all(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, L.callbacks.LearningRateMonitor)]
    precision = resolve_precision(cfg.trainer.get("precision", "32-true"), cfg.trainer.get("accelerator", "auto"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                                 precision=precision)
    hparams = OmegaConf.to_container(cfg, resolve=True)
    hparams["trainer"]["precision"] = precision  # what runs, which resolve_precision may have changed
    for lg in loggers:
        lg.log_hyperparams(hparams)

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        _save_final_last(trainer)
        metrics: dict[str, float | str] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        ckpt_cb = trainer.checkpoint_callback
        best = ckpt_cb.best_model_path if ckpt_cb is not None else ""
        last = (ckpt_cb.last_model_path or "") if ckpt_cb is not None else ""
        if cfg.get("test"):
            trainer.test(model, datamodule=datamodule, ckpt_path=best or None)
            metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
        metrics.update(global_step=trainer.global_step, best_ckpt=best, last_ckpt=last)
    finally:
        if any(type(lg).__name__ == "WandbLogger" for lg in loggers):
            import wandb

            wandb.finish()
    if trainer.is_global_zero:
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except FileNotFoundError as e:  # a dataset or weights file that is not there: one line, not a traceback
        sys.exit(f"train.train: error: {e}")
    log.info("final metrics: %s", metrics)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return float(value) if isinstance(value, float) else None


if __name__ == "__main__":
    main()

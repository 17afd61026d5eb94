"""Reading Lightning checkpoints (.ckpt) of any task: the task that wrote one, and the
LightningModule to evaluate, rebuilt from the checkpoint or from a config."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as L
import torch
from omegaconf import DictConfig


def checkpoint_task(ckpt: str | Path) -> str | None:
    """The task recorded in ``ckpt`` (``checkpoint["task"]``, see :class:`train.lit_base.TaskLitModule`),
    or its hyperparameters' ``task``; None for checkpoints that record none (written before tasks had names)."""
    raw = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    return raw.get("task") or (raw.get("hyper_parameters") or {}).get("task")


def overrides_model(overrides: Sequence[str]) -> bool:
    """True if a Hydra override changes the model config (``model=cnn``, ``model.net.depth=3``)."""
    return any(o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == "model" for o in overrides)


def load_lit_module(lit_cls: type[L.LightningModule], cfg: DictConfig, ckpt: str | None = None,
                    rebuild: bool = False, device: str = "cpu") -> L.LightningModule:
    """The LightningModule to evaluate, in eval mode on ``device``.

    With a checkpoint and not ``rebuild``, ``lit_cls.load_from_checkpoint`` rebuilds it from the checkpoint's
    hyperparameters; otherwise it is built from ``cfg.model`` and gets the checkpoint's weights if given."""
    from hydra.utils import instantiate

    if ckpt and not rebuild:
        lit = lit_cls.load_from_checkpoint(ckpt, map_location=device)
    else:
        lit = instantiate(cfg.model, _recursive_=False)
        if ckpt:
            lit.load_state_dict(torch.load(ckpt, map_location=device, weights_only=True)["state_dict"])
    return lit.to(device).eval()

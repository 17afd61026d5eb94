"""What every task's LightningModule shares: the network from a module or its Hydra config, the
optimizer and learning-rate schedule from its hyperparameters, and the task's name in each checkpoint
(``checkpoint["task"]``, which ``train.eval`` dispatches on)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

SCHEDULERS = ("cosine", "step", "none")


def plain(cfg: Any) -> Any:
    """An OmegaConf node as plain dicts/lists (checkpoints must load with weights_only=True)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover
        return cfg
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return dict(cfg) if isinstance(cfg, Mapping) else cfg


class TaskLitModule(L.LightningModule):
    """Base of the tasks' LightningModules. A subclass sets ``task`` and calls :meth:`build` in its
    ``__init__`` with its network and hyperparameters (saved with ``save_hyperparameters``).

    Hyperparameters read here: ``optimizer`` (Hydra config, called with ``params=``; default AdamW lr 1e-3)
    and ``scheduler``: ``{"name": "cosine", "min_lr": ...}`` (per step, over the whole run),
    ``{"name": "step", "step_size": steps, "gamma": ...}`` or None / ``{"name": "none"}``.
    """

    #: the task's name (a key of ``train.eval.TASKS``), written into every checkpoint
    task: str = ""

    def build(self, net: nn.Module | Mapping, optimizer: Mapping | None, scheduler: Mapping | None,
              **hparams: Any) -> None:
        """Set ``self.net`` (instantiated here from a config with ``_target_``, which is then saved so that
        ``load_from_checkpoint`` rebuilds the model alone) and save the hyperparameters."""
        hp = {"optimizer": plain(optimizer) or {"_target_": "torch.optim.AdamW", "lr": 1e-3},
              "scheduler": plain(scheduler), **hparams}
        if isinstance(net, nn.Module):
            self.net = net
        else:
            from hydra.utils import instantiate

            hp["net"] = plain(net)
            self.net = instantiate(hp["net"])
        self.save_hyperparameters(hp)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["task"] = self.task

    #: updates skipped by :meth:`on_before_optimizer_step` in this process (also logged as train/skipped_steps)
    skipped_steps: int = 0

    def on_before_optimizer_step(self, optimizer) -> None:
        """Skip an update whose gradients are not finite: one batch's NaN or inf would otherwise reach every
        weight and spoil the rest of a long run. Its gradients are dropped (the optimizer leaves the weights
        alone), a warning names the step, and ``train/skipped_steps`` counts them."""
        params = [p for p in self.parameters() if p.grad is not None]
        if not params or bool(torch.stack([torch.isfinite(p.grad).all() for p in params]).all()):
            return
        for p in params:
            p.grad = None
        self.skipped_steps += 1
        rank_zero_warn(f"step {self.global_step}: non-finite gradients, update skipped "
                       f"({self.skipped_steps} so far)")
        self.log("train/skipped_steps", float(self.skipped_steps))

    def configure_optimizers(self) -> dict:
        from hydra.utils import instantiate

        opt = instantiate(self.hparams.optimizer, params=self.parameters())
        sched = self.hparams.scheduler or {"name": "none"}
        name = sched.get("name", "none")
        if name == "none":
            return {"optimizer": opt}
        if name == "cosine":
            est = self.trainer.estimated_stepping_batches
            if not math.isfinite(est):
                raise ValueError("the cosine schedule needs trainer.max_steps or max_epochs")
            total = max(1, int(est))
            s = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total, eta_min=sched.get("min_lr", 0.0))
        elif name == "step":
            s = torch.optim.lr_scheduler.StepLR(opt, step_size=sched["step_size"], gamma=sched.get("gamma", 0.5))
        else:
            raise ValueError(f"scheduler name must be one of {SCHEDULERS}, got {name!r}")
        return {"optimizer": opt, "lr_scheduler": {"scheduler": s, "interval": "step"}}

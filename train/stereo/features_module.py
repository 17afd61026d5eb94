"""LightningModule that trains :class:`~gbp_torch.tasks.stereo.features.MatchingFeatures` on synthetic pairs.

The loss is :func:`~gbp_torch.tasks.stereo.features.matching_loss` (cross entropy over disparities of
the raw feature cost, with a learned temperature). Validation runs the whole hand-set stereo model
with these features in its cost (:class:`~gbp_torch.tasks.stereo.handset.HandsetStereo`), so the
checkpoint kept is the one that helps the pipeline most, by bad > 1 px on the synthetic validation pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gbp_torch.tasks.stereo.features import matching_loss
from gbp_torch.tasks.stereo.handset import HandsetStereo

from ..lit_base import TaskLitModule
from .lit_module import batch_max_disp, log_validation


class MatchingLitModule(TaskLitModule):
    """Train matching features; validate the hand-set model that uses them.

    Args:
        net: a :class:`~gbp_torch.tasks.stereo.features.MatchingFeatures` or its Hydra config.
        optimizer, scheduler: see :class:`~train.lit_base.TaskLitModule`.
        temperature: initial softmax temperature of the loss (cost units; learned).
    """

    task = "stereo"

    def __init__(self, net: nn.Module | Mapping, optimizer: Mapping | None = None, scheduler: Mapping | None = None,
                 temperature: float = 0.05):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        self.build(net, optimizer, scheduler, temperature=temperature)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    def _loss(self, batch: dict) -> Tensor:
        fl, fr = self.net(batch["left"]), self.net(batch["right"])
        return matching_loss(fl, fr, batch["gt"], batch["nonocc"], batch_max_disp(batch), self.log_temperature.exp())

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["left"].shape[0])
        self.log("train/temperature", self.log_temperature.exp(), batch_size=batch["left"].shape[0])
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = HandsetStereo(features=self.net)(batch["left"], batch["right"], batch_max_disp(batch))
        log_validation(self, out, batch, self._loss(batch))

"""LightningModule that trains a stereo model ``net(left, right, max_disp) -> StereoOutput`` end to end
(e.g. :class:`gbp_torch.tasks.stereo.learned.LearnedStereo`, whose last GBP solve has the implicit backward)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gbp_torch.tasks.stereo.metrics import bad_pixels, pair_measures
from gbp_torch.tasks.stereo.output import StereoOutput

from ..lit_base import TaskLitModule


def batch_max_disp(batch: dict) -> int:
    """The disparity range of a batch (one value for the whole batch)."""
    m = batch["max_disp"]
    return int(m[0]) if isinstance(m, Tensor) else int(m)


def log_validation(module: TaskLitModule, out: StereoOutput, batch: dict, loss: Tensor) -> None:
    """Log ``val/``: bad > 1 and > 2 px, MAE, coverage (with a variance), bad > 1 px near depth edges and
    in interiors (where synthetic and real scenes differ most, see docs/stereo.md) and ``loss``."""
    bs = batch["left"].shape[0]
    metrics = pair_measures(out.disparity, batch["gt"], batch["nonocc"], out.var)
    if "coverage" in metrics:
        metrics["coverage95"] = metrics.pop("coverage")
    metrics["loss"] = loss
    for k, v in metrics.items():
        v = v.reshape(-1)
        kept = v[~v.isnan()]  # an item without edge pixels has no edge measure
        if kept.numel():
            n = kept.numel() if v.numel() > 1 else bs
            module.log(f"val/{k}", kept.mean(), prog_bar=k == "bad1", batch_size=n, sync_dist=True)


class StereoLitModule(TaskLitModule):
    """Train/validate a stereo model on batches of :class:`~train.stereo.datamodule.StereoDataModule`.

    Args:
        net: the model, or its Hydra config (saved in checkpoints so that ``load_from_checkpoint`` rebuilds it).
        optimizer, scheduler: see :class:`~train.lit_base.TaskLitModule`.
        beta: the loss is the smooth L1 (Huber) of the disparity error with this transition (px), averaged
            over non-occluded pixels.
        log_images: validation pairs logged as panels (left | disparity | |error| | std) to wandb.
    """

    task = "stereo"

    def __init__(self, net: nn.Module | Mapping, optimizer: Mapping | None = None, scheduler: Mapping | None = None,
                 beta: float = 0.5, log_images: int = 2):
        super().__init__()
        self.build(net, optimizer, scheduler, beta=beta, log_images=log_images)

    def forward(self, left: Tensor, right: Tensor, max_disp: int) -> StereoOutput:
        return self.net(left, right, max_disp)

    def _loss(self, out: StereoOutput, batch: dict) -> Tensor:
        mask = batch["nonocc"] & (batch["gt"] >= 0)
        err = F.smooth_l1_loss(out.disparity, batch["gt"], beta=self.hparams.beta, reduction="none")
        return (err * mask).sum() / mask.sum().clamp_min(1)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self(batch["left"], batch["right"], batch_max_disp(batch))
        loss = self._loss(out, batch)
        bs = batch["left"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/bad1", bad_pixels(out.disparity.detach(), batch["gt"], batch["nonocc"]).mean(), batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch["left"], batch["right"], batch_max_disp(batch))
        log_validation(self, out, batch, self._loss(out, batch))
        if batch_idx < self.hparams.log_images:
            self._log_panel(batch, out, batch_idx)

    def _log_panel(self, batch: dict, out: StereoOutput, batch_idx: int) -> None:
        """Log left | disparity | |error| | std (each scaled to [0, 1]) of the first pair to wandb."""
        from lightning.pytorch.loggers import WandbLogger

        wandb_loggers = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers or self.global_rank != 0:
            return
        md = float(batch_max_disp(batch))
        disp, gt = out.disparity[0, 0].detach().float(), batch["gt"][0, 0].float()
        tiles = [batch["left"][0].float().mean(0), disp / md, ((disp - gt).abs() / 4.0) * batch["nonocc"][0, 0]]
        if out.var is not None:
            std = out.var[0, 0].clamp_min(0).sqrt()
            tiles.append(std / std.max().clamp_min(1e-12))
        panel = torch.cat([t.clamp(0, 1).cpu() for t in tiles], dim=1)
        caption = f"{batch['name'][0]}: left | disparity | |error| (4 px = white) | std"
        for lg in wandb_loggers:
            lg.log_image(key=f"val/panel_{batch_idx}", images=[panel.numpy()], caption=[caption])

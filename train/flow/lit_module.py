"""LightningModule that trains a flow model ``net(frame1, frame2) -> FlowOutput`` end to end
(e.g. :class:`gbp_torch.tasks.flow.learned.LearnedFlow`, whose last GBP solve has the implicit backward)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from gbp_torch.tasks.flow.metrics import epe, std_coverage
from gbp_torch.tasks.flow.output import FlowOutput
from gbp_torch.vision import upsample_flow

from ..lit_base import TaskLitModule


class FlowLitModule(TaskLitModule):
    """Train/validate a flow model on batches of :class:`~train.flow.datamodule.FlowDataModule`.

    Args:
        net: the model, or its Hydra config (saved in checkpoints so that ``load_from_checkpoint`` rebuilds it).
        optimizer, scheduler: see :class:`~train.lit_base.TaskLitModule`.
        eps: the loss is the mean of ``sqrt(|flow - gt|^2 + eps^2)`` (a smoothed end-point error) over valid,
            non-occluded pixels.
        log_images: validation pairs logged as panels (frame 1 | flow colour | |error| | std) to wandb.
        sequence_gamma: > 0: when the net has ``forward_sequence`` (e.g. LearnedFlow), train on the flow after
            every warp (upsampled to full resolution), weighted ``gamma^(n - 1 - i)`` and normalised, so the
            factors of every pyramid level learn; 0: the final flow only.
    """

    task = "flow"

    def __init__(self, net: nn.Module | Mapping, optimizer: Mapping | None = None, scheduler: Mapping | None = None,
                 eps: float = 0.01, log_images: int = 2, sequence_gamma: float = 0.0):
        super().__init__()
        self.build(net, optimizer, scheduler, eps=eps, log_images=log_images, sequence_gamma=sequence_gamma)

    def forward(self, frame1: Tensor, frame2: Tensor) -> FlowOutput:
        return self.net(frame1, frame2)

    def _epe_loss(self, flow: Tensor, batch: dict) -> Tensor:
        valid = batch["valid"]
        err = (flow - batch["flow"]).square().sum(1)
        return ((err + self.hparams.eps ** 2).sqrt() * valid).sum() / valid.sum().clamp_min(1)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        gamma = self.hparams.get("sequence_gamma", 0.0)
        if gamma and hasattr(self.net, "forward_sequence"):
            out, seq = self.net.forward_sequence(batch["frame1"], batch["frame2"])
            size = tuple(batch["flow"].shape[-2:])
            weights = [gamma ** (len(seq) - 1 - i) for i in range(len(seq))]
            loss = sum(wt * self._epe_loss(upsample_flow(f, size) if f.shape[-2:] != size else f, batch)
                       for wt, f in zip(weights, seq)) / sum(weights)
        else:
            out = self(batch["frame1"], batch["frame2"])
            loss = self._epe_loss(out.flow, batch)
        bs = batch["frame1"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/epe", epe(out.flow.detach(), batch["flow"], batch["valid"]).mean(), batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch["frame1"], batch["frame2"])
        gt, valid, bs = batch["flow"], batch["valid"], batch["frame1"].shape[0]
        metrics = {"epe": epe(out.flow, gt, valid), "epe_all": epe(out.flow, gt),
                   "loss": self._epe_loss(out.flow, batch)}
        std = out.std
        if std is not None:
            metrics["coverage95"] = std_coverage(out.flow, std, gt, valid)
        for k, v in metrics.items():
            self.log(f"val/{k}", v.mean(), prog_bar=k == "epe", batch_size=bs, sync_dist=True)
        if batch_idx < self.hparams.log_images:
            self._log_panel(batch, out, batch_idx)

    def _log_panel(self, batch: dict, out: FlowOutput, batch_idx: int) -> None:
        """Log frame 1 | flow colour | |error| | std (RGB, side by side) of the first pair to wandb."""
        from lightning.pytorch.loggers import WandbLogger

        wandb_loggers = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers or self.global_rank != 0:
            return
        from torchvision.utils import flow_to_image

        flow = out.flow[0].detach().float().cpu()
        gt = batch["flow"][0].float().cpu()
        gray = batch["frame1"][0].float().cpu().mean(0).clamp(0, 1)
        colour = flow_to_image(torch.cat([flow[None], gt[None]])).float() / 255  # (2, 3, H, W), same scale
        err = ((flow - gt).square().sum(0).sqrt() / 2.0).clamp(0, 1) * batch["valid"][0].cpu()
        tiles = [gray.expand(3, -1, -1), colour[0], colour[1], err.expand(3, -1, -1)]
        std = out.std
        if std is not None:
            s = std[0].detach().float().cpu().square().sum(0).sqrt()
            tiles.append((s / s.max().clamp_min(1e-12)).expand(3, -1, -1))
        panel = torch.cat(tiles, dim=2).permute(1, 2, 0).numpy()
        caption = f"{batch['name'][0]}: frame 1 | flow | ground truth | |error| (2 px = white) | std"
        for lg in wandb_loggers:
            lg.log_image(key=f"val/panel_{batch_idx}", images=[panel], caption=[caption])

"""LightningModule that trains any denoiser ``net(noisy (B,1,H,W), sigma (B,) | None)`` returning
a tensor (B, 1, H, W) or an object with ``.mean`` and optional ``.var`` (B, 1, H, W)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gbp_torch.tasks.denoise.output import DenoiseOutput, as_denoise_output

from ..lit_base import TaskLitModule
from ..metrics import coverage, psnr, ssim

LOSSES = ("mse", "l1", "nll")


class DenoiseLitModule(TaskLitModule):
    """Train/validate/test a denoiser.

    Args:
        net: the denoiser, or its Hydra config (a mapping with ``_target_``). Pass the config to have
            it saved in checkpoints, so that ``load_from_checkpoint`` rebuilds the model alone.
        optimizer, scheduler: see :class:`~train.lit_base.TaskLitModule`.
        loss: ``mse``, ``l1`` (on the mean) or ``nll`` (Gaussian NLL, needs ``var``).
        pass_sigma: hand the noise std to the net (else None: blind).
        log_images: number of validation images logged as panels (noisy | denoised | clean | std)
            when a wandb logger is attached.
    """

    task = "denoise"

    def __init__(self, net: nn.Module | Mapping, optimizer: Mapping | None = None, scheduler: Mapping | None = None,
                 loss: str = "mse", pass_sigma: bool = True, log_images: int = 2):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.build(net, optimizer, scheduler, loss=loss, pass_sigma=pass_sigma, log_images=log_images)

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> DenoiseOutput:
        """noisy (B, 1, H, W), sigma (B,) -> DenoiseOutput with mean (and var) (B, 1, H, W)."""
        return as_denoise_output(self.net(noisy, sigma if self.hparams.pass_sigma else None))

    def _loss(self, out: DenoiseOutput, clean: Tensor) -> Tensor:
        if self.hparams.loss == "mse":
            return F.mse_loss(out.mean, clean)
        if self.hparams.loss == "l1":
            return F.l1_loss(out.mean, clean)
        if out.var is None:
            raise ValueError("loss 'nll' needs a denoiser that returns a variance")
        return F.gaussian_nll_loss(out.mean, clean, out.var, eps=1e-8)

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        out = self(batch["noisy"], batch["sigma"])
        loss = self._loss(out, batch["clean"])
        bs = batch["clean"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        self.log("train/psnr", psnr(out.mean.detach(), batch["clean"]).mean(), batch_size=bs)
        return loss

    def _eval_step(self, batch: dict, prefix: str) -> DenoiseOutput:
        out = self(batch["noisy"], batch["sigma"])
        clean, bs = batch["clean"], batch["clean"].shape[0]
        metrics = {"psnr": psnr(out.mean, clean), "ssim": ssim(out.mean, clean),
                   "psnr_noisy": psnr(batch["noisy"], clean), "loss": self._loss(out, clean)}
        if out.var is not None:
            metrics["coverage95"] = coverage(out.mean, out.var, clean)
        for k, v in metrics.items():
            self.log(f"{prefix}/{k}", v.mean(), prog_bar=k == "psnr", batch_size=bs, sync_dist=True,
                     add_dataloader_idx=False)
        return out

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self._eval_step(batch, "val")
        if batch_idx < self.hparams.log_images:
            self._log_panel(batch, out, batch_idx)

    def test_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch, f"test/{batch['set'][0]}")

    def _log_panel(self, batch: dict, out: DenoiseOutput, batch_idx: int) -> None:
        """Log noisy | denoised | clean (| std, scaled to its max) of the first image to wandb."""
        from lightning.pytorch.loggers import WandbLogger

        wandb_loggers = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        if not wandb_loggers or self.global_rank != 0:
            return
        tiles = [batch["noisy"][0, 0], out.mean[0, 0], batch["clean"][0, 0]]
        if out.var is not None:
            std = out.var[0, 0].clamp_min(0).sqrt()
            tiles.append(std / std.max().clamp_min(1e-12))
        panel = torch.cat([t.detach().float().clamp(0, 1).cpu() for t in tiles], dim=1)
        caption = f"{batch['name'][0]}: noisy | denoised | clean" + (" | std" if out.var is not None else "")
        for lg in wandb_loggers:
            lg.log_image(key=f"val/panel_{batch_idx}", images=[panel.numpy()], caption=[caption])

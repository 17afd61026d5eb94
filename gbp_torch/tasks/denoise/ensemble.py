"""Geometric self-ensemble: denoise the 8 flips / quarter turns of an image and average.

Test-time augmentation for any denoiser ``(noisy (B, 1, H, W), sigma) -> .mean[, .var]``.
It costs 8 forward passes. The ensemble's variance is the mean of the members'
variances: the members see the same noise, so their errors are strongly
correlated and averaging does not divide the variance by 8 (this is the
conservative choice; calibrate again if coverage matters).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .output import DenoiseOutput, as_denoise_output


def _transform(x: Tensor, k: int) -> Tensor:
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def _inverse(x: Tensor, k: int) -> Tensor:
    x = x.flip(-1) if k >= 4 else x
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


class SelfEnsemble(nn.Module):
    """Wrap ``denoiser``; forward(noisy (B, 1, H, W), sigma (B,) or None) -> DenoiseOutput (B, 1, H, W)."""

    def __init__(self, denoiser: nn.Module):
        super().__init__()
        self.denoiser = denoiser

    @property
    def sigma_input(self) -> bool:
        """Whether the wrapped denoiser is sigma-conditioned (see :class:`~.colour.ColourDenoiser`)."""
        return bool(getattr(self.denoiser, "sigma_input", False))

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> DenoiseOutput:
        means, variances = [], []
        for k in range(8):
            out = as_denoise_output(self.denoiser(_transform(noisy, k), sigma))
            means.append(_inverse(out.mean, k))
            if out.var is not None:
                variances.append(_inverse(out.var, k))
        var = torch.stack(variances).mean(0) if variances else None
        return DenoiseOutput(torch.stack(means).mean(0), var)

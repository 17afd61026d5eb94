"""A small DnCNN-like residual CNN denoiser (also the "GBP removed" ablation baseline)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ...nets import channels_last
from .features import checked_input, denoiser_input
from .output import DenoiseOutput


class DenoiseCNN(nn.Module):
    """Residual CNN: predicts the noise and subtracts it (Zhang et al., DnCNN, TIP 2017).

    ``depth`` 3x3 conv layers of ``width`` channels with ReLU (optional BatchNorm) in between.
    With the defaults (depth 8, width 48, no sigma input, no variance head) it has
    125,617 parameters (checked in tests/train/test_models.py).

    Args:
        depth: number of conv layers (>= 2).
        width: hidden channels.
        sigma_input: concatenate a constant sigma map as a second input channel
            (then ``sigma`` must be given to forward).
        predict_var: add an output channel for the log-variance of the estimate and return
            :class:`DenoiseOutput` with ``var``; otherwise return the mean tensor.
        batch_norm: BatchNorm after the hidden convs.
    """

    def __init__(self, depth: int = 8, width: int = 48, sigma_input: bool = False,
                 predict_var: bool = False, batch_norm: bool = False):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        self.sigma_input = sigma_input
        self.predict_var = predict_var
        cin, cout = 1 + int(sigma_input), 1 + int(predict_var)
        layers: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, cout, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> Tensor | DenoiseOutput:
        """noisy (B, 1, H, W) in [0, 1], sigma (B,) noise std on the same scale or None.

        Returns the mean (B, 1, H, W), or ``DenoiseOutput(mean, var)`` when ``predict_var``.
        """
        noisy, sigma = checked_input(noisy, sigma)
        features = denoiser_input(noisy, sigma, self.sigma_input, "DenoiseCNN").to(self.body[0].weight.dtype)
        out = channels_last(self.body, features).to(noisy.dtype)
        mean = noisy - out[:, :1]
        if not self.predict_var:
            return mean
        return DenoiseOutput(mean, torch.exp(out[:, 1:].clamp(-20.0, 5.0)))

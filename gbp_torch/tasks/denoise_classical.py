"""Hand-set (not learned) robust-smoothness GBP denoiser.

Energy over a gray image x given noisy y with noise std sigma:

    sum_i (x_i - y_i)^2 / (2 sigma^2) + sum_{ij} huber_k( sqrt(w / sigma^2) |x_i - x_j| )

solved by GBP on the pixel graph (robust smoothness by covariance scaling).
It is the baseline row the learned denoisers must beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..factors.pixel_grid import pixel_grid_graph
from ..robust import RobustKernel


@dataclass
class ClassicalDenoiser:
    """Parameters of the hand-set denoiser (tuned on Set12 cameraman at sigma 25).

    smoothness: edge weight relative to the data precision 1/sigma^2.
    huber_k: Huber threshold on the whitened pixel difference.
    """

    smoothness: float = 3.0
    huber_k: float = 0.3
    iters: int = 100
    damping: float = 0.3

    def __call__(self, noisy: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
        """Denoise (B, H, W) images in [0, 1] with noise std ``sigma`` (same scale).

        Returns the mean (B, H, W) and GBP's marginal variance (B, H, W).
        """
        if noisy.dim() != 3:
            raise ValueError(f"noisy must be (B, H, W), got {tuple(noisy.shape)}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        b, h, w = noisy.shape
        prec = 1.0 / sigma**2
        graph, pixels = pixel_grid_graph(
            noisy,
            torch.full_like(noisy, prec),
            noisy.new_full((b, h, w - 1), self.smoothness * prec),
            noisy.new_full((b, h - 1, w), self.smoothness * prec),
            robust_smooth=RobustKernel("huber", self.huber_k),
        )
        result = graph.solve(iters=self.iters, damping=self.damping)
        mean = result.mean(pixels).reshape(b, h, w)
        var = result.cov(pixels).reshape(b, h, w)
        return mean, var

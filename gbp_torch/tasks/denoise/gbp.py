"""Learned GBP denoiser: a CNN predicts a refined measurement and the factors; multigrid GBP solves.

``GBPDenoiser(use_gbp=False)`` is the ablation with GBP removed: the same
network (same parameters), its refined measurement as the output.
"""

from __future__ import annotations

from torch import Tensor, nn

from ...grid import GridConfig
from ...modules import MultigridGBP
from ...nets import GridFactorNet
from .features import checked_input, denoiser_input
from .noise_level import estimate_noise_sigma
from .output import DenoiseOutput

#: Noise level (0-1 scale) assumed when none is given to a fixed-level model, and the
#: reference level of the variance calibration.
REFERENCE_SIGMA = 25.0 / 255.0
#: Precision scale used when the noise level is not given (blind): 1 / REFERENCE_SIGMA^2.
BLIND_SCALE = REFERENCE_SIGMA**-2


class GBPDenoiser(nn.Module):
    """Noisy image -> factor CNN -> MultigridGBP -> mean and per-pixel variance.

    The CNN (:class:`~gbp_torch.nets.GridFactorNet`) predicts, per pixel, a
    residual correction of the noisy image (the refined measurement ``z``), the data
    precision ``a = s * (softplus(o) + floor)`` and the two edge weights
    ``w = s * (softplus(o) + floor)``, with ``s = 1 / sigma^2``. GBP then minimises
    ``sum a_i (x_i - z_i)^2 / 2 + sum w_ij (x_i - x_j)^2 / 2``.

    Without a noise level (blind), a sigma-conditioned model uses the estimate of
    :func:`~gbp_torch.tasks.denoise.noise_level.estimate_noise_sigma`; a model for one fixed
    level uses :data:`BLIND_SCALE`. A model built with ``noise_level`` always uses that
    level (a nominal one for non-Gaussian noise such as salt-and-pepper). GBP's variances
    are multiplied by ``var_scale * (sigma / REFERENCE_SIGMA) ** var_slope`` (a
    calibration fitted after training, see ``train/denoise/calibrate.py``).

    Args:
        width, depth: CNN size.
        context_width, context_depth: a half-resolution branch of the CNN that widens its
            receptive field (see :class:`~gbp_torch.nets.ContextBranch`; 0: none).
        iters, levels, backward: the GBP solve (FCG steps of multigrid; "implicit"
            keeps training memory independent of ``iters``).
        sigma_input: feed a constant sigma map to the CNN as a second channel.
        use_gbp: False gives the ablation (refined measurement as output, no variance).
        var_scale, var_slope: calibration of the predicted variances (power law in sigma).
        noise_level: fixed sigma (0-1 scale) used instead of the caller's, or None.
    """

    def __init__(self, width: int = 48, depth: int = 8, iters: int = 8, levels: int | None = None,
                 backward: str = "implicit", sigma_input: bool = False, use_gbp: bool = True,
                 var_scale: float = 1.0, var_slope: float = 0.0, noise_level: float | None = None,
                 context_width: int = 0, context_depth: int = 0):
        super().__init__()
        if not var_scale > 0:
            raise ValueError(f"var_scale must be > 0, got {var_scale}")
        if noise_level is not None and not noise_level > 0:
            raise ValueError(f"noise_level must be > 0 or None, got {noise_level}")
        self.sigma_input, self.use_gbp, self.var_scale = sigma_input, use_gbp, float(var_scale)
        self.var_slope, self.noise_level = float(var_slope), noise_level
        self.factors = GridFactorNet(in_channels=1 + int(sigma_input), width=width, depth=depth, refine=True,
                                     context_width=context_width, context_depth=context_depth)
        self.gbp = MultigridGBP(iters=iters, config=GridConfig(levels=levels), backward=backward)

    def forward(self, noisy: Tensor, sigma: Tensor | None = None) -> DenoiseOutput:
        """noisy (B, 1, H, W) in [0, 1] (uint8 / uint16: scaled); sigma (B,) noise std on the 0-1 scale, or None
        (blind)."""
        noisy, sigma = checked_input(noisy, sigma)
        if self.noise_level is not None:
            sigma = noisy.new_full(noisy.shape[:1], self.noise_level)
        elif sigma is None and self.sigma_input and noisy.dim() == 4:
            sigma = estimate_noise_sigma(noisy)
        feats = denoiser_input(noisy, sigma, self.sigma_input, "GBPDenoiser")
        scale = BLIND_SCALE if sigma is None else 1.0 / sigma.to(noisy).clamp_min(1e-3).square()
        f = self.factors(feats, noisy, data_scale=scale, smooth_scale=scale)
        del feats  # not needed by the solve: free it on big images
        if not self.use_gbp:
            return DenoiseOutput(f.z)
        res = self.gbp(f.z[:, 0], f.data_precision, (f.wh, f.wv))
        return DenoiseOutput(res.mean.unsqueeze(1), self.variance_factor(sigma, res.var) * res.var.unsqueeze(1))

    def variance_factor(self, sigma: Tensor | None, like: Tensor) -> Tensor | float:
        """The calibration factor of the variances: a float, or (B, 1, 1, 1) per image."""
        if sigma is None or self.var_slope == 0.0:
            return self.var_scale
        ratio = sigma.to(like).clamp_min(1e-3) / REFERENCE_SIGMA
        return (self.var_scale * ratio**self.var_slope).view(-1, 1, 1, 1)

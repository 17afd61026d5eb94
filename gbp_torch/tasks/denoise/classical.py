"""Hand-set (not learned) robust GBP denoiser: the baseline row the learned models must beat.

Energy over a gray image x (values in [0, 1]) given the noisy y:

    sum_i rho_data(sqrt(a) |x_i - y_i|) + sum_ij rho_smooth(sqrt(lam a) |x_i - x_j|),   a = 1 / sigma^2

with a Cauchy kernel on the smoothness terms and, for salt-and-pepper noise, a
Tukey kernel on the data terms (least squares otherwise), solved by multigrid
GBP inside IRLS outer iterations (salt-and-pepper starts from a 3x3 median).
The parameters ``(lam, k_smooth, k_data)`` were picked by small sweeps on
Train400 images (``benchmarks/denoise_classical.py --tune``), never on the
test sets; for another sigma the nearest tuned one (in log sigma) is used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from ...grid import MULTIGRID, GridRobust, solve
from ...robust import RobustKernel
from ...vision import median_filter

#: (noise kind, level: sigma on 0-255 or rate in %) -> (lam, k_smooth, k_data or None)
PARAMS = {
    ("gaussian", 15): (2.0, 1.0, None),
    ("gaussian", 25): (4.0, 1.0, None),
    ("gaussian", 50): (16.0, 0.5, None),
    ("saltpepper", 10): (0.125, 0.5, 5.0),
    ("saltpepper", 20): (0.25, 1.0, 5.0),
    ("saltpepper", 30): (0.5, 2.0, 3.0),
}
#: Data noise std (0-255 scale) assumed between the impulses of salt-and-pepper images.
SP_SIGMA = 10.0


def tuned_params(noise: str, level: float) -> tuple[float, float, float | None]:
    """The tuned parameters of the nearest level (log scale) for ``noise``."""
    levels = [lv for kind, lv in PARAMS if kind == noise]
    if not levels:
        raise ValueError(f"noise must be one of {sorted({k for k, _ in PARAMS})}, got {noise!r}")
    if not level > 0:
        raise ValueError(f"noise level must be positive, got {level}")
    nearest = min(levels, key=lambda lv: abs(math.log(lv / level)))
    return PARAMS[(noise, nearest)]


@dataclass
class ClassicalDenoiser:
    """Robust GBP denoiser with hand-set parameters.

    Args:
        noise: "gaussian" (call with its sigma) or "saltpepper" (give ``rate`` in %).
        rate: salt-and-pepper rate in % (noise="saltpepper").
        outer: IRLS reweightings; iters / tol: FCG steps and tolerance of each solve.
    """

    noise: str = "gaussian"
    rate: float = 20.0
    outer: int = 8
    iters: int = 30
    tol: float = 1e-4

    def __call__(self, noisy: Tensor, sigma: float | None = None) -> tuple[Tensor, Tensor]:
        """Denoise (B, H, W) images in [0, 1]; ``sigma`` is the Gaussian noise std on that
        scale (ignored for salt-and-pepper). Returns the mean and GBP's variance, (B, H, W)."""
        if noisy.dim() != 3:
            raise ValueError(f"noisy must be (B, H, W), got {tuple(noisy.shape)}")
        if self.noise == "gaussian":
            if sigma is None or not sigma > 0:
                raise ValueError(f"Gaussian denoising needs sigma > 0, got {sigma}")
            lam, k_smooth, k_data = tuned_params("gaussian", sigma * 255.0)
            x0 = None
        else:
            lam, k_smooth, k_data = tuned_params(self.noise, self.rate)
            sigma = SP_SIGMA / 255.0
            x0 = median_filter(noisy[:, None], 3)[:, 0]
        a = 1.0 / sigma**2
        robust = GridRobust(data=None if k_data is None else RobustKernel("tukey", k_data),
                            smooth=RobustKernel("cauchy", k_smooth), outer_iters=self.outer)
        res = solve(noisy, a, lam * a, iters=self.iters, tol=self.tol, x0=x0, robust=robust, config=MULTIGRID)
        return res.mean, res.var

"""The robust GBP solve of one stereo relinearisation: Tukey data, Cauchy smoothness, one IRLS step from x0."""

from __future__ import annotations

from torch import Tensor

from ...grid import solve
from ...grid.forward import GridResult
from ...grid.irls import data_residual, smooth_residuals
from ...modes import BackwardConfig
from ...robust import RobustKernel
from .factors import StereoFactors, mahalanobis_threshold

#: the training gradient: implicit, by a few multigrid FCG steps on the adjoint of the recorded (IRLS-weighted,
#: least-squares) system (the forward solve is itself a few steps, so tighter adjoints buy little)
TRAIN_BACKWARD = BackwardConfig("implicit", adjoint_iters=8, adjoint_tol=1e-5)


def weighted_solve(z: Tensor, a: Tensor, factors: StereoFactors, x0: Tensor, iters: int, grid,
                   backward=TRAIN_BACKWARD, offsets: tuple[Tensor, Tensor] | None = None) -> GridResult:
    """The robust GBP solve of one relinearisation (Tukey data, Cauchy smoothness, one IRLS step from x0)
    as a least-squares solve of the reweighted system, differentiable in ``a`` and the factors.

    Same result as ``solve(z, a, (wh, wv), x0=x0, robust=GridRobust(tukey, cauchy, outer_iters=1), offsets=...)``;
    z, a, x0 (B, H, W). ``offsets`` (ch (B, H, W-1), cv (B, H-1, W)), optional: each edge's expected
    disparity difference (:mod:`.slopes`), in the smoothness residuals and the solve (``grid.solve``'s offsets).
    Returns the GridResult.
    """
    data = RobustKernel("tukey", mahalanobis_threshold(a, factors.data_k_px))
    smooth = RobustKernel("cauchy", 1.0)  # thresholds passed per edge field below
    x = x0.detach().unsqueeze(1)
    a_w = a * data.weight(data_residual(a, x, z.unsqueeze(1)))
    c = None if offsets is None else tuple(o.unsqueeze(1) for o in offsets)
    rh, rv = smooth_residuals(factors.wh, factors.wv, x, c)
    wh = factors.wh * smooth.weight(rh, mahalanobis_threshold(factors.wh, factors.smooth_k_px))
    wv = factors.wv * smooth.weight(rv, mahalanobis_threshold(factors.wv, factors.smooth_k_px))
    return solve(z, a_w, (wh, wv), iters=iters, x0=x0.detach(), config=grid, validate=False, backward=backward,
                 offsets=offsets)

"""Calibrating the flow covariance: one global factor on GBP's marginal covariance, fitted on synthetic pairs.

Loopy GBP underestimates marginal variances and the hand-set data scale is only a guess of the noise,
so the raw covariance is scaled by ``s`` chosen such that ``|u - u_gt| < 1.96 sqrt(s var_u)`` (and the
same for v) holds for ``coverage`` (95 %) of the valid, non-occluded pixels of the fitting pairs. Fit it
on :func:`~.synthetic.synthetic_flow_pair` pairs, never on a benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from .output import FlowOutput


def variance_ratios(out: FlowOutput, gt: Tensor, valid: Tensor) -> Tensor:
    """``(err_c / std_c)^2`` of the u and v components on ``valid`` pixels, flattened.

    Args:
        out: a model output with ``cov`` (B, 2, 2, H, W).
        gt: (B, 2, H, W); valid: (B, H, W) bool.
    """
    if out.cov is None:
        raise ValueError("the model output has no covariance to calibrate")
    var = out.cov.diagonal(dim1=1, dim2=2).movedim(-1, 1).clamp_min(torch.finfo(gt.dtype).tiny)
    ratio = (out.flow - gt).square() / var  # (B, 2, H, W)
    return ratio.movedim(1, -1)[valid].flatten()


def fit_variance_scale(model: Callable[[Tensor, Tensor], FlowOutput],
                       pairs: Iterable[tuple[Tensor, Tensor, Tensor, Tensor]], coverage: float = 0.95,
                       z: float = 1.96) -> float:
    """The factor ``s`` for which ``coverage`` of the components satisfy ``|err| < z sqrt(s var)``.

    ``pairs`` yields ``(frame1, frame2, gt_flow (B, 2, H, W), valid (B, H, W))``; ``model`` must
    return uncalibrated covariances (var_scale = 1).
    """
    ratios = []
    with torch.no_grad():
        for frame1, frame2, gt, valid in pairs:
            ratios.append(variance_ratios(model(frame1, frame2), gt, valid).double())
    r = torch.cat(ratios)
    return float(torch.quantile(r[:16_000_000], coverage)) / z**2

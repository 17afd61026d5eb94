"""Optical flow: coarse-to-fine warping with D = 2 multigrid GBP, hand-set (and later learned) factors.

A model maps ``(frame1 (B, C, H, W), frame2 (B, C, H, W))`` with images in [0, 1] to a
:class:`~.output.FlowOutput` (flow, calibrated covariance, occlusions), with
``frame1(x) ~ frame2(x + flow(x))``.

- :mod:`.handset`: :class:`HandsetFlow` (coarse-to-fine warping, robust IRLS, multigrid D = 2 GBP).
- :mod:`.factors`: the factor source seam (:class:`FlowFactors`, :class:`HandsetFactors`); a learned
  source returns the same :class:`FlowFactors`.
- :mod:`.learned`: :class:`LearnedFlow` (the same loop with :class:`LearnedFactors`, a small CNN's
  log-space corrections of the hand-set factors, trained end to end through the implicit backward).
- :mod:`.penalty`: generalised Charbonnier IRLS weights (the median filter is :func:`gbp_torch.vision.median_filter`).
- :mod:`.calibrate`: the covariance calibration factor, fitted on synthetic pairs.
- :mod:`.datasets`: Middlebury / Sintel / KITTI readers under the data root.
- :mod:`.output`: :class:`FlowOutput`.
- :mod:`.metrics`: EPE, angular error, Fl-all, coverage of the predicted std, GT masks.
- :mod:`.synthetic`: layered synthetic pairs with exact flow and occlusions (tuning, calibration, training).
"""

from .factors import FactorSource, FlowFactors, HandsetFactorConfig, HandsetFactors
from .handset import HandsetFlow, HandsetFlowConfig
from .learned import LearnedFactors, LearnedFlow
from .metrics import (
    angular_error,
    endpoint_error,
    epe,
    fl_all,
    known_flow_mask,
    mean_angular_error,
    std_coverage,
    std_sparsification,
)
from .output import FlowOutput
from .synthetic import FlowPair, SyntheticFlowConfig, synthetic_flow_pair

__all__ = ["HandsetFlow", "LearnedFlow", "LearnedFactors", "HandsetFlowConfig", "HandsetFactors",
           "HandsetFactorConfig", "FlowFactors", "FactorSource", "FlowOutput", "epe", "endpoint_error",
           "angular_error", "mean_angular_error", "fl_all", "known_flow_mask", "std_coverage", "std_sparsification",
           "synthetic_flow_pair", "SyntheticFlowConfig", "FlowPair"]

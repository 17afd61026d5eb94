"""Stereo: continuous-disparity multigrid GBP on a matching cost, hand-set and learned factors.

A model maps ``(left (B, C, H, W), right (B, C, H, W), max_disp)`` with images in [0, 1] to a
:class:`~.output.StereoOutput` (disparity, variance, occlusions).

- :mod:`.cost`: chunked census(+gradient) cost volume with box or guided-filter windows, optionally
  mixed with the cost of learned matching features (:mod:`.features`, :class:`MatchingFeatures`);
  :mod:`.sgm`: semi-global scanline aggregation; :mod:`.search`: searches and quadratic fits;
- :mod:`.factors`: the factor source seam (:class:`HandsetFactors`; a learned source returns the
  same :class:`StereoFactors`); :mod:`.occlusion`: left-right check and background filling;
- :mod:`.handset`: :class:`HandsetStereo`; :mod:`.learned`: :class:`LearnedStereo` (a CNN's corrections of
  the hand-set factors, :class:`LearnedFactors`, trained end to end through the implicit backward);
  :mod:`.refine`: sub-pixel photometric refinement; :mod:`.rows`: the right view's row offset (imperfect
  rectification), estimated and resampled away first;
- :mod:`.metrics`, :mod:`.middlebury`, :mod:`.synthetic` (training / tuning pairs), :mod:`.colormap`.
"""

from .cost import CostConfig, CostVolume, cost_volume
from .factors import HandsetFactors, StereoCues, StereoFactors
from .features import MatchingFeatures
from .handset import HandsetStereo, SolveSchedule
from .learned import LearnedFactors, LearnedStereo
from .metrics import bad_pixels, coverage, mean_abs_error, sparsification_error, stereo_metrics
from .output import StereoOutput
from .refine import RefineConfig
from .rows import SwappedViewsWarning
from .sgm import SGMConfig
from .synthetic import SyntheticConfig, synthetic_pair

__all__ = ["StereoOutput", "HandsetStereo", "LearnedStereo", "LearnedFactors", "SolveSchedule", "RefineConfig",
           "CostConfig", "CostVolume", "cost_volume", "SGMConfig", "HandsetFactors", "StereoCues", "StereoFactors",
           "MatchingFeatures", "bad_pixels", "coverage", "mean_abs_error", "sparsification_error", "stereo_metrics",
           "SyntheticConfig", "synthetic_pair", "SwappedViewsWarning"]

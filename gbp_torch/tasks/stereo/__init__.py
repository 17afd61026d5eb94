"""Stereo: continuous-disparity multigrid GBP on a matching cost, hand-set and learned factors.

A model maps ``(left (B, C, H, W), right (B, C, H, W), max_disp)`` with images in [0, 1] to a
:class:`~.output.StereoOutput` (disparity, variance, occlusions).
"""

from .output import StereoOutput

__all__ = ["StereoOutput"]

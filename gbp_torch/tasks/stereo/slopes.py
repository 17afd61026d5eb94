"""Slanted surfaces in the stereo solve: smoothness that expects each edge's disparity difference to be the local slope.

The smoothness factor ``w (d_j - d_i)^2`` prefers fronto-parallel surfaces: where the data is weak it bends a slanted
plane toward a flat one (a floor gains about a pixel of disparity per row). With an offset per edge,
``w (d_j - d_i - c_ij)^2``, it prefers the local slope instead. The offsets come from the estimate being refined:
robust local slopes (:func:`~gbp_torch.vision.field_slopes`, medians of the disparity's differences, which ignore a
depth edge), averaged over each edge's two pixels and soft-thresholded by ``shrink``, so that the small slopes of noise
stay 0 and fronto-parallel regions keep the plain smoothness. They are ``grid.solve``'s edge offsets: a linear term
of the normal equations; the matrix, hence GBP's variances, does not change.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ...vision import field_slopes


def edge_slopes(u: Tensor, window: int, shrink: float) -> tuple[Tensor, Tensor]:
    """Expected disparity differences along the horizontal and vertical edges of u (B, H, W): (B, H, W-1) (right
    minus left) and (B, H-1, W) (lower minus upper), from ``window``-wide robust slopes shrunk by ``shrink`` px / px."""
    gx, gy = field_slopes(u.unsqueeze(1), window)
    ch = F.softshrink(0.5 * (gx[:, 0, :, 1:] + gx[:, 0, :, :-1]), shrink)
    cv = F.softshrink(0.5 * (gy[:, 0, 1:, :] + gy[:, 0, :-1, :]), shrink)
    return ch, cv


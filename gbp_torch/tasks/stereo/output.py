"""The result of a stereo model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class StereoOutput:
    """Disparity of the left image: ``left(x, y)`` matches ``right(x - d, y)``, in pixels of the input.

    Attributes:
        disparity: (B, 1, H, W).
        var: (B, 1, H, W) calibrated variance of the disparity (std = sqrt(var)), or None.
        occluded: (B, 1, H, W) bool, pixels found occluded / mismatched (left-right check), or None.
        row_offset: (B,) the rows by which the right view was found off and resampled before matching (0: left
            alone; :mod:`.rows`), or None; with a tilt, the offset at the middle of the matched columns.
        row_tilt: (B,) how much that offset changed across the image width (rows; 0: none found), or None.
    """

    disparity: Tensor
    var: Tensor | None = None
    occluded: Tensor | None = None
    row_offset: Tensor | None = None
    row_tilt: Tensor | None = None

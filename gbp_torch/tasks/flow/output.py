"""The result of a flow model."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class FlowOutput:
    """Optical flow of the first frame: ``frame1(x) ~ frame2(x + flow(x))``, in pixels of the input.

    Attributes:
        flow: (B, 2, H, W), u to the right, v down.
        cov: (B, 2, 2, H, W) calibrated covariance of (u, v) per pixel (std_u = sqrt(cov[:, 0, 0])),
            or None.
        occluded: (B, 1, H, W) bool, pixels found occluded / mismatched, or None.
    """

    flow: Tensor
    cov: Tensor | None = None
    occluded: Tensor | None = None

    @property
    def std(self) -> Tensor | None:
        """(B, 2, H, W) standard deviations (std_u, std_v), or None without ``cov``."""
        if self.cov is None:
            return None
        return self.cov.diagonal(dim1=1, dim2=2).movedim(-1, 1).clamp_min(0).sqrt()

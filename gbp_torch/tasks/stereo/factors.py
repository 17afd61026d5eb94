"""The factor source of the stereo model: per-pixel data / smoothness parameters from image cues.

This is the seam between the stereo model and what sets its factors. :class:`HandsetFactors`
computes them with fixed formulas; a learned source (e.g. a
:class:`~gbp_torch.nets.GridFactorNet` on the left image, the cost cues and the current
disparity) returns the same :class:`StereoFactors` and plugs into
:class:`~.handset.HandsetStereo` unchanged (``HandsetStereo(factors=MySource())``) for inference; to train
it, use :class:`~.learned.LearnedStereo` (``records_gradients``: the last solve is recorded).

Contract of a factor source: ``source(left (B, C, H, W), cues: StereoCues) -> StereoFactors``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class StereoCues:
    """What the model knows about each pixel before the solve, all (B, H, W).

    Attributes:
        confidence: peak ratio of the cost, ``(C_2 - C_1) / max(C_2, floor)`` in [0, 1] (C_1 the best cost,
            C_2 the best outside +-1 px of it): near 0 = ambiguous.
        occluded: bool, failed the left-right check.
        cost: the best (winner-take-all) cost, C_1.
        extra: optional further per-pixel statistics (B, K, H, W) for a learned source (None for the
            hand-set model; :class:`~.learned.LearnedStereo` fills it, see :func:`~.learned.cost_statistics`).
    """

    confidence: Tensor
    occluded: Tensor
    cost: Tensor
    extra: Tensor | None = None


@dataclass
class StereoFactors:
    """Per-pixel factor parameters.

    Attributes:
        data_scale: (B, H, W) >= 0; data precision = data_scale * (cost curvature at the fit).
        data_k_px: (B, H, W) > 0, Tukey threshold of the data term in pixels (the solver's threshold
            in Mahalanobis units is ``sqrt(precision) * data_k_px``).
        wh: (B, H, W-1), wv: (B, H-1, W) edge weights (cost units per px^2).
        smooth_k_px: Cauchy threshold in pixels: a float, a tensor broadcastable to both edge fields, or a
            pair ``(k_h (B, H, W-1), k_v (B, H-1, W))`` of per-edge thresholds.
    """

    data_scale: Tensor
    data_k_px: Tensor
    wh: Tensor
    wv: Tensor
    smooth_k_px: Tensor | float

    def detached(self) -> "StereoFactors":
        """The same factors cut from the autograd graph (a per-edge threshold pair stays a pair)."""
        def cut(x):
            if isinstance(x, (tuple, list)):
                return tuple(cut(v) for v in x)
            return x.detach() if isinstance(x, Tensor) else x

        return StereoFactors(cut(self.data_scale), cut(self.data_k_px), cut(self.wh), cut(self.wv),
                             cut(self.smooth_k_px))


def edge_gradients(image: Tensor) -> tuple[Tensor, Tensor]:
    """Max over channels of |I(y, x+1) - I(y, x)| (B, H, W-1) and |I(y+1, x) - I(y, x)| (B, H-1, W)."""
    gh = (image[..., :, 1:] - image[..., :, :-1]).abs().amax(1)
    gv = (image[..., 1:, :] - image[..., :-1, :]).abs().amax(1)
    return gh, gv


class HandsetFactors(nn.Module):
    """Hand-set factor source.

    - data_scale = ``data`` * confidence^``conf_power`` (occluded: times ``occluded_scale``);
    - data_k_px = ``data_k_px`` everywhere;
    - edge weight = ``smooth`` * (``floor`` + (1 - floor) exp(-|grad I| / ``edge_t``)) on each 4-neighbour edge;
    - smooth_k_px = ``smooth_k_px``.
    """

    def __init__(self, data: float = 1.0, conf_power: float = 1.0, occluded_scale: float = 0.02,
                 data_k_px: float = 1.5, smooth: float = 0.4, edge_t: float = 0.04, floor: float = 0.02,
                 smooth_k_px: float = 0.25):
        super().__init__()
        self.data, self.conf_power, self.occluded_scale = data, conf_power, occluded_scale
        self.data_k_px, self.smooth, self.edge_t, self.floor = data_k_px, smooth, edge_t, floor
        self.smooth_k_px = smooth_k_px

    def forward(self, left: Tensor, cues: StereoCues) -> StereoFactors:
        """left (B, C, H, W) in [0, 1], cues of (B, H, W) -> :class:`StereoFactors`."""
        conf = cues.confidence.clamp(0, 1) ** self.conf_power
        scale = self.data * torch.where(cues.occluded, conf.new_tensor(self.occluded_scale), conf.new_tensor(1.0))
        scale = scale * conf
        gh, gv = edge_gradients(left)
        f = self.floor

        def weight(g: Tensor) -> Tensor:
            return self.smooth * (f + (1 - f) * torch.exp(-g / self.edge_t))

        k = torch.full_like(scale, self.data_k_px)
        return StereoFactors(scale, k, weight(gh), weight(gv), self.smooth_k_px)

    def extra_repr(self) -> str:
        return (f"data={self.data}, conf_power={self.conf_power}, occluded_scale={self.occluded_scale}, "
                f"data_k_px={self.data_k_px}, smooth={self.smooth}, edge_t={self.edge_t}, floor={self.floor}, "
                f"smooth_k_px={self.smooth_k_px}")


def mahalanobis_threshold(precision: Tensor, k_px: Tensor | float | tuple) -> Tensor:
    """A threshold in pixels as the solver's Mahalanobis threshold ``sqrt(precision) k_px`` (floored > 0).

    ``k_px`` may be a pair ``(k_h, k_v)`` of per-edge thresholds: the one of ``precision``'s shape is used
    (wh (B, H, W-1) and wv (B, H-1, W) never have the same shape).
    """
    if isinstance(k_px, (tuple, list)):
        match = [k for k in k_px if tuple(k.shape) == tuple(precision.shape)]
        if len(match) != 1:
            raise ValueError(f"no per-edge threshold of shape {tuple(precision.shape)} among "
                             f"{[tuple(k.shape) for k in k_px]}")
        k_px = match[0]
    # clamped at the smallest normal number, not 0: sqrt has an infinite slope at 0, and times the floor's zero
    # gradient that gave NaN gradients where a precision is 0 (the values are the same: the floor takes them)
    return (precision.clamp_min(torch.finfo(precision.dtype).tiny).sqrt() * k_px).clamp_min(math.sqrt(1e-8))

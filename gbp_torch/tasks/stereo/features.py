"""Learned matching features: a small CNN whose unit-length per-pixel vectors are compared across views.

    net = MatchingFeatures()                         # (B, C, H, W) in [0, 1] -> (B, F, H, W), unit length
    cost = feature_cost(net(left), net(right), 0, 65)   # (B, 65, H, W) in [0, 1]: (1 - cos) / 2 (.cost)

The input is the gray image normalised by its local mean and standard deviation, so that the
features, like census, ignore a gain or bias between the views. A model's matching cost is then
``(1 - weight) census + weight feature_cost`` (:func:`~.cost.cost_volume`'s ``features``). The features are trained by
:func:`matching_loss` on synthetic pairs (``python -m train.train experiment=stereo_features``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...nets import channels_last
from .cost import feature_cost


class MatchingFeatures(nn.Module):
    """A conv stack (3x3, ReLU) on the locally normalised gray image, L2-normalised output.

    Args:
        channels: feature length F.
        width, depth: the conv stack.
        norm_radius: window radius of the local mean / std normalisation of the input.
        weight: the share w in (0, 1] of this cost in a model's matching cost, ``(1 - w) census + w features``.

    Forward: ``image`` (B, C, H, W) in [0, 1] -> (B, F, H, W) unit vectors.
    """

    def __init__(self, channels: int = 16, width: int = 32, depth: int = 4, norm_radius: int = 4,
                 weight: float = 0.5):
        super().__init__()
        if channels < 1 or width < 1 or depth < 1 or norm_radius < 1 or not 0 < weight <= 1:
            raise ValueError(f"need channels, width, depth, norm_radius >= 1 and 0 < weight <= 1, got {channels}, "
                             f"{width}, {depth}, {norm_radius}, {weight}")
        layers: list[nn.Module] = []
        c = 1
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
            c = width
        layers.append(nn.Conv2d(c, channels, 3, padding=1))
        self.net = nn.Sequential(*layers)
        self.norm_radius, self.weight, self.depth = norm_radius, weight, depth

    @property
    def radius(self) -> int:
        """Receptive radius (px): pixels farther than this from x do not change the features at x."""
        return self.depth + self.norm_radius

    def normalise(self, image: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, 1, H, W): the gray image minus its local mean, over its local std (+ 0.02)."""
        gray = image.mean(1, keepdim=True)
        k = 2 * self.norm_radius + 1
        mean = F.avg_pool2d(gray, k, 1, self.norm_radius, count_include_pad=False)
        var = F.avg_pool2d(gray * gray, k, 1, self.norm_radius, count_include_pad=False) - mean * mean
        return (gray - mean) / (var.clamp_min(0).sqrt() + 0.02)

    def forward(self, image: Tensor) -> Tensor:
        return F.normalize(channels_last(self.net, self.normalise(image)), dim=1)


def matching_loss(fl: Tensor, fr: Tensor, gt: Tensor, mask: Tensor, max_disp: int, temperature: Tensor) -> Tensor:
    """Cross entropy of the softmax over disparities 0..max_disp of ``-cost / temperature`` at the true disparity.

    fl, fr (B, F, H, W) unit features of the left / right view; gt (B, 1, H, W) disparity in px; mask
    (B, 1, H, W) bool, the pixels that count (non-occluded, 0 <= gt <= max_disp). The target is shared
    by the two integers around gt (linear weights); disparities with x - d < 0 are excluded.
    """
    cost = feature_cost(fl, fr, 0, max_disp + 1)  # (B, D + 1, H, W)
    w = cost.shape[-1]
    d = torch.arange(max_disp + 1, device=cost.device).view(-1, 1, 1)
    invalid = torch.arange(w, device=cost.device).view(1, 1, -1) < d
    logp = torch.log_softmax((-cost / temperature).masked_fill(invalid, float("-inf")), 1)
    g = gt.clamp(0, max_disp)
    lo = g.floor().long().clamp(max=max_disp)
    hi = (lo + 1).clamp(max=max_disp)
    frac = g - lo
    nll = -(logp.gather(1, lo) * (1 - frac) + logp.gather(1, hi).nan_to_num(0.0, 0.0, 0.0) * frac)
    mask = mask & (gt >= 0) & (gt <= max_disp) & torch.isfinite(nll)  # lo itself invalid: not counted
    return torch.where(mask, nll, 0.0).sum() / mask.sum().clamp_min(1)


__all__ = ["MatchingFeatures", "matching_loss"]

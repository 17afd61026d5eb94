"""Matching one image's exposure to another's: a gain and a bias per channel.

Brightness constancy fails when the camera's exposure or gain changes between frames (auto exposure, a flash, clouds):
frame 2 times 1.3 took the learned flow model's error on Middlebury's RubberWhale from 0.082 to 0.119 px. Mapping each
channel of one image affinely so that its mean and standard deviation become the other's removes a global change
before the constancy terms see it (0.108 px there, the rest being the highlights that the gain clipped). Motion
changes the moments too (content entering and leaving the frame: a 24 x 24 texture moved by 3 px read as a 3.6 % gain),
so :func:`match_exposure` leaves items alone whose change is under ``least`` (:data:`MIN_CHANGE`).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: channels whose standard deviation is below this (flat images) keep their gain; only the mean is matched
FLAT_STD = 1e-3
#: the least change (a channel's |gain - 1| or |bias|) that :func:`match_exposure` corrects by default
MIN_CHANGE = 0.05


def exposure_change(reference: Tensor, image: Tensor) -> tuple[Tensor, Tensor]:
    """Per item and channel the ``(gain, bias)`` (each (B, C, 1, 1)) that map ``image`` (B, C, H, W) onto
    ``reference``'s mean and standard deviation: ``gain * image + bias``."""
    if image.shape != reference.shape or image.dim() != 4:
        raise ValueError(f"reference and image must both be (B, C, H, W) of one shape, got {tuple(reference.shape)} "
                         f"and {tuple(image.shape)}")
    mean_ref, mean = reference.mean((-2, -1), keepdim=True), image.mean((-2, -1), keepdim=True)
    std_ref, std = reference.std((-2, -1), keepdim=True), image.std((-2, -1), keepdim=True)
    gain = (std_ref / std.clamp_min(FLAT_STD)).where((std > FLAT_STD) & (std_ref > FLAT_STD), std.new_ones(()))
    return gain, mean_ref - gain * mean


def match_exposure(reference: Tensor, image: Tensor, least: float = MIN_CHANGE) -> Tensor:
    """``image`` (B, C, H, W) mapped by :func:`exposure_change` onto ``reference``'s exposure and clamped to [0, 1],
    for the items where some channel's |gain - 1| or |bias| is at least ``least`` (the others unchanged)."""
    gain, bias = exposure_change(reference, image)
    change = torch.maximum((gain - 1).abs(), bias.abs()).amax(1, keepdim=True)  # (B, 1, 1, 1)
    return torch.where(change >= least, (gain * image + bias).clamp(0, 1), image)


__all__ = ["exposure_change", "match_exposure", "MIN_CHANGE"]

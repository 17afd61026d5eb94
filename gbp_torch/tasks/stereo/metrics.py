"""Stereo error measures on masked pixels (Middlebury conventions).

All take ``disparity`` and ``gt`` of shape (B, 1, H, W) or (B, H, W) and a boolean ``mask`` of the
same shape (pixels evaluated); pixels whose ground truth is unknown (``gt <= 0``) are always
excluded. Each returns a (B,) tensor (NaN for an item with no evaluated pixel).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..sparsification import sparsification_error as ranking_error


def _valid(disparity: Tensor, gt: Tensor, mask: Tensor | None) -> Tensor:
    if disparity.shape != gt.shape or disparity.dim() not in (3, 4) or (disparity.dim() == 4
                                                                       and disparity.shape[1] != 1):
        raise ValueError(f"disparity and gt must both be (B, 1, H, W) or (B, H, W), got {tuple(disparity.shape)} "
                         f"and {tuple(gt.shape)}")
    if mask is not None and mask.shape != gt.shape:
        raise ValueError(f"mask must have the shape of gt {tuple(gt.shape)}, got {tuple(mask.shape)}")
    valid = gt > 0
    return valid if mask is None else valid & mask.bool()


def _valid_with_var(disparity: Tensor, var: Tensor, gt: Tensor, mask: Tensor | None) -> Tensor:
    """:func:`_valid` for a measure of ``var``, which must have gt's shape."""
    valid = _valid(disparity, gt, mask)
    if var.shape != gt.shape:
        raise ValueError(f"var must have the shape of gt {tuple(gt.shape)}, got {tuple(var.shape)}")
    return valid


def _mean(values: Tensor, valid: Tensor) -> Tensor:
    v = valid.flatten(1).to(values.dtype)
    return (values.flatten(1) * v).sum(1) / v.sum(1)


def bad_pixels(disparity: Tensor, gt: Tensor, mask: Tensor | None = None, threshold: float = 1.0) -> Tensor:
    """Percentage (0-100) of evaluated pixels with ``|disparity - gt| > threshold``, (B,)."""
    valid = _valid(disparity, gt, mask)
    return 100.0 * _mean(((disparity - gt).abs() > threshold).double(), valid)


def mean_abs_error(disparity: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean |disparity - gt| in px over evaluated pixels, (B,)."""
    valid = _valid(disparity, gt, mask)
    return _mean((disparity - gt).abs().double(), valid)


def coverage(disparity: Tensor, var: Tensor, gt: Tensor, mask: Tensor | None = None, z: float = 1.96) -> Tensor:
    """Fraction of evaluated pixels with ``|disparity - gt| < z sqrt(var)`` (0.95 = calibrated at z = 1.96), (B,)."""
    valid = _valid_with_var(disparity, var, gt, mask)
    inside = (disparity - gt).abs() < z * var.clamp_min(0).sqrt()
    return _mean(inside.double(), valid)


def sparsification_error(disparity: Tensor, var: Tensor, gt: Tensor, mask: Tensor | None = None,
                         steps: int = 10) -> Tensor:
    """How well ``var`` ranks the absolute errors of the evaluated pixels, (B,): the area between the
    sparsification curve and its oracle over the MAE (:func:`gbp_torch.tasks.sparsification.sparsification_error`;
    0: the variance orders the errors perfectly)."""
    valid = _valid_with_var(disparity, var, gt, mask)
    return ranking_error((disparity - gt).abs(), var, valid, steps)


def near_depth_edge(gt: Tensor, radius: int = 3, jump: float = 1.0) -> Tensor:
    """Pixels within ``radius`` px (in x and y) of a depth edge of the ground truth: bool, gt's shape.

    A depth edge lies between 4-neighbours whose ground truth differs by more than ``jump`` px; both
    pixels of such a pair are edge pixels, and the mask is their dilation by a (2 radius + 1)^2 square.
    """
    g = gt.unsqueeze(1) if gt.dim() == 3 else gt
    dx = (g[..., :, 1:] - g[..., :, :-1]).abs() > jump
    dy = (g[..., 1:, :] - g[..., :-1, :]).abs() > jump
    edge = F.pad(dx, (0, 1)) | F.pad(dx, (1, 0)) | F.pad(dy, (0, 0, 0, 1)) | F.pad(dy, (0, 0, 1, 0))
    near = F.max_pool2d(edge.float(), 2 * radius + 1, 1, radius) > 0
    return near[:, 0] if gt.dim() == 3 else near


def pair_measures(disparity: Tensor, gt: Tensor, nonocc: Tensor, var: Tensor | None = None) -> dict[str, Tensor]:
    """Per item (B,) on the non-occluded pixels: ``bad1``, ``bad2``, ``mae``, ``bad1_edge`` and
    ``bad1_interior`` (bad > 1 px within 3 px of a depth edge and elsewhere, :func:`near_depth_edge`; NaN for
    an item without such pixels) and, with ``var``, ``coverage`` and ``ause`` (:func:`sparsification_error`)."""
    edge = near_depth_edge(gt)
    out = {"bad1": bad_pixels(disparity, gt, nonocc, 1.0), "bad2": bad_pixels(disparity, gt, nonocc, 2.0),
           "mae": mean_abs_error(disparity, gt, nonocc),
           "bad1_edge": bad_pixels(disparity, gt, nonocc & edge, 1.0),
           "bad1_interior": bad_pixels(disparity, gt, nonocc & ~edge, 1.0)}
    if var is not None:
        out["coverage"] = coverage(disparity, var, gt, nonocc)
        out["ause"] = sparsification_error(disparity, var, gt, nonocc)
    return out


def stereo_metrics(disparity: Tensor, gt: Tensor, masks: dict[str, Tensor], var: Tensor | None = None) -> dict:
    """Item 0's measures as floats: ``bad1_<m>`` and ``bad2_<m>`` for each mask name m, ``mae``, ``coverage`` and
    ``ause`` (:func:`sparsification_error`; both None without var) on the ``nonocc`` mask (or all known pixels
    without one)."""
    out = {}
    for name, m in masks.items():
        out[f"bad1_{name}"] = float(bad_pixels(disparity, gt, m, 1.0)[0])
        out[f"bad2_{name}"] = float(bad_pixels(disparity, gt, m, 2.0)[0])
    base = masks.get("nonocc")
    out["mae"] = float(mean_abs_error(disparity, gt, base)[0])
    out["coverage"] = None if var is None else float(coverage(disparity, var, gt, base)[0])
    out["ause"] = None if var is None else float(sparsification_error(disparity, var, gt, base)[0])
    return out


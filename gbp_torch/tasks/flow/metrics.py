"""Optical-flow error measures and masks, per batch item.

Conventions: flow and ground truth (B, 2, H, W) in pixels; masks (B, H, W) bool, True where a pixel
counts. Means over an empty mask are NaN.

- end-point error ``|f - g|``; angular error (Baker et al., IJCV 2011) the angle in degrees between
  the space-time vectors (u, v, 1) and (u_gt, v_gt, 1);
- Fl-all (KITTI 2015): fraction of pixels with EPE > 3 px and EPE > 5 % of |g|;
- coverage: fraction of the (u and v) components whose error lies within ``z`` standard deviations;
- std sparsification error (AUSE): how well the std ranks the end-point errors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..sparsification import sparsification_error

#: Middlebury's ``.flo`` files store unknown flow as 1.67e9; anything beyond this is unknown.
UNKNOWN_FLOW = 1e9


def _check_flow(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a (B, 2, H, W) tensor, got {shape}")


def _check_pair(flow: Tensor, gt: Tensor) -> None:
    _check_flow(flow, "flow")
    _check_flow(gt, "gt")
    if flow.shape != gt.shape:
        raise ValueError(f"gt must have the shape of flow (B, 2, H, W) = {tuple(flow.shape)}, got {tuple(gt.shape)}")


def _mask(mask: Tensor | None, like: Tensor) -> Tensor:
    """``mask`` as (B, H, W) bool (all True when None); accepts (B, 1, H, W)."""
    batch, _, height, width = like.shape
    if mask is None:
        return torch.ones(batch, height, width, dtype=torch.bool, device=like.device)
    if isinstance(mask, Tensor) and mask.dim() == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if not isinstance(mask, Tensor) or tuple(mask.shape) != (batch, height, width):
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask must be (B, H, W) or (B, 1, H, W) with (B, H, W) = {(batch, height, width)}, "
                         f"got {shape}")
    return mask.bool()


def known_flow_mask(gt: Tensor, limit: float = UNKNOWN_FLOW) -> Tensor:
    """(B, H, W) bool: True where both components of ``gt`` (B, 2, H, W) are finite and <= ``limit`` in size."""
    _check_flow(gt, "gt")
    return (torch.isfinite(gt) & (gt.abs() <= limit)).all(1)


def masked_mean(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of ``values`` (B, H, W) over ``mask`` (B, H, W) per batch item, (B,); NaN where the mask is empty."""
    mask = torch.ones_like(values, dtype=torch.bool) if mask is None else mask.bool()
    values = torch.where(mask, values, torch.zeros_like(values))
    return values.flatten(1).sum(1) / mask.flatten(1).sum(1).to(values.dtype)


def _safe(flow: Tensor, gt: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Zero both fields outside ``mask`` so unknown sentinels never enter an arithmetic result."""
    keep = mask[:, None]
    return torch.where(keep, flow, torch.zeros_like(flow)), torch.where(keep, gt, torch.zeros_like(gt))


def endpoint_error(flow: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel end-point error ``|flow - gt|``, (B, 2, H, W) x2 -> (B, H, W)."""
    _check_pair(flow, gt)
    return (flow - gt).square().sum(1).sqrt()


def angular_error(flow: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel angular error in degrees (Baker et al.), (B, 2, H, W) x2 -> (B, H, W).

    ``arccos((u u_g + v v_g + 1) / sqrt((u^2 + v^2 + 1) (u_g^2 + v_g^2 + 1)))``.
    """
    _check_pair(flow, gt)
    num = (flow * gt).sum(1) + 1
    den = ((flow.square().sum(1) + 1) * (gt.square().sum(1) + 1)).sqrt()
    return torch.rad2deg(torch.acos((num / den).clamp(-1, 1)))


def epe(flow: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean end-point error over ``mask`` (B, H, W) (default: pixels with known ``gt``), (B,)."""
    _check_pair(flow, gt)
    mask = _mask(mask, flow) & known_flow_mask(gt)
    return masked_mean(endpoint_error(*_safe(flow, gt, mask)), mask)


def mean_angular_error(flow: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean angular error in degrees over ``mask`` (default: pixels with known ``gt``), (B,)."""
    _check_pair(flow, gt)
    mask = _mask(mask, flow) & known_flow_mask(gt)
    return masked_mean(angular_error(*_safe(flow, gt, mask)), mask)


def fl_all(flow: Tensor, gt: Tensor, mask: Tensor | None = None) -> Tensor:
    """KITTI Fl-all: fraction of ``mask`` pixels with EPE > 3 px and EPE > 0.05 |gt|, (B,) in [0, 1]."""
    _check_pair(flow, gt)
    mask = _mask(mask, flow) & known_flow_mask(gt)
    flow, gt = _safe(flow, gt, mask)
    err = endpoint_error(flow, gt)
    bad = (err > 3) & (err > 0.05 * gt.square().sum(1).sqrt())
    return masked_mean(bad.to(flow.dtype), mask)


def _with_std(flow: Tensor, std: Tensor, gt: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
    """Checked (flow, gt, mask) for a measure of ``std``: the mask restricted to known ground truth, unknown
    values zeroed (:func:`_safe`)."""
    _check_pair(flow, gt)
    _check_flow(std, "std")
    if std.shape != flow.shape:
        raise ValueError(f"std must have the shape of flow (B, 2, H, W) = {tuple(flow.shape)}, got {tuple(std.shape)}")
    mask = _mask(mask, flow) & known_flow_mask(gt)
    return (*_safe(flow, gt, mask), mask)


def std_coverage(flow: Tensor, std: Tensor, gt: Tensor, mask: Tensor | None = None, z: float = 1.96) -> Tensor:
    """Fraction of components with ``|flow_c - gt_c| < z std_c`` over ``mask``, u and v pooled, (B,).

    Args:
        flow, gt: (B, 2, H, W).
        std: (B, 2, H, W) predicted standard deviations of u and v (e.g. :attr:`FlowOutput.std`).
        mask: (B, H, W) pixels that count (e.g. non-occluded); unknown ``gt`` is always excluded.
        z: 1.96 for a nominal 95 %.
    """
    flow, gt, mask = _with_std(flow, std, gt, mask)
    inside = ((flow - gt).abs() < z * std).to(flow.dtype).mean(1)
    return masked_mean(inside, mask)


def std_sparsification(flow: Tensor, std: Tensor, gt: Tensor, mask: Tensor | None = None, steps: int = 10) -> Tensor:
    """How well ``|std| = sqrt(std_u^2 + std_v^2)`` ranks the end-point errors over ``mask``, (B,): the
    sparsification error (:func:`gbp_torch.tasks.sparsification.sparsification_error`; 0: a perfect ranking).

    Args: as :func:`std_coverage`.
    """
    flow, gt, mask = _with_std(flow, std, gt, mask)
    return sparsification_error(endpoint_error(flow, gt), std.square().sum(1), mask, steps)

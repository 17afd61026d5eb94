"""Left-right consistency, the left border's out-of-view strip and background filling of occluded pixels."""

from __future__ import annotations

import torch
from torch import Tensor


def left_right_check(disp_left: Tensor, disp_right: Tensor, threshold: float = 1.0) -> Tensor:
    """Occluded / mismatched left pixels: ``|d_L(x) - d_R(x - d_L(x))| > threshold`` or ``x - d_L(x) < 0``.

    Args:
        disp_left, disp_right: (B, H, W) disparities of the left and right views (float or long).
    Returns:
        (B, H, W) bool.
    """
    if disp_left.dim() != 3 or disp_left.shape != disp_right.shape:
        raise ValueError(f"disp_left and disp_right must both be (B, H, W), got {tuple(disp_left.shape)} "
                         f"and {tuple(disp_right.shape)}")
    w = disp_left.shape[-1]
    x = torch.arange(w, device=disp_left.device).view(1, 1, -1)
    xr = x - disp_left.round().long()
    back = disp_right.gather(2, xr.clamp(0, w - 1)).to(disp_left.dtype)
    return (xr < 0) | ((disp_left - back).abs() > threshold)


def out_of_view(disp_right: Tensor, columns: int = 9, margin: float = 3.0, skip: int = 4) -> Tensor:
    """Left pixels whose scene point lies left of (or at) the right image's border: (B, H, W) bool.

    A left pixel x of a surface at disparity d is seen by the right view only if ``x >= d``. Its own
    winner cannot tell: its search range is cut at ``d <= x``, so it returns a spurious small
    disparity that often passes the left-right check, and one such pixel wins the background fill of
    the whole strip. The right view's border columns see the surface at the row's left edge, so their
    disparity d_b marks the left pixels ``x < d_b + margin``: the strip, plus the pixels whose matching
    windows (census radius 3) cross the right image's border. d_b is the median over ``columns`` right
    columns from column ``skip`` (the first few columns' census windows are mostly replicated border,
    so their winners are unreliable), robust to a few wrong winners.

    Args:
        disp_right: (B, H, W) disparities of the right view (float or long).
    """
    w = disp_right.shape[-1]
    first = min(skip, max(0, w - columns))
    border = disp_right[..., first:first + columns].float().median(-1, keepdim=True).values
    return torch.arange(w, device=disp_right.device).view(1, 1, -1) < border + margin


def fill_background(disp: Tensor, valid: Tensor) -> Tensor:
    """Each invalid pixel takes the smaller (farther) of the nearest valid disparities to its left and
    right on its row (one side only where the other has none; rows without valid pixels keep ``disp``).

    Args:
        disp: (B, H, W) float; valid: (B, H, W) bool.
    Returns:
        (B, H, W) float.
    """
    if disp.dim() != 3 or valid.shape != disp.shape:
        raise ValueError(f"disp and valid must both be (B, H, W), got {tuple(disp.shape)} and {tuple(valid.shape)}")
    w = disp.shape[-1]
    x = torch.arange(w, device=disp.device).expand_as(disp)
    left_idx = torch.where(valid, x, torch.full_like(x, -1)).cummax(-1).values
    rev = torch.where(valid, w - 1 - x, torch.full_like(x, -1)).flip(-1).cummax(-1).values.flip(-1)
    right_idx = torch.where(rev >= 0, w - 1 - rev, torch.full_like(x, -1))
    inf = torch.full_like(disp, float("inf"))
    dl = torch.where(left_idx >= 0, disp.gather(-1, left_idx.clamp_min(0)), inf)
    dr = torch.where(right_idx >= 0, disp.gather(-1, right_idx.clamp_min(0)), inf)
    fill = torch.minimum(dl, dr)
    return torch.where(valid | torch.isinf(fill), disp, fill)

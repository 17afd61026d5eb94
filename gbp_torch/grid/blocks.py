"""Per-pixel precision algebra for the grid fast path.

A *lam field* is either scalar/isotropic, shape (B, H, W) (D = 1, or D = 2 with
``lam * I``), or a full symmetric 2x2 block per pixel, shape (B, 3, H, W) holding
``(xx, xy, yy)``. Vectors are (B, D, H, W). The two kinds are told apart by
``ndim`` (3 vs 4); spatial sizes may be edge-sized (W-1 or H-1) instead of H, W.
"""

from __future__ import annotations

import torch
from torch import Tensor


def is_full(lam: Tensor) -> bool:
    """True for a full 2x2 lam field (B, 3, H, W)."""
    return lam.dim() == 4


def mv(lam: Tensor, v: Tensor) -> Tensor:
    """Block-times-vector ``lam @ v``: lam (B,H,W) or (B,3,H,W), v (B,D,H,W)."""
    if not is_full(lam):
        return lam.unsqueeze(1) * v
    # (xx, xy) v0 + (xy, yy) v1: two products of 2-channel slices, no stack (a third faster, the same values)
    return lam[:, 0:2] * v[:, :1] + lam[:, 1:3] * v[:, 1:]


def inv(lam: Tensor) -> Tensor:
    """Inverse of each block (same layout)."""
    if not is_full(lam):
        return 1.0 / lam
    det = lam[:, 0] * lam[:, 2] - lam[:, 1] * lam[:, 1]
    return torch.stack((lam[:, 2], -lam[:, 1], lam[:, 0]), 1) / det.unsqueeze(1)


def add_eye(lam: Tensor, s: Tensor) -> Tensor:
    """``lam + s I`` with s a scalar field (B, H, W)."""
    if not is_full(lam):
        return lam + s
    return torch.stack((lam[:, 0] + s, lam[:, 1], lam[:, 2] + s), 1)


def scale(lam: Tensor, s: Tensor) -> Tensor:
    """``s * lam`` with s a scalar field (B, H, W)."""
    return lam * s.unsqueeze(1) if is_full(lam) else lam * s


def trace(lam: Tensor, d: int) -> Tensor:
    """Trace of each block as a (B, H, W) field (``d * lam`` for isotropic fields)."""
    return lam[:, 0] + lam[:, 2] if is_full(lam) else d * lam


def diag_of(lam: Tensor) -> Tensor:
    """Diagonal entries as a (B, 2, H, W) field (full) or the field itself (scalar)."""
    return lam[:, 0::2] if is_full(lam) else lam


def to_matrix(lam: Tensor, d: int) -> Tensor:
    """Dense blocks: (B, H, W) -> (B, H, W) for d = 1, else (B, d, d, H, W)."""
    if not is_full(lam):
        if d == 1:
            return lam
        eye = torch.eye(d, dtype=lam.dtype, device=lam.device)
        return eye[None, :, :, None, None] * lam[:, None, None]
    return torch.stack((lam[:, 0:2], lam[:, 1:3]), 1)


def from_matrix(m: Tensor) -> Tensor:
    """(B, 2, 2, H, W) symmetric blocks -> (B, 3, H, W)."""
    return torch.stack((m[:, 0, 0], 0.5 * (m[:, 0, 1] + m[:, 1, 0]), m[:, 1, 1]), 1)

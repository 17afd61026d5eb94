"""Batched linear algebra for the many tiny matrices of GBP.

GBP solves millions of 1x1 ... 6x6 systems per iteration. Two layouts:

- *lanes* (the engine's hot path): a matrix batch is (..., n, m, L) with the
  batch of L factors or variables LAST, so every entry ``a[..., i, j, :]`` is a
  contiguous vector and each op below is a few whole-vector SIMD loops. Small
  solves are Gaussian elimination unrolled over the matrix index (a loop of
  O(n^2) whole-batch ops, never a loop over the batch).
- *standard* (..., n, m), used by :mod:`gbp_torch.gaussian`; it moves the batch
  into lanes and back.

Everything is out-of-place, so autograd and ``torch.func`` work through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Matrices up to this size use the unrolled elimination; larger ones LAPACK.
UNROLL_MAX = 6


# -- lanes layout: (..., n, m, L) ----------------------------------------------------
def lane_matmul(a: Tensor, b: Tensor) -> Tensor:
    """(..., n, k, L) @ (..., k, m, L) -> (..., n, m, L)."""
    return (a.unsqueeze(-2) * b.unsqueeze(-4)).sum(-3)


def lane_matvec(a: Tensor, v: Tensor) -> Tensor:
    """(..., n, k, L) x (..., k, L) -> (..., n, L)."""
    return (a * v.unsqueeze(-3)).sum(-2)


def lane_transpose(a: Tensor) -> Tensor:
    """(..., n, m, L) -> (..., m, n, L)."""
    return a.transpose(-3, -2)


def lane_symmetrize(a: Tensor) -> Tensor:
    """(a + a^T) / 2 for (..., n, n, L)."""
    return 0.5 * (a + a.transpose(-3, -2))


def lane_eye(n: int, like: Tensor) -> Tensor:
    """(n, n, 1) identity broadcastable against lanes matrices."""
    return torch.eye(n, dtype=like.dtype, device=like.device).unsqueeze(-1)


def lane_solve_checked(a: Tensor, b: Tensor, rtol: float = 0.0) -> tuple[Tensor, Tensor]:
    """Solve ``a x = b`` for SPD ``a``; also return whether ``a`` is (well) positive definite.

    Args:
        a: (..., n, n, L).
        b: (..., n, m, L) (leading dims broadcast against ``a``'s).
        rtol: ``ok`` needs every elimination pivot > rtol * its original diagonal
            entry (0: plain positive definiteness; ~100 eps flags numerically
            singular matrices).
    Returns:
        x (..., n, m, L) and ok (..., L).

    No pivoting: valid for SPD matrices, which is all GBP produces; for a
    non-SPD ``a`` the result is garbage or inf/NaN and ``ok`` is False.
    """
    n = a.shape[-2]
    if n == 1:
        ok = a[..., 0, 0, :] > 0
        return b / a, ok.expand(torch.broadcast_shapes(a.shape[:-3], b.shape[:-3]) + a.shape[-1:])
    if n == 2:
        a00, a01, a10, a11 = a[..., 0:1, 0, :], a[..., 0:1, 1, :], a[..., 1:2, 0, :], a[..., 1:2, 1, :]
        det = a00 * a11 - a01 * a10
        b0, b1 = b[..., 0, :, :], b[..., 1, :, :]
        x = torch.stack(((a11 * b0 - a01 * b1) / det, (a00 * b1 - a10 * b0) / det), -3)
        ok = ((a00 > 0) & (det > rtol * a00 * a11))[..., 0, :]
        return x, ok.expand(x.shape[:-3] + x.shape[-1:])
    batch = torch.broadcast_shapes(a.shape[:-3], b.shape[:-3])
    a = a.expand(*batch, *a.shape[-3:])
    b = b.expand(*batch, *b.shape[-3:])
    if n > UNROLL_MAX:
        a_std, b_std = a.movedim(-1, -3), b.movedim(-1, -3)
        chol, info = torch.linalg.cholesky_ex(a_std)
        return torch.cholesky_solve(b_std, chol).movedim(-3, -1), info == 0
    rows = list(torch.cat((a, b), -2).unbind(-3))  # n tensors (..., n + m, L)
    ok = torch.ones(rows[0].shape[:-2] + rows[0].shape[-1:], dtype=torch.bool, device=a.device)
    for k in range(n):  # forward elimination; all pivots are positive iff a is PD
        pivot = rows[k][..., k : k + 1, :]
        ok = ok & (pivot[..., 0, :] > rtol * a[..., k, k, :].abs())
        rows[k] = rows[k] / pivot
        for i in range(k + 1, n):
            rows[i] = rows[i] - rows[i][..., k : k + 1, :] * rows[k]
    for k in range(n - 1, 0, -1):  # back substitution
        for i in range(k):
            rows[i] = rows[i] - rows[i][..., k : k + 1, :] * rows[k]
    return torch.stack([r[..., n:, :] for r in rows], -3), ok


def lane_inverse(a: Tensor) -> Tensor:
    """Inverse of SPD (..., n, n, L)."""
    return lane_solve_checked(a, lane_eye(a.shape[-2], a).expand_as(a))[0]


# -- standard layout: (..., n, m) -----------------------------------------------------
def _to_lanes(t: Tensor, batch: torch.Size) -> Tensor:
    return t.expand(*batch, *t.shape[-2:]).reshape(-1, *t.shape[-2:]).movedim(0, -1)


def spd_solve_checked(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Solve ``a x = b``: a (..., n, n) SPD, b (..., n, m) -> x (..., n, m), ok (...)."""
    if a.shape[-1] != a.shape[-2] or b.shape[-2] != a.shape[-1]:
        raise ValueError(f"spd_solve: shapes {tuple(a.shape)} and {tuple(b.shape)} do not match")
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    x, ok = lane_solve_checked(_to_lanes(a, batch), _to_lanes(b, batch))
    return x.movedim(-1, 0).reshape(*batch, *b.shape[-2:]), ok.reshape(batch)


def spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a x = b`` for SPD ``a`` (..., n, n) and ``b`` (..., n, m)."""
    return spd_solve_checked(a, b)[0]


def spd_inverse(a: Tensor) -> Tensor:
    """Inverse of SPD matrices (..., n, n)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return spd_solve(a, eye.expand_as(a))


def matvec(a: Tensor, v: Tensor) -> Tensor:
    """(..., n, k) x (..., k) -> (..., n)."""
    return (a @ v.unsqueeze(-1)).squeeze(-1)


def symmetrize(a: Tensor) -> Tensor:
    """``(a + a^T) / 2`` over the last two dims."""
    return 0.5 * (a + a.transpose(-1, -2))

"""Batched linear algebra for the many tiny matrices of GBP.

GBP solves millions of 1x1 ... 6x6 systems per iteration. LAPACK-backed
``torch.linalg`` calls loop over the batch on the CPU; for small ``n`` it is
much faster to unroll Gaussian elimination over the matrix index (a loop of
``O(n^2)`` whole-batch tensor ops, not a loop over the batch). Everything is
out-of-place, so autograd and ``torch.func`` work through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Matrices up to this size use the unrolled elimination; larger ones LAPACK.
UNROLL_MAX = 6


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Batched ``a @ b`` for tiny matrices: (..., n, k) @ (..., k, m) -> (..., n, m).

    A broadcast multiply-and-sum, which beats batched GEMM on the CPU for k <= ~8.
    """
    if a.shape[-1] > UNROLL_MAX:
        return a @ b
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def matvec(a: Tensor, v: Tensor) -> Tensor:
    """Batched ``a @ v``: (..., n, k) x (..., k) -> (..., n)."""
    return (a * v.unsqueeze(-2)).sum(-1)


def spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """Solve ``a x = b`` for symmetric positive-definite ``a``.

    Args:
        a: (..., n, n) SPD matrices.
        b: (..., n, m) right-hand sides (batch dims broadcast against ``a``'s).
    Returns:
        x: (..., n, m).

    No pivoting: valid for SPD matrices, which is all GBP produces. A non-SPD
    ``a`` gives garbage or inf/NaN; use :func:`spd_solve_checked` to detect it.
    """
    return spd_solve_checked(a, b)[0]


def spd_solve_checked(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Like :func:`spd_solve`, also returning ``ok`` (...,): whether ``a`` is positive definite."""
    n = a.shape[-1]
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if n == 1:
        return b / a, a[..., 0, 0].expand(batch) > 0
    if n == 2:
        a00, a01 = a[..., 0, 0:1], a[..., 0, 1:2]
        a10, a11 = a[..., 1, 0:1], a[..., 1, 1:2]
        det = a00 * a11 - a01 * a10
        b0, b1 = b[..., 0, :], b[..., 1, :]
        x = torch.stack(((a11 * b0 - a01 * b1) / det, (a00 * b1 - a10 * b0) / det), -2)
        return x, ((a00 > 0) & (det > 0))[..., 0].expand(batch)
    a = a.expand(*batch, n, n)
    b = b.expand(*batch, *b.shape[-2:])
    if n > UNROLL_MAX:
        chol, info = torch.linalg.cholesky_ex(a)
        return torch.cholesky_solve(b, chol), info == 0
    rows = list(torch.cat((a, b), -1).unbind(-2))
    ok = torch.ones(batch, dtype=torch.bool, device=a.device)
    for k in range(n):  # forward elimination; the pivots are positive iff a is PD
        pivot = rows[k][..., k : k + 1]
        ok = ok & (pivot[..., 0] > 0)
        rows[k] = rows[k] / pivot
        for i in range(k + 1, n):
            rows[i] = rows[i] - rows[i][..., k : k + 1] * rows[k]
    for k in range(n - 1, 0, -1):  # back substitution
        for i in range(k):
            rows[i] = rows[i] - rows[i][..., k : k + 1] * rows[k]
    return torch.stack([r[..., n:] for r in rows], -2), ok


def spd_inverse(a: Tensor) -> Tensor:
    """Inverse of SPD matrices (..., n, n)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    return spd_solve(a, eye.expand_as(a))


def symmetrize(a: Tensor) -> Tensor:
    """``(a + a^T) / 2`` over the last two dims."""
    return 0.5 * (a + a.transpose(-1, -2))

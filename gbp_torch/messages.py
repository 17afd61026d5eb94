"""Factor-to-variable messages of a whole factor family at once.

For a factor potential (eta_f, lam_f) over x = (x_1, ..., x_K) and incoming
variable-to-factor messages (eta_j, lam_j), the message to slot k is the
marginal on x_k of  potential * prod_{j != k} incoming_j :

    lam_msg = lam_aa - lam_ab lam_bb^-1 lam_ba,   eta_msg = eta_a - lam_ab lam_bb^-1 eta_b

with a = slot k and b = the other slots (incoming messages added to their
diagonal blocks). Tensors use the lanes layout of :mod:`gbp_torch.linalg`:
vectors (B, n, F), matrices (B, n, n, F), the F factors last. The Python loop
runs over the K slots only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .linalg import lane_eye, lane_matmul, lane_matvec, lane_solve_checked, lane_transpose


def _solve_bb(lam_bb: Tensor, rhs: Tensor) -> Tensor:
    """``lam_bb^-1 rhs``, with a tiny ridge only where lam_bb is numerically singular.

    A factor alone can leave directions of the other variables free (a range
    measurement of a 2-D point) while they have no incoming information yet;
    such messages have a finite limit as a ridge -> 0 (those directions carry
    no information), which a ridge of ~10 machine epsilons of the block's scale
    reaches to working precision. A ridge everywhere would bias every message
    (badly in float32), so it is used only where the plain solve is ill-posed.
    """
    eps = torch.finfo(lam_bb.dtype).eps
    x, ok = lane_solve_checked(lam_bb, rhs, rtol=100 * eps)
    if bool(ok.all()):
        return x
    diag = lam_bb.diagonal(dim1=-3, dim2=-2)  # (B, F, nb)
    scale = diag.abs().mean(-1).clamp_min(torch.finfo(lam_bb.dtype).tiny)  # (B, F)
    ridge = (10 * eps * scale).unsqueeze(-2).unsqueeze(-2) * lane_eye(lam_bb.shape[-2], lam_bb)
    x_ridge, _ = lane_solve_checked(lam_bb + ridge, rhs)
    return torch.where(ok.unsqueeze(-2).unsqueeze(-2), x, x_ridge)


def _block(t: Tensor, rows: list[tuple[int, int]], cols: list[tuple[int, int]] | None) -> Tensor:
    """Rows (and cols) of a lanes vector/matrix from a list of (start, stop) ranges."""
    def take(x: Tensor, ranges: list[tuple[int, int]], dim: int) -> Tensor:
        if len(ranges) == 1:
            return x.narrow(dim, ranges[0][0], ranges[0][1] - ranges[0][0])
        return torch.cat([x.narrow(dim, s, e - s) for s, e in ranges], dim)

    out = take(t, rows, -3 if cols is not None else -2)
    return out if cols is None else take(out, cols, -2)


def factor_to_variable(
    eta_f: Tensor, lam_f: Tensor, in_eta: list[Tensor], in_lam: list[Tensor], dims: list[int]
) -> tuple[list[Tensor], list[Tensor]]:
    """Messages from every factor of a family to each of its K slots.

    Args:
        eta_f: (B, n, F) factor information vectors, n = sum(dims).
        lam_f: (B, n, n, F) factor precisions.
        in_eta: K tensors (B, d_k, F): variable-to-factor information.
        in_lam: K tensors (B, d_k, d_k, F): variable-to-factor precisions.
        dims: [d_1, ..., d_K].
    Returns:
        K message information vectors (B, d_k, F) and precisions (B, d_k, d_k, F).
    """
    if len(dims) == 1:
        return [eta_f], [lam_f]
    ranges, start = [], 0
    for d in dims:
        ranges.append((start, start + d))
        start += d
    out_eta, out_lam = [], []
    for k in range(len(dims)):
        a, others = [ranges[k]], [j for j in range(len(dims)) if j != k]
        b = [ranges[j] for j in others]
        lam_ab = _block(lam_f, a, b)
        lam_bb = _block(lam_f, b, b) + _block_diag([in_lam[j] for j in others])
        eta_b = _block(eta_f, b, None) + torch.cat([in_eta[j] for j in others], -2)
        x = _solve_bb(lam_bb, torch.cat((lane_transpose(lam_ab), eta_b.unsqueeze(-2)), -2))
        out_lam.append(_block(lam_f, a, a) - lane_matmul(lam_ab, x[..., :-1, :]))
        out_eta.append(_block(eta_f, a, None) - lane_matvec(lam_ab, x[..., -1, :]))
    return out_eta, out_lam


def _block_diag(blocks: list[Tensor]) -> Tensor:
    """Lanes block-diagonal matrix from blocks (B, d_j, d_j, F)."""
    if len(blocks) == 1:
        return blocks[0]
    sizes = [blk.shape[-2] for blk in blocks]
    rows = []
    for j, blk in enumerate(blocks):
        pieces = [blk if i == j else blk.new_zeros(*blk.shape[:-3], blk.shape[-3], s, blk.shape[-1])
                  for i, s in enumerate(sizes)]
        rows.append(torch.cat(pieces, -2))
    return torch.cat(rows, -3)

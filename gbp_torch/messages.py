"""Factor-to-variable messages of a whole factor family at once.

For factor potential (eta_f, lam_f) over x = (x_1, ..., x_K) and incoming
variable-to-factor messages (eta_j, lam_j), the message to slot k is the
marginal on x_k of  potential * prod_{j != k} incoming_j :

    lam_msg = lam_aa - lam_ab lam_bb^-1 lam_ba,   eta_msg = eta_a - lam_ab lam_bb^-1 eta_b

with a = slot k and b = the other slots (incoming messages added to their
diagonal blocks). All F factors (and B graphs) are processed together; the
Python loop is over the K slots only.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .linalg import matmul, matvec, spd_solve, symmetrize


def _jitter(lam_bb: Tensor) -> Tensor:
    """Tiny ridge keeping lam_bb invertible when a factor alone leaves directions free.

    Such messages have a finite limit as the ridge -> 0 (those directions carry no
    information); a ridge of ~10 machine epsilons of the block's scale reaches it
    to working precision.
    """
    eps = 10 * torch.finfo(lam_bb.dtype).eps
    scale = lam_bb.diagonal(dim1=-2, dim2=-1).abs().mean(-1, keepdim=True).clamp_min(torch.finfo(lam_bb.dtype).tiny)
    eye = torch.eye(lam_bb.shape[-1], dtype=lam_bb.dtype, device=lam_bb.device)
    return (eps * scale).unsqueeze(-1) * eye


def factor_to_variable(
    eta_f: Tensor, lam_f: Tensor, in_eta: list[Tensor], in_lam: list[Tensor], dims: list[int]
) -> tuple[list[Tensor], list[Tensor]]:
    """Messages from every factor of a family to each of its K slots.

    Args:
        eta_f: (B, F, n) factor information vectors, n = sum(dims).
        lam_f: (B, F, n, n) factor precisions.
        in_eta: K tensors (B, F, d_k): variable-to-factor information.
        in_lam: K tensors (B, F, d_k, d_k): variable-to-factor precisions.
        dims: [d_1, ..., d_K].
    Returns:
        K message information vectors (B, F, d_k) and precisions (B, F, d_k, d_k).
    """
    if len(dims) == 1:
        return [eta_f], [lam_f]
    offsets = [0]
    for d in dims:
        offsets.append(offsets[-1] + d)
    out_eta, out_lam = [], []
    for k in range(len(dims)):
        a = slice(offsets[k], offsets[k + 1])
        others = [j for j in range(len(dims)) if j != k]
        b = torch.cat([torch.arange(offsets[j], offsets[j + 1]) for j in others]).to(lam_f.device)
        lam_ab = lam_f[..., a, :].index_select(-1, b)
        lam_bb = lam_f.index_select(-2, b).index_select(-1, b) + _block_diag([in_lam[j] for j in others])
        eta_b = eta_f.index_select(-1, b) + torch.cat([in_eta[j] for j in others], -1)
        lam_bb = lam_bb + _jitter(lam_bb)
        x = spd_solve(lam_bb, torch.cat((lam_ab.transpose(-1, -2), eta_b.unsqueeze(-1)), -1))
        out_lam.append(symmetrize(lam_f[..., a, a] - matmul(lam_ab, x[..., :-1])))
        out_eta.append(eta_f[..., a] - matvec(lam_ab, x[..., -1]))
    return out_eta, out_lam


def _block_diag(blocks: list[Tensor]) -> Tensor:
    """Batched block-diagonal matrix from blocks (..., d_j, d_j)."""
    if len(blocks) == 1:
        return blocks[0]
    sizes = [blk.shape[-1] for blk in blocks]
    rows = []
    for j, blk in enumerate(blocks):
        pieces = [blk if i == j else blk.new_zeros(*blk.shape[:-1], s) for i, s in enumerate(sizes)]
        rows.append(torch.cat(pieces, -1))
    return torch.cat(rows, -2)

"""Grid transfers and coarse operators for 2x2 aggregation.

Coarse cell (I, J) aggregates fine cells (2I..2I+1, 2J..2J+1); odd sizes give
1-wide blocks at the far border. All functions act on the last two dims.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .system import GridSystem


def coarse_shape(h: int, w: int) -> tuple[int, int]:
    return (h + 1) // 2, (w + 1) // 2


def aggregate(x: Tensor) -> Tensor:
    """Sum over 2x2 blocks: (..., H, W) -> (..., ceil(H/2), ceil(W/2)).

    Two adds of strided views (a size-2 reduction is several times slower on the CPU)."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2))
    rows = x[..., 0::2, :] + x[..., 1::2, :]
    return rows[..., 0::2] + rows[..., 1::2]


def prolong_constant(xc: Tensor, h: int, w: int) -> Tensor:
    """Piecewise-constant prolongation (adjoint of :func:`aggregate`) to (..., h, w)."""
    return xc.repeat_interleave(2, -1).repeat_interleave(2, -2)[..., :h, :w]




def _as_images(x: Tensor) -> Tensor:
    """(..., H, W) -> (N, 1, H, W)."""
    return x.reshape(-1, 1, *x.shape[-2:])


def prolong_bilinear(xc: Tensor, h: int, w: int) -> Tensor:
    """Cell-centred bilinear prolongation (weights 3/4, 1/4; edge cells repeated) to (..., h, w).

    This is torch's bilinear 2x upsampling with ``align_corners=False``, cropped to (h, w). Under
    ``torch.compile`` it is written out axis by axis (:func:`_upsample_axis`): inductor turns
    ``F.interpolate`` into scalar gathers, three times slower than the interleaved form."""
    if torch.compiler.is_compiling():
        return _upsample_axis(_upsample_axis(xc, -1), -2)[..., :h, :w]
    up = F.interpolate(_as_images(xc), scale_factor=2, mode="bilinear", align_corners=False)
    return up[..., :h, :w].reshape(*xc.shape[:-2], h, w)


def _upsample_axis(c: Tensor, dim: int) -> Tensor:
    """Cell-centred linear 2x upsampling along ``dim`` (-1 or -2; edge cells repeated): fine ``2i`` is
    ``(3 c[i] + c[i-1]) / 4``, fine ``2i+1`` is ``(3 c[i] + c[i+1]) / 4``, interleaved by a stack."""
    before, after = _previous(c, c, dim), _next(c, c, dim)
    fine = torch.stack([0.75 * c + 0.25 * before, 0.75 * c + 0.25 * after], dim)
    return fine.flatten(dim - 1, dim)


def _previous(x: Tensor, edge: Tensor, dim: int) -> Tensor:
    """``x`` moved one entry on along ``dim``: entry j is ``x[j - 1]``, entry 0 is ``edge[0]``."""
    return torch.cat([edge.narrow(dim, 0, 1), x.narrow(dim, 0, x.shape[dim] - 1)], dim)


def _next(x: Tensor, edge: Tensor, dim: int) -> Tensor:
    """``x`` moved one entry back along ``dim``: entry j is ``x[j + 1]``, the last is ``edge[-1]``."""
    n = x.shape[dim]
    return torch.cat([x.narrow(dim, 1, n - 1), edge.narrow(dim, n - 1, 1)], dim)


def restrict_bilinear(x: Tensor) -> Tensor:
    """Adjoint of :func:`prolong_bilinear`: (..., H, W) -> (..., ceil(H/2), ceil(W/2)).

    The crop's adjoint is zero padding to even sizes, the repeated edge cells' adjoint is a replicated
    border row / column; then weights 1/4, 3/4, 3/4, 1/4 along each axis, from strided views of the
    padded image (cheaper than a 4x4 strided convolution on one channel)."""
    h, w = x.shape[-2:]
    hc, wc = coarse_shape(h, w)
    if torch.compiler.is_compiling() and h % 2 == 0 and w % 2 == 0:
        return _downsample_axis(_downsample_axis(x, -2), -1)
    f = _as_images(x)
    if h % 2 or w % 2:  # (a zero padding of nothing would still copy the image)
        f = F.pad(f, (0, w % 2, 0, h % 2))
    f = F.pad(f, (1, 1, 1, 1), mode="replicate")[:, 0]
    out = _restrict_axis(_restrict_axis(f, wc, -1), hc, -2)
    return out.reshape(*x.shape[:-2], hc, wc)


def _restrict_axis(f: Tensor, n: int, dim: int) -> Tensor:
    """``(f[2j] + 3 f[2j+1] + 3 f[2j+2] + f[2j+3]) / 4`` for j < n along ``dim`` (-1 or -2, length 2n + 2); along
    the rows (-2) from strided row views, so that every operation still runs over contiguous rows."""
    a, b, c, d = (f[..., k:k + 2 * n:2] if dim == -1 else f[..., k:k + 2 * n:2, :] for k in range(4))
    return (b + c).mul_(3).add_(a).add_(d).mul_(0.25)


def _downsample_axis(x: Tensor, dim: int) -> Tensor:
    """:func:`restrict_bilinear` along ``dim`` (-1 or -2, even length 2n) from the even and odd entries, without a
    padded copy: coarse ``j`` is ``(x[2j-1] + 3 x[2j] + 3 x[2j+1] + x[2j+2]) / 4``, the border entries repeated. The
    form ``torch.compile`` fuses into vector code (the replicate padding became a scalar loop over the padded image)."""
    pairs = x.unflatten(dim, (x.shape[dim] // 2, 2))
    even, odd = pairs.select(dim, 0), pairs.select(dim, 1)
    before, after = _previous(odd, even, dim), _next(even, odd, dim)  # x[2j - 1], x[2j + 2]
    return 0.75 * (even + odd) + 0.25 * (before + after)


def _pair_mean(x: Tensor, dim: int) -> Tensor:
    """Mean over consecutive pairs along ``dim`` (-1 or -2; a last odd element stays alone)."""
    x = x.transpose(dim, -1)
    n = x.shape[-1]
    out = x[..., 0::2].clone()
    out[..., : n // 2].add_(x[..., 1::2]).mul_(0.5)
    return out.transpose(dim, -1)


def coarse_edges(wh: Tensor, wv: Tensor) -> tuple[Tensor, Tensor]:
    """Coarse edge weight = mean of the (1 or 2) fine edges it crosses.

    wh (B, H, W-1), wv (B, H-1, W) -> (B, Hc, Wc-1), (B, Hc-1, Wc).
    """
    hc, wc = coarse_shape(wh.shape[-2], wv.shape[-1])
    whc = _pair_mean(wh[..., :, 1::2][..., :, : wc - 1], -2)
    wvc = _pair_mean(wv[..., 1::2, :][..., : hc - 1, :], -1)
    return whc, wvc


def coarsen(sys: GridSystem, restrict=aggregate) -> GridSystem:
    """Coarse system: a_c = restrict(a), edges averaged, b_c = restrict(b).

    ``restrict`` is the transpose P^T of the prolongation, so a_c = P^T a is the lumped Galerkin data term
    ``diag(P^T diag(a) P 1)`` (the block sum for constant P, exactly its Galerkin term). It dominates
    ``P^T diag(a) P``, so the coarse correction never overshoots where the data precision jumps (pinned pixels
    beside free ones): with the block sum and bilinear P a V-cycle diverged on such grids."""
    whc, wvc = coarse_edges(sys.wh, sys.wv)
    return GridSystem(a=restrict(sys.a), wh=whc, wv=wvc, b=restrict(sys.b))

"""The linear system of a grid problem and its cheap operators.

Energy ``1/2 sum_i (x_i - z_i)^T a_i (x_i - z_i) + 1/2 sum_(ij) w_ij |x_j - x_i - c_ij|^2``
over a B x H x W grid with D values per pixel, ``c`` optional edge offsets (the expected difference
along each edge, 0 when absent). Its normal equations are ``A x = b`` with
``A = blockdiag(a) + L_w (x) I_D`` and ``b = a z + sum_edges w c (-1 on i, +1 on j)``: the offsets
change only the right-hand side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks


@dataclass
class GridSystem:
    """``A x = b`` on a grid.

    Attributes:
        a: data precision, lam field (B, H, W) or (B, 3, H, W) (see :mod:`blocks`).
        wh: horizontal edge weights (B, H, W-1), edge between (y, x) and (y, x+1).
        wv: vertical edge weights (B, H-1, W), edge between (y, x) and (y+1, x).
        b: right-hand side ``a z`` (plus the offsets' term), (B, D, H, W).
        offsets: None, or the edge offsets ``(c_h (B, D, H, W-1), c_v (B, D, H-1, W))``, the expected
            ``x_j - x_i`` along each edge (j right of / below i): already in ``b``, kept for residuals
            and energies.
    """

    a: Tensor
    wh: Tensor
    wv: Tensor
    b: Tensor
    offsets: tuple[Tensor, Tensor] | None = None

    @property
    def d(self) -> int:
        return self.b.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.b.shape[-2], self.b.shape[-1]


def scatter_edges(eh_to_right: Tensor, eh_to_left: Tensor, ev_down: Tensor, ev_up: Tensor) -> Tensor:
    """Sum edge quantities into their receiving pixels.

    ``eh_to_right`` (..., H, W-1) lands on (y, x+1), ``eh_to_left`` on (y, x),
    ``ev_down`` (..., H-1, W) on (y+1, x), ``ev_up`` on (y, x). Returns (..., H, W).
    One padded copy and three in-place adds (no concatenation).
    """
    out = F.pad(eh_to_left, (0, 1))
    out[..., 1:] += eh_to_right
    out[..., 1:, :] += ev_down
    out[..., :-1, :] += ev_up
    return out


def degree(sys: GridSystem) -> Tensor:
    """Sum of incident edge weights per pixel, (B, H, W)."""
    return scatter_edges(sys.wh, sys.wh, sys.wv, sys.wv)


def diagonal(sys: GridSystem) -> Tensor:
    """Diagonal blocks of A as a lam field (same layout as ``sys.a``)."""
    return blocks.add_eye(sys.a, degree(sys))


def laplacian(wh: Tensor, wv: Tensor, x: Tensor) -> Tensor:
    """Weighted graph Laplacian ``L_w x`` for x (B, D, H, W)."""
    return add_laplacian_(torch.zeros_like(x), wh, wv, x)


def add_laplacian_(out: Tensor, wh: Tensor, wv: Tensor, x: Tensor) -> Tensor:
    """``out += L_w x`` in place (out, x (B, D, H, W)): per edge, ``w (x_j - x_i)`` onto j and minus it onto i."""
    wh, wv = wh.unsqueeze(1), wv.unsqueeze(1)
    dh = x[..., :, 1:] - x[..., :, :-1]
    out[..., :, :-1].addcmul_(wh, dh, value=-1)
    out[..., :, 1:].addcmul_(wh, dh)
    dv = x[..., 1:, :] - x[..., :-1, :]
    out[..., :-1, :].addcmul_(wv, dv, value=-1)
    out[..., 1:, :].addcmul_(wv, dv)
    return out


def matvec(sys: GridSystem, x: Tensor) -> Tensor:
    """``A x`` for x (B, D, H, W)."""
    return add_laplacian_(blocks.mv(sys.a, x), sys.wh, sys.wv, x)


def residual(sys: GridSystem, x: Tensor) -> Tensor:
    """``b - A x``, (B, D, H, W)."""
    return sys.b - matvec(sys, x)


def bnorm(x: Tensor) -> Tensor:
    """Per-batch Euclidean norm, (B,)."""
    return x.flatten(1).norm(dim=1)


def bdot(x: Tensor, y: Tensor) -> Tensor:
    """Per-batch inner product, (B,)."""
    return (x * y).flatten(1).sum(1)


def squared_differences(x: Tensor, offsets: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """``|x_j - x_i - c_ij|^2`` over the channels of every horizontal and vertical edge: (B, C, H, W) ->
    ((B, H, W-1), (B, H-1, W)); ``offsets`` c as in :class:`GridSystem` (None: 0)."""
    dh, dv = x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
    if offsets is not None:
        dh, dv = dh - offsets[0], dv - offsets[1]
    return dh.square().sum(1), dv.square().sum(1)


def offset_rhs(wh: Tensor, wv: Tensor, offsets: tuple[Tensor, Tensor]) -> Tensor:
    """The right-hand side term (B, D, H, W) of edge offsets: an edge's ``1/2 w |x_j - x_i - c|^2`` puts
    ``-w c`` on pixel i and ``+w c`` on pixel j; wh (B, H, W-1), wv (B, H-1, W)."""
    eh, ev = wh.unsqueeze(1) * offsets[0], wv.unsqueeze(1) * offsets[1]
    return scatter_edges(eh, -eh, ev, -ev)


def right_hand_side(a: Tensor, z: Tensor, wh: Tensor, wv: Tensor,
                    offsets: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``b = a z`` plus :func:`offset_rhs` when there are offsets, (B, D, H, W); a a lam field, z (B, D, H, W)."""
    b = blocks.mv(a, z)
    return b if offsets is None else b + offset_rhs(wh, wv, offsets)


def energy(sys: GridSystem, x: Tensor, z: Tensor) -> Tensor:
    """Quadratic energy per batch item, (B,); z (B, D, H, W) the data target."""
    r = x - z
    e = 0.5 * (r * blocks.mv(sys.a, r)).flatten(1).sum(1)
    dh, dv = squared_differences(x, sys.offsets)
    return e + 0.5 * ((sys.wh * dh).flatten(1).sum(1) + (sys.wv * dv).flatten(1).sum(1))

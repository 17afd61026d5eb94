"""Five-point stencil operators: ``(M x)_i = c_i x_i + s sum_j k_(j->i) x_j`` over the 4 grid neighbours.

The system matrix ``A`` (``c = diag(A)``, ``k = w``, ``s = -1``) and the scalar GBP smoother are both of this
form; precomputing their fields makes one application five tensor ops, which matters on the small
multigrid levels where the cost is the number of ops, not their size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from . import blocks
from .system import GridSystem, diagonal

Weights = tuple[Tensor, Tensor, Tensor, Tensor]  # (right, left, down, up)


@dataclass
class Stencil:
    """A 5-point operator on (B, D, H, W) vectors.

    Attributes:
        centre: lam field (B, H, W) or full 2x2 blocks (B, 3, H, W) (see :mod:`.blocks`).
        k: scalar weights by the direction from sender j to receiver i: right ((y, x) onto
            (y, x+1)) and left ((y, x+1) onto (y, x)), (B, 1, H, W-1); down and up, (B, 1, H-1, W).
            The transpose uses the same weights with sender and receiver swapped.
        sign: s, the sign of the neighbour terms (-1 for A, so that its edge weights are used as
            they are, without a negated copy).
    """

    centre: Tensor
    k: Weights
    sign: float = 1.0

    def apply(self, x: Tensor) -> Tensor:
        """``M x``."""
        return self._add_neighbours(blocks.mv(self.centre, x), x, False, self.sign)

    def apply_t(self, x: Tensor) -> Tensor:
        """``M^T x`` (the centre blocks are symmetric)."""
        return self._add_neighbours(blocks.mv(self.centre, x), x, True, self.sign)

    def residual(self, r: Tensor, x: Tensor) -> Tensor:
        """``r - M x`` in five ops for scalar centres."""
        if blocks.is_full(self.centre):
            out = r - blocks.mv(self.centre, x)
        else:
            out = torch.addcmul(r, self.centre.unsqueeze(1), x, value=-1)
        return self._add_neighbours(out, x, False, -self.sign)

    def _add_neighbours(self, out: Tensor, x: Tensor, transpose: bool, sign: float) -> Tensor:
        right, left, down, up = self.k
        if transpose:
            right, left, down, up = left, right, up, down
        if torch.compiler.is_compiling():  # one expression without in-place slices: the compiler fuses it
            return out + sign * (F.pad(right * x[..., :, :-1], (1, 0)) + F.pad(left * x[..., :, 1:], (0, 1))
                                 + F.pad(down * x[..., :-1, :], (0, 0, 1, 0)) + F.pad(up * x[..., 1:, :], (0, 0, 0, 1)))
        out[..., :, 1:].addcmul_(right, x[..., :, :-1], value=sign)
        out[..., :, :-1].addcmul_(left, x[..., :, 1:], value=sign)
        out[..., 1:, :].addcmul_(down, x[..., :-1, :], value=sign)
        out[..., :-1, :].addcmul_(up, x[..., 1:, :], value=sign)
        return out


def system_stencil(sys: GridSystem) -> Stencil:
    """``A`` of a grid system as a :class:`Stencil` (``c = diag(A)``, every k = w, sign -1; views of the
    system's edge weights, no copies)."""
    wh, wv = sys.wh.unsqueeze(1), sys.wv.unsqueeze(1)
    return Stencil(diagonal(sys), (wh, wh, wv, wv), -1.0)

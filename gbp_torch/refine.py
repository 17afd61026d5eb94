"""Drop-in GBP refinement of a dense map predicted by any network (disparity, flow, depth, ...).

:class:`GridRefiner` reads an initial map (B, D, H, W) and features (B, C, H, W) from the
caller's model, predicts per-pixel data precisions, edge weights and a corrected target with
a small :class:`~gbp_torch.nets.GridFactorNet`, and solves the grid energy with
:class:`~gbp_torch.modules.MultigridGBP`. Gradients reach the features, the initial map and
the refiner's weights through the implicit backward (memory constant in the iterations), and
every pixel gets a covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .grid import MULTIGRID, GridConfig
from .modes import BackwardLike
from .modules import MultigridGBP
from .nets import GridFactorNet


@dataclass
class Refined:
    """Output of :class:`GridRefiner`.

    Attributes:
        mean: (B, D, H, W) refined map.
        cov: (B, D, D, H, W) GBP covariance blocks of each pixel (D = 1: (B, 1, 1, H, W)).
        initial: (B, D, H, W) the map that was refined (for losses on both).
    """

    mean: Tensor
    cov: Tensor
    initial: Tensor

    @property
    def var(self) -> Tensor:
        """(B, D, H, W) per-component variances (the diagonals of ``cov``)."""
        return torch.diagonal(self.cov, dim1=1, dim2=2).movedim(-1, 1)


class GridRefiner(nn.Module):
    """Refine a D-valued map (D = 1 or 2) with learned factors and multigrid GBP.

    Args:
        dim: D, values per pixel (1: disparity / depth, 2: optical flow).
        feature_channels: C of the caller's features (the initial map is appended to them).
        width, depth: size of the factor CNN.
        precision: ``"scalar"`` or ``"full"`` (D x D SPD data precision per pixel).
        data_scale, smooth_scale: scales of the precisions and edge weights (units of the map:
            ``1 / std^2`` of the initial map's error is a good data scale).
        iters, config, backward: the solve (FCG steps, :class:`~gbp_torch.grid.GridConfig`,
            backward mode; implicit by default).

    Forward: ``initial`` (B, D, H, W), ``features`` (B, C, H, W) -> :class:`Refined`. Untrained,
    the refiner returns a smoothed copy of ``initial``.
    """

    def __init__(self, dim: int, feature_channels: int, width: int = 32, depth: int = 5,
                 precision: str = "scalar", data_scale: float = 1.0, smooth_scale: float = 1.0, iters: int = 8,
                 config: GridConfig = MULTIGRID, backward: BackwardLike = "implicit"):
        super().__init__()
        if dim not in (1, 2):
            raise ValueError(f"dim must be 1 or 2 (the grid solver's D), got {dim!r}")
        self.dim, self.data_scale, self.smooth_scale = dim, float(data_scale), float(smooth_scale)
        self.factors = GridFactorNet(in_channels=feature_channels + dim, width=width, depth=depth, refine=True,
                                     dim=dim, precision=precision)
        self.gbp = MultigridGBP(iters=iters, config=config, backward=backward)

    def forward(self, initial: Tensor, features: Tensor) -> Refined:
        if initial.dim() != 4 or initial.shape[1] != self.dim:
            raise ValueError(f"initial must have shape (B, D = {self.dim}, H, W), got {tuple(initial.shape)}")
        channels = self.factors.in_channels - self.dim
        if features.dim() != 4 or features.shape[0] != initial.shape[0] or features.shape[-2:] != initial.shape[-2:] \
                or features.shape[1] != channels:
            raise ValueError(f"features must have shape (B, C = {channels}, H, W) with the B, H, W of initial "
                             f"{tuple(initial.shape)}, got {tuple(features.shape)}")
        for name, t in (("initial", initial), ("features", features)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{name} contains NaN or infinite values")
        f = self.factors(torch.cat((features, initial), 1), initial, self.data_scale, self.smooth_scale)
        z, a, edges = f.solve_args()
        res = self.gbp(z, a, edges)
        mean = res.mean.reshape(initial.shape) if self.dim == 1 else res.mean
        cov = res.var.reshape(initial.shape[0], 1, 1, *initial.shape[-2:]) if self.dim == 1 else res.var
        return Refined(mean, cov, initial)

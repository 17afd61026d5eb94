"""The factor source: per-pixel parameters of the flow energy at one warp.

At every warp the model solves

    sum_i rho_d(r_i; k_d,i) s_i + sum_(ij) w_ij rho_s(|x_i - x_j|; k_s,ij)

by IRLS, where r_i is the (linearised) constancy residual of :func:`gbp_torch.vision.flow_data_term`
with precision ``s_i a_i``. A *factor source* decides ``s``, ``k_d``, ``w`` and ``k_s`` from the
level's frame and the current data term: it is the one seam between the warping / solving loop and
whatever sets the factors. :class:`HandsetFactors` uses fixed functions of the image; a learned
source (a :class:`~gbp_torch.nets.GridFactorNet` on image features) returns the same
:class:`FlowFactors` and drops into :class:`~.handset.HandsetFlow` unchanged.

    class FactorSource(Protocol):
        def __call__(self, image1: Tensor, data: DataTerm, flow: Tensor, level: int) -> FlowFactors: ...

``image1`` is the (preprocessed) first frame at the level (B, C, H, W), ``data`` the warp's
:class:`~gbp_torch.vision.DataTerm`, ``flow`` the current estimate (B, 2, H, W), ``level`` 0 the finest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from ...grid.system import squared_differences
from ...vision import DataTerm, gaussian_blur


@dataclass
class FlowFactors:
    """Per-pixel factor parameters of one warp's energy.

    Attributes:
        data_scale: (B, H, W) multiplies the data precision ``a`` (1 / noise variance, confidence).
        k_data: (B, H, W) or a number: robust threshold on the data residual (intensity units).
        wh: (B, H, W-1) smoothness weights of horizontal edges (pixel (y, x) to (y, x+1)).
        wv: (B, H-1, W) smoothness weights of vertical edges.
        k_smooth: a number or a pair ``(k_h (B, H, W-1), k_v (B, H-1, W))``: robust threshold on
            ``|x_i - x_j|`` (pixels).
    """

    data_scale: Tensor
    k_data: Tensor | float
    wh: Tensor
    wv: Tensor
    k_smooth: Tensor | float | tuple[Tensor, Tensor]


class FactorSource(Protocol):
    """What :class:`~.handset.HandsetFlow` asks for the factors (see the module docstring)."""

    def __call__(self, image1: Tensor, data: DataTerm, flow: Tensor, level: int) -> FlowFactors: ...


@dataclass(frozen=True)
class HandsetFactorConfig:
    """Hand-set factors (tuned on synthetic pairs only).

    Attributes:
        data_scale: precision scale of the constancy residual, 1 / sigma_I^2 (0-1 intensities).
        k_data: robust data threshold (intensity units).
        smooth: smoothness weight lambda of the edges, in units of ``data_scale`` (so the balance does
            not change when data_scale does).
        edge_sigma: image-adaptive edge weight ``floor + (1 - floor) exp(-(|dI| / edge_sigma)^2)``,
            with dI the difference of the slightly blurred frame across the edge.
        edge_floor: smallest relative edge weight.
        k_smooth: robust smoothness threshold (pixels of flow difference, at every level).
    """

    data_scale: float = 1e4
    k_data: float = 0.04
    smooth: float = 0.01
    edge_sigma: float = 0.05
    edge_floor: float = 0.1
    k_smooth: float = 0.2


class HandsetFactors(nn.Module):
    """Hand-set factor source: constant data scale and thresholds, image-adaptive edge weights."""

    def __init__(self, config: HandsetFactorConfig = HandsetFactorConfig()):
        super().__init__()
        self.config = config

    def forward(self, image1: Tensor, data: DataTerm, flow: Tensor, level: int) -> FlowFactors:
        """See :class:`FactorSource`; returns a :class:`FlowFactors` on ``image1``'s grid."""
        c = self.config
        scale = torch.full_like(data.residual, c.data_scale)
        wh, wv = edge_weights(image1, c.edge_sigma, c.edge_floor)
        lam = c.smooth * c.data_scale
        return FlowFactors(data_scale=scale, k_data=c.k_data, wh=lam * wh, wv=lam * wv, k_smooth=c.k_smooth)


def edge_weights(image: Tensor, sigma: float, floor: float, blur: float = 0.7) -> tuple[Tensor, Tensor]:
    """Image-adaptive relative edge weights in [floor, 1]: (B, C, H, W) -> ((B, H, W-1), (B, H-1, W)).

    ``floor + (1 - floor) exp(-(|dI| / sigma)^2)`` with |dI| the channel norm of the difference of
    the ``blur``-smoothed image across the edge.
    """
    smooth = gaussian_blur(image, blur)
    dh, dv = squared_differences(smooth)
    return floor + (1 - floor) * torch.exp(-dh / sigma**2), floor + (1 - floor) * torch.exp(-dv / sigma**2)

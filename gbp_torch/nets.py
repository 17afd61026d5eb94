"""Factor networks: small CNNs that turn images or features into grid factor parameters.

Outputs are positive by construction (documented clamps keep gradients finite):

- data precision ``a = scale_a * (softplus(o) + floor)``          (B, H, W)
- edge weights   ``w = scale_w * (softplus(o) + floor)``          (B, H, W-1), (B, H-1, W)
- robust thresholds ``k = softplus(o) + floor``                   (B, H, W)
- refined measurement ``z = input_measurement + o`` (residual)    (B, H, W)

``floor`` (default 1e-3) keeps precisions and thresholds away from zero, so
GBP's gains and the robust weights ``k / r`` never divide by zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def positive(o: Tensor, floor: float) -> Tensor:
    """``softplus(o) + floor``: smooth, > floor, gradient never exactly zero."""
    return F.softplus(o) + floor


def conv_stack(in_channels: int, width: int, depth: int, out_channels: int) -> nn.Sequential:
    """``depth`` 3x3 convolutions (ReLU between), ``width`` channels, zero-initialised last layer."""
    layers: list[nn.Module] = []
    c = in_channels
    for _ in range(depth - 1):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
        c = width
    last = nn.Conv2d(c, out_channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class ContextBranch(nn.Module):
    """A half-resolution conv stack that widens a full-resolution net's receptive field cheaply.

    ``x`` (B, C, H, W) is padded to even H, W (edge pixels repeated), folded 2x2 into channels
    (pixel_unshuffle: (B, 4C, H/2, W/2)), run through ``depth`` convolutions of ``width``
    channels and unfolded back to (B, out_channels, H, W). At half resolution each conv
    costs a quarter per pixel and the receptive field doubles. The last conv is
    zero-initialised, so adding the branch to a trained net changes nothing until
    training moves it.
    """

    def __init__(self, in_channels: int, width: int, depth: int, out_channels: int):
        super().__init__()
        self.body = conv_stack(4 * in_channels, width, depth, 4 * out_channels)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        return F.pixel_shuffle(self.body(F.pixel_unshuffle(x, 2)), 2)[..., :h, :w]


@dataclass
class GridFactors:
    """Parameters of a D=1 grid factor graph (inputs of :func:`gbp_torch.grid.solve`).

    z: (B, H, W) targets; data_precision: (B, H, W); wh: (B, H, W-1); wv: (B, H-1, W);
    k_data: (B, H, W) robust thresholds of the data terms, or None.
    """

    z: Tensor
    data_precision: Tensor
    wh: Tensor
    wv: Tensor
    k_data: Tensor | None = None


class GridFactorNet(nn.Module):
    """CNN mapping an image / feature map to grid factors around a measurement.

    Args:
        in_channels: C of the input features.
        width, depth: size of the conv stack (parameters: about ``9 width^2 (depth - 2)``).
        refine: also predict a residual correction of the measurement.
        robust: also predict per-pixel robust thresholds of the data terms.
        floor: lower bound added to every positive output.
        context_width, context_depth: size of a :class:`ContextBranch` whose output is added
            to the features before the last conv (0: none).

    Forward: ``features`` (B, C, H, W), ``measurement`` (B, H, W), ``data_scale`` and
    ``smooth_scale`` (B,) or floats (e.g. 1 / sigma^2) -> :class:`GridFactors`.
    With the zero-initialised last layer the untrained net gives
    ``a = (log 2 + floor) data_scale``, ``w = (log 2 + floor) smooth_scale``, ``z = measurement``.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, depth: int = 5, refine: bool = True,
                 robust: bool = False, floor: float = 1e-3, context_width: int = 0, context_depth: int = 0):
        super().__init__()
        self.refine, self.robust, self.floor = refine, robust, floor
        self.body = conv_stack(in_channels, width, depth, 3 + int(refine) + int(robust))
        self.context = ContextBranch(in_channels, context_width, context_depth, width) if context_depth else None

    def forward(self, features: Tensor, measurement: Tensor, data_scale: Tensor | float = 1.0,
                smooth_scale: Tensor | float = 1.0) -> GridFactors:
        if features.dim() != 4 or measurement.dim() != 3 or features.shape[-2:] != measurement.shape[-2:]:
            raise ValueError(f"features must be (B, C, H, W) and measurement (B, H, W) of the same H, W; got "
                             f"{tuple(features.shape)} and {tuple(measurement.shape)}")
        if self.context is None:
            o = self.body(features)
        else:
            o = self.body[-1](self.body[:-1](features) + self.context(features))
        o = o.to(torch.promote_types(o.dtype, measurement.dtype))  # bfloat16 under autocast -> float32
        ds = torch.as_tensor(data_scale, dtype=o.dtype, device=o.device).reshape(-1, 1, 1)
        ss = torch.as_tensor(smooth_scale, dtype=o.dtype, device=o.device).reshape(-1, 1, 1)
        a = ds * positive(o[:, 0], self.floor)
        wh = ss * positive(o[:, 1, :, :-1], self.floor)  # edge (y, x) - (y, x+1)
        wv = ss * positive(o[:, 2, :-1, :], self.floor)  # edge (y, x) - (y+1, x)
        z = measurement + o[:, 3] if self.refine else measurement
        k = positive(o[:, -1], self.floor) if self.robust else None
        return GridFactors(z, a, wh, wv, k)

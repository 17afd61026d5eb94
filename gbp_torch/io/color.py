"""Colour coding for people to look at: disparity (turbo), standard deviation (a black-red-yellow-white
ramp) and optical flow (the Middlebury colour wheel, torchvision's ``flow_to_image``).

Unknown pixels (NaN / inf) are drawn black.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

# Turbo as a degree-5 polynomial per channel (Mikhailov, "Turbo, an improved rainbow colormap",
# Google AI blog 2019; polynomial fit by R. Du, Apache-2.0): rgb(t) = sum_k c_k t^k, t in [0, 1].
_TURBO = torch.tensor([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
], dtype=torch.float64)


def turbo(t: Tensor) -> Tensor:
    """The turbo colour map of values in [0, 1] (clipped): (...,) -> (3, ...) float32 in [0, 1]."""
    # the fit is nearly black at 0 (true turbo starts dark blue, and black means unknown here):
    # evaluate it on [0.02, 1], where it starts at about (0.21, 0.14, 0.34)
    t = 0.02 + 0.98 * t.detach().to(torch.float64).clamp(0, 1)
    powers = torch.stack([t**k for k in range(6)])  # (6, ...)
    rgb = torch.einsum("ck,k...->c...", _TURBO, powers)
    return rgb.clamp(0, 1).to(torch.float32)


def _hot(t: Tensor) -> Tensor:
    """Black -> red -> yellow -> white, t in [0, 1]: (...,) -> (3, ...)."""
    t = t.detach().float().clamp(0, 1)
    return torch.stack([(3 * t).clamp(0, 1), (3 * t - 1).clamp(0, 1), (3 * t - 2).clamp(0, 1)])


def _range(x: Tensor, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    finite = x[torch.isfinite(x)]
    lo = float(finite.min()) if vmin is None and finite.numel() else (0.0 if vmin is None else float(vmin))
    hi = float(finite.max()) if vmax is None and finite.numel() else (1.0 if vmax is None else float(vmax))
    return lo, hi


def _squeeze_map(x: Tensor, what: str) -> Tensor:
    x = torch.as_tensor(x).detach().cpu()
    while x.dim() > 2 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 2:
        raise ValueError(f"{what} must be (H, W) (or with leading 1s), got {tuple(x.shape)}")
    return x.float()


def colorize(x: Tensor, vmin: float | None = None, vmax: float | None = None, cmap: str = "turbo") -> Tensor:
    """(H, W) values -> (3, H, W) float RGB in [0, 1]; ``vmin`` / ``vmax`` default to the finite
    min / max; non-finite pixels are black. ``cmap``: ``"turbo"`` or ``"hot"``."""
    x = _squeeze_map(x, "map")
    lo, hi = _range(x, vmin, vmax)
    t = (x - lo) / (hi - lo) if hi > lo else torch.zeros_like(x)
    rgb = {"turbo": turbo, "hot": _hot}[cmap](t.nan_to_num(0.0))
    return torch.where(torch.isfinite(x), rgb, torch.zeros_like(rgb))


def write_disparity_color(path: str | os.PathLike, disparity: Tensor, vmin: float | None = None,
                          vmax: float | None = None) -> None:
    """A turbo-coded 8-bit PNG of a (H, W) disparity: ``vmin`` (default 0) is dark blue, ``vmax``
    (default the largest finite disparity) dark red; unknown pixels black."""
    from .image import write_image

    d = _squeeze_map(disparity, "disparity")
    write_image(path, colorize(d, 0.0 if vmin is None else vmin, vmax, "turbo"))


def write_std_map(path: str | os.PathLike, std: Tensor, vmax: float | None = None) -> float:
    """A black-red-yellow-white 8-bit PNG of a (H, W) standard deviation: 0 is black, ``vmax``
    (default the 99th percentile of the finite values) and above white, +inf (nothing known) white too;
    NaN black. Returns the ``vmax`` used."""
    from .image import write_image

    s = _squeeze_map(std, "std")
    top = finite_quantile(s, limit=1_000_000) if vmax is None else vmax
    write_image(path, colorize(s.masked_fill(s == float("inf"), top), 0.0, top, "hot"))
    return top


def finite_quantile(x: Tensor, q: float = 0.99, limit: int = 1 << 24) -> float:
    """The ``q`` quantile of the finite values of ``x`` (of an even subsample of at most ``limit`` of them when
    there are more: torch.quantile takes at most 2^24), 1.0 when there are none: a display range that a few
    huge or infinite values do not set."""
    finite = x[torch.isfinite(x)]
    if finite.numel() == 0:
        return 1.0
    return float(torch.quantile(finite[::-(-finite.numel() // limit)][:limit], q))


def flow_to_color(flow: Tensor) -> Tensor:
    """(2, H, W) flow -> (3, H, W) uint8 RGB by torchvision's ``flow_to_image`` (hue = direction,
    saturation = magnitude relative to the largest finite one); unknown pixels black."""
    from torchvision.utils import flow_to_image

    f = torch.as_tensor(flow).detach().cpu().float()
    if f.dim() != 3 or f.shape[0] != 2:
        raise ValueError(f"flow must be (2, H, W), got {tuple(f.shape)}")
    valid = torch.isfinite(f).all(0)
    img = flow_to_image(torch.where(valid, f, torch.zeros_like(f)))
    return torch.where(valid, img, torch.zeros_like(img))


def write_flow_color(path: str | os.PathLike, flow: Tensor) -> None:
    """The colour-coded flow as an 8-bit PNG (see :func:`flow_to_color`)."""
    from .image import write_png8

    write_png8(path, flow_to_color(flow))

"""Regular textures for training the non-local denoiser: what block matching is for.

Natural photos of Train400 hold few regular patterns, so a model trained on their crops learns to trust
its local network over its non-local factors, and loses to BM3D on fabric, brick or railings (Barbara's
scarf). :func:`regular_texture` renders such patterns from Train400 pixels:

- *stripes*: a 1-D profile (a row of a crop, made periodic) swept along a random direction, its
  period (4-14 px) drifting across the patch as under perspective;
- *lattice*: a small crop (5-16 px a side) tiled, then rotated, scaled and sheared (weaves, tiles, bricks);
- *checks*: two stripe patterns multiplied (plaids).

Each gets a random contrast, mean and smooth shading; with :func:`composite` it fills a random region
of a natural crop (a soft-edged half-plane or ellipse), so the model also learns where a pattern stops.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

KINDS = ("stripes", "lattice", "checks")


def _u(g: torch.Generator | None, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def _randint(g: torch.Generator | None, lo: int, hi: int) -> int:
    """An int in [lo, hi)."""
    return int(torch.randint(lo, hi, (), generator=g))


def _coords(size: int) -> tuple[Tensor, Tensor]:
    """(y, x) pixel coordinates centred on the patch, (size, size) each."""
    r = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    return torch.meshgrid(r, r, indexing="ij")


def _profile(image: Tensor, g: torch.Generator | None, period: int) -> Tensor:
    """A periodic 1-D profile of ``period`` samples from a random row of ``image`` (H, W), its ends blended so
    that it wraps without a jump, normalised to zero mean and unit range."""
    h, w = image.shape
    y, x = _randint(g, 0, h), _randint(g, 0, w - 2 * period)
    row = image[y, x:x + 2 * period].float()
    ramp = torch.linspace(0, 1, period)
    prof = row[:period] * ramp + row[period:] * (1 - ramp)  # prof[0] ~ row[period], prof[-1] ~ row[period - 1]
    prof = prof - prof.mean()
    return prof / prof.abs().max().clamp_min(1e-3)


def _sweep(prof: Tensor, phase: Tensor) -> Tensor:
    """The periodic profile (P,) read at continuous positions ``phase`` (in samples), linearly interpolated."""
    p = prof.shape[0]
    lo = torch.floor(phase)
    frac = phase - lo
    i0 = lo.long().remainder(p)
    return prof[i0] * (1 - frac) + prof[(i0 + 1).remainder(p)] * frac


def _stripes(image: Tensor, g: torch.Generator | None, size: int) -> Tensor:
    y, x = _coords(size)
    period = _u(g, 4.0, 14.0)
    prof = _profile(image, g, max(4, round(period)))
    angle = _u(g, 0.0, math.pi)
    drift = _u(g, -0.4, 0.4) / size  # relative change of the period per pixel across the stripes
    along = x * math.cos(angle) + y * math.sin(angle)
    across = -x * math.sin(angle) + y * math.cos(angle)
    phase = along * prof.shape[0] / period / (1 + drift * across)
    return _sweep(prof, phase + _u(g, 0, prof.shape[0]))


def _lattice(image: Tensor, g: torch.Generator | None, size: int) -> Tensor:
    h, w = image.shape
    p, q = _randint(g, 5, 17), _randint(g, 5, 17)
    y0, x0 = _randint(g, 0, h - p), _randint(g, 0, w - q)
    tile = image[y0:y0 + p, x0:x0 + q].float()
    tile = tile - tile.mean()
    tile = tile / tile.abs().max().clamp_min(1e-3)
    reps = 2 * size // min(p, q) + 4
    big = tile.repeat(reps, reps)[None, None]
    angle, scale, shear = _u(g, -math.pi / 4, math.pi / 4), _u(g, 0.8, 1.25), _u(g, -0.2, 0.2)
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    theta = torch.tensor([[c, -s + shear * c, 0.0], [s, c + shear * s, 0.0]]) * size / big.shape[-1]
    theta[:, 2] = torch.tensor([_u(g, -0.5, 0.5), _u(g, -0.5, 0.5)])
    grid = F.affine_grid(theta[None], [1, 1, size, size], align_corners=False)
    return F.grid_sample(big, grid, mode="bicubic", padding_mode="reflection", align_corners=False)[0, 0]


def regular_texture(image: Tensor, size: int, generator: torch.Generator | None = None,
                    kind: str | None = None) -> Tensor:
    """A (1, size, size) regular texture in [0, 1] rendered from the pixels of ``image`` (H, W), uint8 or in
    [0, 1] (at least 32 x 32); ``kind`` one of :data:`KINDS` (None: drawn at random)."""
    g = generator
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    if min(image.shape) < 32:
        raise ValueError(f"the source image must be at least 32 x 32, got {tuple(image.shape)}")
    kind = kind or KINDS[_randint(g, 0, len(KINDS))]
    if kind == "stripes":
        pattern = _stripes(image, g, size)
    elif kind == "lattice":
        pattern = _lattice(image, g, size)
    elif kind == "checks":
        pattern = 0.5 * (_stripes(image, g, size) + 1) * (_stripes(image, g, size) + 1) - 1
    else:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    y, x = _coords(size)
    shading = 1 + _u(g, -0.3, 0.3) * y / size + _u(g, -0.3, 0.3) * x / size
    contrast, mean = _u(g, 0.08, 0.4), _u(g, 0.25, 0.75)
    return ((mean + contrast * pattern) * shading).clamp(0, 1)[None]


def composite(texture: Tensor, natural: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``texture`` (1, S, S) inside a random soft-edged region (a half-plane or an ellipse) of ``natural``
    (1, S, S), the rest natural; both in [0, 1]."""
    g = generator
    size = texture.shape[-1]
    y, x = _coords(size)
    if float(torch.rand((), generator=g)) < 0.5:
        angle = _u(g, 0.0, 2 * math.pi)
        signed = x * math.cos(angle) + y * math.sin(angle) - _u(g, -0.3, 0.3) * size
    else:
        cy, cx = _u(g, -0.25, 0.25) * size, _u(g, -0.25, 0.25) * size
        ry, rx = _u(g, 0.25, 0.6) * size, _u(g, 0.25, 0.6) * size
        signed = (torch.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2) - 1) * min(ry, rx)
    inside = torch.sigmoid(-signed / _u(g, 0.5, 2.0))
    return inside * texture + (1 - inside) * natural

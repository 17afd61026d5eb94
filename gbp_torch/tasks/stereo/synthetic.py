"""Synthetic rectified stereo pairs with exact disparity and occlusion masks, from any texture.

A scene is a slanted background plane (optionally a wall and a floor that recedes toward the
horizon, the steep vertical slope of ground planes) plus ``layers`` fronto-parallel or slanted foreground
layers (ellipses and rectangles in left-image coordinates), each a plane of disparity
``d(x, y) = a + b x + c y`` carrying its own crop of the texture (rolled / flipped copies,
random contrast). The left view shows at each pixel the layer of largest disparity (nearest)
that covers it; the right view is rendered exactly too: right pixel ``x_r`` sees on layer k
the left-coordinate point ``x_l = (x_r + a + c y) / (1 - b)`` (the solution of
``x_l - d(x_l) = x_r``), again nearest wins. Both views sample the texture bicubically at
their continuous surface coordinates, so disparities are sub-pixel exact. Then photometric
changes on the right view (gain, bias) and Gaussian noise on both.

``nonocc`` marks left pixels whose surface point is visible in the right view (not hidden by a
nearer layer there and not outside it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..draws import uniform


@dataclass(frozen=True)
class SyntheticConfig:
    """Ranges of the random scene (uniform draws).

    Attributes:
        layers: (min, max) number of foreground layers.
        slant: max |b|, |c| of the foreground planes (background: twice this, capped by the range).
        contrast: (min, max) texture contrast factor per layer (low values: weak texture).
        gain: (min, max) multiplicative change of the right view.
        bias: max |additive change| of the right view.
        noise: (min, max) std of the Gaussian noise on both views (0-1 intensities).
        tint: > 0 renders colour pairs: each layer's texture (a gray one repeated as R, G, B) times
            ``1 + tint * u`` per channel, u uniform in [-1, 1] per layer and channel, so that layers
            differ in colour as objects do (0: the texture's own channels; draws nothing).
        floor: probability that the scene has a floor: a plane below a horizon row whose disparity
            grows downward by :attr:`floor_slope` px per row from the background's at the horizon to
            at most ``max_disp`` at the bottom (a ground plane seen at a grazing angle); 0: never
            (draws nothing, so scenes without it are those of earlier versions).
        floor_slope: (min, max) of the floor's vertical disparity slope, px per row.
        supersample: odd s >= 1: each view is rendered on an s x s finer grid of samples and each pixel is the mean of
            its s^2 samples, as a camera pixel integrates the light over its area: pixels on a depth edge mix both
            surfaces, as real ones do (1: point samples, every pixel shows one surface). The disparity and the
            occlusion mask are those of the pixel centres (the middle sample). Draws nothing.
        camouflage: probability that a foreground layer takes the background's contrast and tint (its own patch of
            the texture), so that its border is a depth edge with hardly an appearance edge, as a real object before
            a similar backdrop (0: every layer its own look; draws nothing).
        thin: probability that a foreground shape is a thin bar, 1-3 px wide (a cable, a lamp's arm; 0: draws
            nothing).
    """

    layers: tuple[int, int] = (1, 4)
    slant: float = 0.15
    contrast: tuple[float, float] = (0.3, 1.0)
    gain: tuple[float, float] = (0.85, 1.15)
    bias: float = 0.05
    noise: tuple[float, float] = (0.0, 0.02)
    tint: float = 0.0
    floor: float = 0.0
    floor_slope: tuple[float, float] = (0.3, 1.0)
    supersample: int = 1
    camouflage: float = 0.0
    thin: float = 0.0

    def __post_init__(self) -> None:
        s = self.supersample
        if isinstance(s, bool) or not isinstance(s, int) or s < 1 or s % 2 == 0:
            raise ValueError(f"SyntheticConfig.supersample must be an odd int >= 1, got {s!r}")
        for name in ("camouflage", "thin"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"SyntheticConfig.{name} must be a probability in [0, 1], got {value!r}")


def _plane(g: torch.Generator, h: int, w: int, lo: float, hi: float, slant: float) -> Tensor:
    """(a, b, c) of a plane whose values over the image stay in [lo, hi] with |b|, |c| <= slant."""
    b, c = uniform(g, -slant, slant, (2,)).tolist()
    span = abs(b) * (w - 1) + abs(c) * (h - 1)
    if span > hi - lo:  # too steep for the range: flatten
        s = (hi - lo) / span
        b, c, span = b * s, c * s, hi - lo
    base = float(uniform(g, lo, hi - span))  # minimum of the plane over the image
    a = base - min(0.0, b * (w - 1)) - min(0.0, c * (h - 1))
    return torch.tensor([a, b, c], dtype=torch.float64)


def _floor(g: torch.Generator, background: Tensor, h: int, w: int, max_disp: int,
           slope: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """(plane (a, b, c), rectangle shape row) of a floor below a horizon: disparity from the background's
    at the horizon (middle column) down to at most max_disp at the bottom row, c px per row, b = 0."""
    c = float(uniform(g, *slope))
    a0, b0, c0 = background.tolist()
    bottom = a0 + b0 * (w - 1) / 2 + c0 * (h - 1)  # the background's disparity at the bottom row's middle
    rows = min(0.6 * h, max(2.0, (max_disp - bottom) / max(c - c0, 1e-6)))  # the floor's height in rows
    horizon = h - 1 - float(uniform(g, 0.5, 1.0)) * rows
    start = a0 + b0 * (w - 1) / 2 + c0 * horizon
    plane = torch.tensor([start - c * horizon, 0.0, c], dtype=torch.float64)
    shape = torch.tensor([1.0, (w - 1) / 2, (horizon + h) / 2, w, (h - horizon) / 2], dtype=torch.float64)
    return plane, shape


def _shapes(g: torch.Generator, n: int, h: int, w: int) -> Tensor:
    """n shapes as rows (kind (0 ellipse / 1 rectangle), cx, cy, rx, ry)."""
    kind = (torch.rand(n, generator=g) < 0.5).double()
    cx, cy = uniform(g, 0.1, 0.9, (n,)) * w, uniform(g, 0.1, 0.9, (n,)) * h
    rx, ry = uniform(g, 0.08, 0.3, (n,)) * w, uniform(g, 0.08, 0.3, (n,)) * h
    return torch.stack([kind, cx, cy, rx, ry], 1)


def _inside(shape: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Whether points (x, y) (any broadcast shape) lie in a shape row of :func:`_shapes`."""
    kind, cx, cy, rx, ry = shape.tolist()
    u, v = (x - cx) / rx, (y - cy) / ry
    return (u.abs() <= 1) & (v.abs() <= 1) if kind else (u * u + v * v <= 1)


def _sample(texture: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Bicubic texture (C, H, W) values at continuous pixel coordinates x, y (H, W) -> (C, H, W)."""
    h, w = texture.shape[-2:]
    grid = torch.stack([2 * x / (w - 1) - 1, 2 * y / (h - 1) - 1], -1)[None].float()
    out = F.grid_sample(texture[None].float(), grid, mode="bicubic", padding_mode="reflection", align_corners=True)
    return out[0]


def _layer_textures(texture: Tensor, g: torch.Generator, n: int, contrast: tuple[float, float],
                    tint: float = 0.0, camouflage: float = 0.0) -> list[Tensor]:
    """n variants of the texture: rolled, maybe flipped, contrast-scaled about its mean (and tinted; a camouflaged
    layer with the first layer's contrast and tint: see :class:`SyntheticConfig`)."""
    h, w = texture.shape[-2:]
    looks = []
    for _ in range(n):  # a handful of layers
        t = torch.roll(texture, (int(torch.randint(h, (1,), generator=g)), int(torch.randint(w, (1,), generator=g))),
                       (-2, -1))
        if torch.rand(1, generator=g) < 0.5:
            t = t.flip(-1)
        k = float(uniform(g, *contrast))
        gains = (1 + tint * uniform(g, -1.0, 1.0, (3,)).float().view(3, 1, 1)) if tint > 0 else None
        looks.append([t, k, gains])
    if camouflage > 0:  # drawn after the looks, so that scenes without it are those of earlier versions
        hidden = torch.rand(n, generator=g) < camouflage
        for look, same in zip(looks[1:], hidden[1:].tolist()):
            if same:
                look[1:] = looks[0][1:]
    out = []
    for t, k, gains in looks:
        m = t.mean()
        t = (t - m) * k + m
        if gains is not None:
            t = t.expand(3, h, w) * gains
        out.append(t.clamp(0, 1))
    return out


def _render(planes: Tensor, shapes: list[Tensor | None], textures: list[Tensor], h: int, w: int,
            right: bool, supersample: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """Image (C, H, W), disparity (H, W) and the left x coordinate (H, W) of the nearest layer per pixel; with
    ``supersample`` s the image is the mean over s x s samples per pixel, the others are the pixel centres'."""
    s = supersample
    ys, xs = ((torch.arange(s * n, dtype=torch.float64) + 0.5) / s - 0.5 for n in (h, w))
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # sample positions in pixels; each s x s block's middle: its centre
    best_d = torch.full_like(xx, -1e9)
    best_x = xx.clone()
    image = torch.zeros(textures[0].shape[0], s * h, s * w)
    for k in range(planes.shape[0]):  # a handful of layers, each vectorised over pixels
        a, b, c = planes[k].tolist()
        xl = (xx + a + c * yy) / (1 - b) if right else xx
        d = a + b * xl + c * yy
        cover = torch.ones_like(d, dtype=torch.bool) if shapes[k] is None else _inside(shapes[k], xl, yy)
        win = cover & (d > best_d)
        best_d = torch.where(win, d, best_d)
        best_x = torch.where(win, xl, best_x)
        image = torch.where(win[None], _sample(textures[k], xl, yy), image)
    if s == 1:
        return image, best_d, best_x
    centre = (slice(s // 2, None, s), slice(s // 2, None, s))
    return F.avg_pool2d(image[None], s)[0], best_d[centre], best_x[centre]


def synthetic_pair(texture: Tensor, generator: torch.Generator, max_disp: int,
                   config: SyntheticConfig | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """A random scene rendered as a rectified pair.

    Args:
        texture: (H, W) or (C, H, W) in [0, 1]; the views have its size.
        generator: a seeded ``torch.Generator`` (CPU): the same seed gives the same pair.
        max_disp: disparities lie in [0, max_disp] (int, 1 <= max_disp < W).
        config: :class:`SyntheticConfig` ranges.

    Returns:
        ``(left (C, H, W), right (C, H, W), disp_left (1, H, W) float32 px, nonocc (1, H, W) bool)``
        (C = 3 with ``config.tint > 0``),
        images in [0, 1]; ``left(x, y)`` matches ``right(x - disp_left, y)``.
    """
    config = config or SyntheticConfig()
    if not isinstance(texture, Tensor) or texture.dim() not in (2, 3):
        raise ValueError(f"texture must be a (H, W) or (C, H, W) tensor, got {tuple(getattr(texture, 'shape', ()))}")
    tex = texture[None] if texture.dim() == 2 else texture
    h, w = tex.shape[-2:]
    if isinstance(max_disp, bool) or not isinstance(max_disp, int) or not 0 < max_disp < w:
        raise ValueError(f"max_disp must be an int in [1, W - 1] = [1, {w - 1}], got {max_disp!r}")
    g = generator
    n = int(torch.randint(config.layers[0], config.layers[1] + 1, (1,), generator=g))
    bg_hi = float(uniform(g, 0.1, 0.6)) * max_disp
    planes = [_plane(g, h, w, 0.0, bg_hi, min(2 * config.slant, 0.5 * bg_hi / w + 1e-9))]
    for _ in range(n):  # foreground planes in front of the background's range
        lo = float(uniform(g, bg_hi, max_disp))
        planes.append(_plane(g, h, w, lo, float(uniform(g, lo, max_disp)), config.slant))
    fore = _shapes(g, n, h, w)  # rows (kind, cx, cy, rx, ry)
    if config.thin > 0:  # drawn after the shapes, so that scenes without thin bars are those of earlier versions
        bars = torch.rand(n, generator=g) < config.thin
        width, along_y = uniform(g, 0.5, 1.5, (n,)), torch.rand(n, generator=g) < 0.5
        fore[bars, 0] = 1.0  # a rectangle, 1-3 px across in x (rx) or in y (ry)
        fore[bars & along_y, 3] = width[bars & along_y]
        fore[bars & ~along_y, 4] = width[bars & ~along_y]
    shapes = [None] + list(fore)
    if config.floor > 0 and float(torch.rand(1, generator=g)) < config.floor:
        plane, shape = _floor(g, planes[0], h, w, max_disp, config.floor_slope)
        planes.insert(1, plane)
        shapes.insert(1, shape)
    planes = torch.stack(planes)
    textures = _layer_textures(tex, g, len(planes), config.contrast, config.tint, config.camouflage)
    left, d_left, _ = _render(planes, shapes, textures, h, w, False, config.supersample)
    right, d_right, xl_right = _render(planes, shapes, textures, h, w, True, config.supersample)
    # nonocc: the right pixel at x - d shows the same surface point (nearest-pixel lookup of its x_l)
    xx = torch.arange(w, dtype=torch.float64).expand(h, w)
    xr = xx - d_left
    inside = xr >= 0
    xr_i = xr.round().clamp(0, w - 1).long()
    seen = xl_right.gather(1, xr_i)
    nonocc = inside & ((seen - xx).abs() < 1.0)
    gain = float(uniform(g, *config.gain))
    bias = float(uniform(g, -config.bias, config.bias))
    sl, sr = (float(s) for s in uniform(g, *config.noise, (2,)))
    noise_l = torch.randn(left.shape, generator=g) * sl
    noise_r = torch.randn(right.shape, generator=g) * sr
    left = (left + noise_l).clamp(0, 1)
    right = (right * gain + bias + noise_r).clamp(0, 1)
    return left, right, d_left[None].float(), nonocc[None]

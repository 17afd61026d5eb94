"""Synthetic optical-flow pairs with exact ground truth: layered affine + smooth elastic motions of a texture.

Model. Layer 0 (the background) covers the whole frame; layers 1..K-1 are elliptic blobs with wavy
borders, each nearer than the previous one. Layer m moves the frame-1 point x to
``x + f_m(x)`` in frame 2, with ``f_m(x) = (A_m - I)(x - c_m) + t_m + e_m(x)``: an affine motion about
the layer centre plus a smooth elastic field ``e_m`` (a few random low-frequency sinusoids).
Each layer carries its own texture (the input image under one of the 8 flips / transposes, blurred
slightly, then given the layer's own contrast and brightness, so that
a layer's border is an appearance edge as an object's is in a real scene) in frame-1 coordinates.

- frame 1 at x: the nearest layer whose support contains x; its flow is the ground truth there.
- frame 2 at y: for every layer m the frame-1 point ``g_m(y)`` with ``g_m(y) + f_m(g_m(y)) = y``
  (fixed-point iteration, a contraction for the moderate motions drawn here); the nearest layer
  whose support contains ``g_m(y)`` paints ``texture_m(g_m(y))``.
- a frame-1 pixel of layer l is *occluded* when a nearer layer covers its frame-2 position, and
  *outside* when that position leaves the frame; ``valid`` is neither.

So ``frame2(x + flow(x)) = frame1(x)`` on valid pixels, up to the photometric change (gain and bias on
frame 2, a smooth multiplicative shading) and the noise. Everything is drawn from the caller's
``torch.Generator``; the work is vectorised over layers and pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from ...vision import gaussian_blur
from ...vision.sampling import sample
from ..draws import uniform

#: Fixed-point iterations used to invert a layer's motion (contraction factor <~ 0.4 for the motions drawn).
INVERSE_ITERS = 40
#: ... stopped once no point moves by more than this (pixels).
INVERSE_TOL = 1e-9


class FlowPair(NamedTuple):
    """One synthetic pair; unpacks as ``frame1, frame2, flow, valid, occluded``.

    frame1, frame2: (C, H, W) in [0, 1]; flow: (2, H, W) pixels, frame1(x) ~ frame2(x + flow(x));
    valid: (H, W) bool, non-occluded and inside frame 2; occluded: (H, W) bool, covered in frame 2
    by a nearer layer.
    """

    frame1: Tensor
    frame2: Tensor
    flow: Tensor
    valid: Tensor
    occluded: Tensor


@dataclass(frozen=True)
class Layers:
    """Explicit layer parameters (K layers, layer 0 = background, larger index = nearer).

    Attributes:
        affine: (K, 2, 2) matrices A_m (identity = pure translation / elastic).
        centre: (K, 2) centres c_m (x, y) in frame pixels, the affine motion's pivot.
        translation: (K, 2) t_m in pixels.
        elastic: (K, 2, J) amplitudes (pixels) of J sinusoids per flow component, or None;
        wavevector: (K, 2, J, 2) their wave vectors (radians per pixel, x and y);
        phase: (K, 2, J) their phases. ``e_m,c(x) = sum_j elastic[m, c, j] sin(wavevector[m, c, j] . x + phase)``.
        radii: (K, 2) ellipse semi-axes (pixels) of the supports; layer 0's is ignored (whole frame).
        angle: (K,) ellipse orientation, radians.
        wobble: (K, 4) amplitudes of the border's angular harmonics 2..5 (relative radius).
        texture_op: (K,) ints 0..7, the flip / transpose applied to the texture of each layer.
        contrast, offset: (K,) each layer's texture is ``m + contrast (T - m) + offset``, m the texture's
            mean (None: contrast 1 / offset 0).
        tint: (K, 3) per-channel gains of each layer's texture (a gray texture repeated as R, G, B), or None
            (the texture's own channels).
    """

    affine: Tensor
    centre: Tensor
    translation: Tensor
    elastic: Tensor | None
    wavevector: Tensor | None
    phase: Tensor | None
    radii: Tensor
    angle: Tensor
    wobble: Tensor
    texture_op: Tensor
    contrast: Tensor | None = None
    offset: Tensor | None = None
    tint: Tensor | None = None


@dataclass(frozen=True)
class SyntheticFlowConfig:
    """Ranges of the random draws of :func:`synthetic_flow_pair` (uniform unless said otherwise).

    Attributes:
        layers: (min, max) number of foreground layers.
        max_translation: |t| per component, pixels (background and foreground).
        max_rotation: degrees; max_scale: |log scale|; max_shear: off-diagonal size.
        elastic: max amplitude (pixels) of each of the elastic field's ``waves`` sinusoids per component;
        wavelength: (min, max) of their wavelengths as a fraction of the frame's larger side.
        radius: (min, max) support semi-axes as a fraction of the frame's smaller side.
        gain, bias: frame 2's photometric change ``gain * I + bias`` (gain drawn log-uniformly).
        shading: max amplitude of a smooth multiplicative shading of frame 2.
        noise: (min, max) Gaussian noise sigma on both frames (0-1 intensity scale).
        blur: (min, max) sigma of the texture pre-blur, drawn per pair: it band-limits the texture, from
            nearly exact interpolation (0.6) to content near the sampling limit (0.3), where warping errs
            as it does on sharp real frames (the flow stays exact: frames sample the blurred texture).
        layer_contrast: max |log contrast| of a foreground layer's texture (log-uniform; background: 1).
        layer_offset: max |brightness offset| of a foreground layer's texture (background: 0).
        tint: > 0 renders colour frames: each layer's texture times ``1 + tint * u`` per R, G, B channel, u
            uniform in [-1, 1] per layer and channel, so that layers differ in colour as objects do (0: the
            image's own channels; draws nothing).
        defocus: > 0: both rendered frames are blurred by a Gaussian of sigma uniform in [0, defocus] px, drawn per
            pair, before the noise: an optical blur that, unlike the texture pre-blur, also softens the layers'
            borders, so that pixels there mix both layers as a camera's do (0: sharp borders; draws nothing).
    """

    layers: tuple[int, int] = (1, 3)
    max_translation: float = 5.0
    max_rotation: float = 4.0
    max_scale: float = 0.05
    max_shear: float = 0.04
    elastic: float = 0.8
    waves: int = 3
    wavelength: tuple[float, float] = (0.6, 2.0)
    radius: tuple[float, float] = (0.12, 0.3)
    gain: tuple[float, float] = (0.85, 1.15)
    bias: float = 0.05
    shading: float = 0.05
    noise: tuple[float, float] = (0.0, 0.01)
    blur: tuple[float, float] = (0.3, 0.6)
    layer_contrast: float = 0.4
    layer_offset: float = 0.15
    tint: float = 0.0
    defocus: float = 0.0


#: Large motions (translations up to 16 px per component, rotations up to 8 degrees): the second kind of pair of the
#: tuning script (``benchmarks/flow_tune.py --synthetic max_translation=16.0 max_rotation=8.0``) and half of the pairs
#: that calibrate the covariance (``train.flow.export``, ``benchmarks/flow_calibrate.py``), so that the calibration
#: has seen the larger errors of larger motions, not only those of the training range; training can mix them in
#: (``data.large_motion``, :class:`train.flow.datamodule.FlowDataModule`).
LARGE_MOTION = SyntheticFlowConfig(max_translation=16.0, max_rotation=8.0)


def random_layers(height: int, width: int, generator: torch.Generator,
                  config: SyntheticFlowConfig = SyntheticFlowConfig()) -> Layers:
    """Draw the :class:`Layers` of one pair of size (H, W) from ``generator``."""
    k = 1 + int(torch.randint(config.layers[0], config.layers[1] + 1, (1,), generator=generator))
    rot = torch.deg2rad(uniform(generator, -config.max_rotation, config.max_rotation, (k,)))
    scale = torch.exp(uniform(generator, -config.max_scale, config.max_scale, (k,)))
    shear = uniform(generator, -config.max_shear, config.max_shear, (k,))
    cos, sin = torch.cos(rot), torch.sin(rot)
    affine = torch.stack((torch.stack((cos, -sin + shear), -1), torch.stack((sin, cos), -1)), -2) * scale[:, None, None]
    size = torch.tensor([width, height], dtype=torch.float64)
    centre = uniform(generator, 0.15, 0.85, (k, 2)) * size
    translation = uniform(generator, -config.max_translation, config.max_translation, (k, 2))
    waves = config.waves
    elastic = uniform(generator, -config.elastic, config.elastic, (k, 2, waves))
    length = uniform(generator, *config.wavelength, (k, 2, waves)) * max(height, width)
    direction = uniform(generator, 0, 2 * math.pi, (k, 2, waves))
    wavevector = torch.stack((torch.cos(direction), torch.sin(direction)), -1) * (2 * math.pi / length)[..., None]
    phase = uniform(generator, 0, 2 * math.pi, (k, 2, waves))
    side = min(height, width)
    radii = uniform(generator, *config.radius, (k, 2)) * side
    angle = uniform(generator, 0, math.pi, (k,))
    wobble = uniform(generator, -0.12, 0.12, (k, 4))
    texture_op = torch.randint(0, 8 if height == width else 4, (k,), generator=generator)
    texture_op[0] = 0
    contrast = torch.exp(uniform(generator, -config.layer_contrast, config.layer_contrast, (k,)))
    offset = uniform(generator, -config.layer_offset, config.layer_offset, (k,))
    contrast[0], offset[0] = 1.0, 0.0
    tint = 1 + config.tint * uniform(generator, -1.0, 1.0, (k, 3)) if config.tint > 0 else None
    return Layers(affine, centre, translation, elastic, wavevector, phase, radii, angle, wobble, texture_op,
                  contrast, offset, tint)


def layer_motion(layers: Layers, points: Tensor) -> Tensor:
    """f_m at frame-1 points ``points`` (K, 2, h, w) (x, y pixels) -> (K, 2, h, w) displacements."""
    rel = points - layers.centre.to(points)[:, :, None, None]
    eye = torch.eye(2, dtype=points.dtype)
    out = torch.einsum("kij,kjhw->kihw", layers.affine.to(points) - eye, rel)
    out = out + layers.translation.to(points)[:, :, None, None]
    if layers.elastic is not None:
        out = out + _elastic(layers, points)
    return out


def _elastic(layers: Layers, points: Tensor) -> Tensor:
    """The sinusoidal elastic fields of the layers at points (K, 2, h, w) -> (K, 2, h, w)."""
    k = layers.wavevector.to(points)  # (K, 2, J, 2)
    arg = torch.einsum("kcjd,kdhw->kcjhw", k, points) + layers.phase.to(points)[..., None, None]
    return (layers.elastic.to(points)[..., None, None] * torch.sin(arg)).sum(2)


def inverse_points(layers: Layers, targets: Tensor) -> Tensor:
    """Solve ``x + f_m(x) = y`` for every layer m at frame-2 points ``targets`` (2, h, w) -> x (K, 2, h, w)."""
    y = targets.expand(layers.affine.shape[0], -1, -1, -1)
    x = y.clone()
    for it in range(INVERSE_ITERS):
        new = y - layer_motion(layers, x)
        if it % 4 == 3 and float((new - x).abs().max()) < INVERSE_TOL:
            return new
        x = new
    return x


def support(layers: Layers, points: Tensor) -> Tensor:
    """Whether frame-1 points (K, 2, h, w) lie inside each layer's support, (K, h, w) bool (layer 0: all)."""
    rel = points - layers.centre.to(points)[:, :, None, None]
    cos, sin = torch.cos(layers.angle).to(points), torch.sin(layers.angle).to(points)
    px = cos[:, None, None] * rel[:, 0] + sin[:, None, None] * rel[:, 1]
    py = -sin[:, None, None] * rel[:, 0] + cos[:, None, None] * rel[:, 1]
    radii = layers.radii.to(points)
    rho = torch.sqrt((px / radii[:, 0, None, None]) ** 2 + (py / radii[:, 1, None, None]) ** 2)
    theta = torch.atan2(py, px)
    harmonics = torch.arange(2, 6, dtype=points.dtype)
    border = 1 + (layers.wobble.to(points)[:, :, None, None] * torch.cos(harmonics[None, :, None, None]
                                                                        * theta[:, None])).sum(1)
    inside = rho < border
    inside[0] = True
    return inside


def _topmost(inside: Tensor) -> Tensor:
    """Index of the nearest layer whose support holds, (K, h, w) bool -> (h, w) long."""
    k = inside.shape[0]
    order = torch.arange(k, device=inside.device).view(k, 1, 1)
    return torch.where(inside, order, torch.full_like(order, -1)).amax(0)


def _textures(image: Tensor, layers: Layers, blur: float) -> Tensor:
    """The input (C, H, W) under each layer's flip / transpose op, blurred, in the layer's contrast and
    brightness: (K, C, H, W)."""
    out = []
    for op in layers.texture_op.tolist():
        t = image.transpose(-1, -2) if op >= 4 else image
        if op & 1:
            t = t.flip(-1)
        if op & 2:
            t = t.flip(-2)
        out.append(t)
    textures = gaussian_blur(torch.stack(out), blur)
    k = textures.shape[0]
    mean = textures.mean((1, 2, 3), keepdim=True)
    if layers.contrast is not None:
        textures = mean + layers.contrast.to(textures).view(k, 1, 1, 1) * (textures - mean)
    if layers.offset is not None:
        textures = textures + layers.offset.to(textures).view(k, 1, 1, 1)
    if layers.tint is not None:
        textures = textures.expand(k, 3, *textures.shape[-2:]) * layers.tint.to(textures).view(k, 3, 1, 1)
    return textures


def _sample_textures(textures: Tensor, points: Tensor, pad: int) -> Tensor:
    """Texture values (K, C, h, w) at frame points (K, 2, h, w) by cubic B-spline interpolation (Keys' cubic, used
    until 2026-12-07, renders fine texture with a phase error that the warps of a flow model then share, which hid
    that error in tuning); reflect padding covers ``pad`` px."""
    padded = F.pad(textures, (pad, pad, pad, pad), mode="reflect")
    values, _ = sample(padded, points + pad, "bspline")
    return values


def render_layers(image: Tensor, layers: Layers, blur: float = 0.6) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Render a clean pair from explicit :class:`Layers`.

    Args:
        image: (C, H, W) texture source in [0, 1] (float64 recommended for exact tests).
        layers: K layers; layer 0 the background.
        blur: texture pre-blur sigma.

    Returns:
        frame1 (C, H, W) (C = 3 for tinted layers), frame2 (C, H, W), flow (2, H, W), occluded (H, W) bool,
        outside (H, W) bool.
    """
    height, width = image.shape[-2:]
    pad = min(height, width) - 1
    grid = torch.stack(torch.meshgrid(torch.arange(height, dtype=image.dtype), torch.arange(width, dtype=image.dtype),
                                      indexing="ij")[::-1])  # (2, H, W): x, y
    k = layers.affine.shape[0]
    textures = _textures(image, layers, blur)
    channels = textures.shape[1]  # 3 for tinted layers
    points = grid.expand(k, -1, -1, -1)
    label1 = _topmost(support(layers, points))  # (H, W)
    flows = layer_motion(layers, points)  # (K, 2, H, W)
    flow = flows.gather(0, label1.view(1, 1, height, width).expand(1, 2, -1, -1))[0]
    frame1 = _sample_textures(textures, points, pad).gather(
        0, label1.view(1, 1, height, width).expand(1, channels, -1, -1))[0]
    # frame 2: every layer's pre-image of each pixel; the nearest layer whose support holds paints it
    pre = inverse_points(layers, grid)
    label2 = _topmost(support(layers, pre))
    values2 = _sample_textures(textures, pre, pad)
    frame2 = values2.gather(0, label2.view(1, 1, height, width).expand(1, channels, -1, -1))[0]
    # occlusion: a nearer layer covers x + flow(x) in frame 2
    target = grid + flow
    cover = support(layers, inverse_points(layers, target))  # (K, H, W)
    nearer = torch.arange(k).view(k, 1, 1) > label1
    occluded = (cover & nearer).any(0)
    outside = (target[0] < 0) | (target[0] > width - 1) | (target[1] < 0) | (target[1] > height - 1)
    return frame1, frame2, flow, occluded, outside


def synthetic_flow_pair(image: Tensor, generator: torch.Generator,
                        config: SyntheticFlowConfig = SyntheticFlowConfig()) -> FlowPair:
    """A random pair with exact flow from one texture image.

    Args:
        image: (H, W) or (C, H, W) in [0, 1] (e.g. a Train400 image).
        generator: the source of every random draw (same seed, same pair).
        config: ranges of the draws.

    Returns:
        :class:`FlowPair` with frames (C, H, W) (C = 1 for a 2-D input, 3 with ``config.tint > 0``) in the input's
        float dtype (float32 for integer input); flow (2, H, W); valid and occluded (H, W) bool.
    """
    if not isinstance(image, Tensor) or image.dim() not in (2, 3):
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"image must be an (H, W) or (C, H, W) tensor, got {shape}")
    if min(image.shape[-2:]) < 8:
        raise ValueError(f"image must be at least 8 x 8 pixels, got {tuple(image.shape[-2:])}")
    dtype = image.dtype if image.is_floating_point() else torch.float32
    img = (image if image.dim() == 3 else image[None]).to(torch.float64)
    height, width = img.shape[-2:]
    layers = random_layers(height, width, generator, config)
    blur = float(uniform(generator, *config.blur))
    frame1, frame2, flow, occluded, outside = render_layers(img, layers, blur)
    frame2 = _photometric(frame2, generator, config)
    sigma = float(uniform(generator, *config.noise))
    if config.defocus > 0:
        optical = float(uniform(generator, 0.0, config.defocus))
        frame1, frame2 = (gaussian_blur(f[None], optical)[0] for f in (frame1, frame2))
    frame1 = frame1 + sigma * torch.randn(frame1.shape, generator=generator, dtype=torch.float64)
    frame2 = frame2 + sigma * torch.randn(frame2.shape, generator=generator, dtype=torch.float64)
    return FlowPair(frame1.clamp(0, 1).to(dtype), frame2.clamp(0, 1).to(dtype), flow.to(dtype),
                    ~(occluded | outside), occluded)


def _photometric(frame: Tensor, generator: torch.Generator, config: SyntheticFlowConfig) -> Tensor:
    """``gain * shading * frame + bias``: gain log-uniform, shading a smooth random field around 1."""
    gain = math.exp(float(uniform(generator, math.log(config.gain[0]), math.log(config.gain[1]))))
    bias = float(uniform(generator, -config.bias, config.bias))
    coarse = uniform(generator, -config.shading, config.shading, (1, 1, 3, 3))
    shading = 1 + F.interpolate(coarse, size=frame.shape[-2:], mode="bicubic", align_corners=True)[0]
    return gain * shading * frame + bias

"""A robust matching cost over the whole disparity range, computed in chunks of disparities.

Cost of left pixel (y, x) at integer disparity d (``left(x)`` matches ``right(x - d)``)::

    c(y, x, d) = hamming(census_L(y, x), census_R(y, x - d)) / n_bits
                 + gradient_weight * min(|gx_L(y, x) - gx_R(y, x - d)|, gradient_trunc) / gradient_trunc

then aggregated over (2 r + 1)^2 windows (``aggregate_radius`` r; a box mean or the guided filter of
each slice, guided by the left image), the best of the windows shifted by up to ``window_shift`` px taken
(shiftable windows: less foreground fattening), and optionally along scanlines by SGM (:mod:`.sgm`).

Ground planes seen at a grazing angle (floors, roads) change disparity by up to a pixel or more per row, so an
upright window compares rows of the left image with right-image rows shifted by several pixels against each
other. Sheared windows (``shears``: vertical disparity slopes s in px per row) match left row y + dy at
disparity d + s dy instead, in the census (:func:`census_transform`'s ``shear``) and the window mean
(:func:`sheared_window_mean`); each pixel takes the hypothesis whose best cost, averaged over a region, is
clearly lowest (:func:`shear_choice`), so the upright guided cost stays wherever no slope wins. Census
compares the gray image with the centre of a ``census`` x ``census`` window (up to 48 bits in one int64 word,
Hamming distance by a popcount); gx is the central x-difference of the gray image.
Pixels with ``x - d < 0`` (no partner in the right image) get :data:`INVALID`.

Memory: the chunk loop touches only a few disparities at once (temporaries ~ ``B H W chunk`` x 16
bytes, at most ~256 MB: :meth:`CostConfig.chunk_for`), and the stored volume is uint8 (quantised to
1/254 of the cost's range) or float16: a 3000 x 2000 pair with 257 disparities is 1.5 GB in uint8.
With SGM, the window cost is only ever held in bands of rows (:data:`BAND_VALUES`), so SGM's output
is the one full-size volume.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ...progress import progress_bar
from ...vision.census import census_transform, popcount, shear_shift
from ..settings import check_choice, check_int, check_number, is_real
from .sgm import SGMConfig, semi_global

#: Stored value of the cost where ``x - d < 0`` (uint8 volumes; float16 volumes store 1.0 there).
INVALID = 255
STORES = ("uint8", "float16")
#: Most values (B H W disparities) of one chunk: 16 MB per float32 temporary of the chunk loops (64 MB ran
#: twice as slow on a 1500x1000 pair with 128 disparities, 34 s against 17 s: page faults of the big temporaries).
CHUNK_VALUES = 1 << 22
#: The shear choice (:func:`shear_choice`) samples the costs at every CHOICE_STEP-th row and column: a quarter of
#: the work, chosen on synthetic pairs (the four sets of ``train.stereo.synth_bench``: bad > 1 summed 4.54 -> 4.39 %).
CHOICE_STEP = 2
#: Most values (B, rows, W, disparities) of one band of the stored window cost read by SGM (64 MB in uint8).
BAND_VALUES = 1 << 26


@dataclass(frozen=True)
class CostConfig:
    """Settings of :func:`cost_volume`.

    Attributes:
        census: odd census window size (3, 5 or 7).
        gradient_weight: weight of the truncated x-gradient difference (0: census only).
        gradient_trunc: truncation of the gradient difference (0-1 intensity units per pixel).
        aggregate_radius: aggregation window radius r (0: none).
        guided_eps: 0: box mean over the window; > 0: guided filter of each cost slice by the left
            gray image with this regulariser (edge-preserving: less foreground fattening).
        sgm: :class:`~.sgm.SGMConfig`, semi-global aggregation after the window (``paths=0``: off).
        chunk: most disparities per chunk; big images use fewer (:meth:`chunk_for`), so that a chunk
            holds at most :data:`CHUNK_VALUES` values (temporaries ~ 16 bytes per value).
        store: ``"uint8"`` (value / max * 254, 255 = invalid) or ``"float16"`` (value / max, 1 = invalid).
        window_shift: shiftable windows: each pixel's (upright) window cost is the least of the windows moved
            by up to this many pixels in x and y (a (2 shift + 1)^2 minimum filter of every aggregated slice),
            so that a pixel next to a depth edge can use a window on its own side of it (0: centred windows).
            Chosen on synthetic pairs (seeds 100 / 200, with and without floors, 16 colour pairs each:
            bad > 1 px summed over the four sets 6.22 -> 6.03 % with 1, 6.25 with 2, 7.02 with 3).
        shears: vertical disparity slopes (px per row, non-zero) of the sheared window hypotheses (empty:
            upright windows only); row dy of a window shifts by ``shear * dy`` rounded (:func:`shear_shift`).
        shear_radius: radius of the square region over which a pixel's hypotheses compete.
        shear_margin: a sheared hypothesis wins only if its regional best cost is below ``1 - shear_margin``
            times the upright one's. Shears, radius and margin were chosen on synthetic pairs with and without
            a floor (``python -m train.stereo.synth_bench --floor 1``, seeds 100 and 200, colour, 16 pairs;
            see docs/stereo.md): the half-pixel shears took floor scenes from 2.23 / 3.34 to 1.80 / 2.60 % bad > 1.
    """

    census: int = 7
    gradient_weight: float = 0.0
    gradient_trunc: float = 0.08
    aggregate_radius: int = 3
    guided_eps: float = 0.003
    sgm: SGMConfig = SGMConfig()
    chunk: int = 16
    store: str = "uint8"
    window_shift: int = 1
    shears: tuple[float, ...] = (-1.0, -0.5, 0.5, 1.0)
    shear_radius: int = 7
    shear_margin: float = 0.08
    row_reach: int = 3

    def __post_init__(self) -> None:
        if self.census not in (3, 5, 7):
            raise ValueError(f"CostConfig.census must be 3, 5 or 7, got {self.census!r}")
        check_number(self, "gradient_weight", lambda v: v >= 0, ">= 0")
        check_number(self, "gradient_trunc", lambda v: v > 0, "> 0")
        for name, least in (("aggregate_radius", 0), ("window_shift", 0), ("chunk", 1), ("shear_radius", 0),
                            ("row_reach", 0)):
            check_int(self, name, least)
        check_choice(self, "store", STORES)
        check_number(self, "shear_margin", lambda v: 0 <= v < 1, "in [0, 1)")
        shears = tuple(self.shears)
        if len(set(shears)) < len(shears) or any(not is_real(v) or v == 0 for v in shears):
            raise ValueError(f"CostConfig.shears must be distinct non-zero finite numbers, got {self.shears!r}")
        object.__setattr__(self, "shears", shears)  # a list from a config file becomes a tuple (hashable config)

    def chunk_for(self, image: Tensor) -> int:
        """Disparities per chunk for ``image`` (B, C, H, W): ``chunk``, fewer when B H W chunk > CHUNK_VALUES."""
        b, _, h, w = image.shape
        return max(1, min(self.chunk, CHUNK_VALUES // (b * h * w)))

    @property
    def max_cost(self) -> float:
        """Largest raw (and aggregated) cost value."""
        return 1.0 + self.gradient_weight


@dataclass
class CostVolume:
    """A stored cost volume.

    Attributes:
        cost: (B, D + 1, H, W) uint8 or float16, disparities 0..D; see :meth:`as_float`.
        max_cost: the cost value that the largest stored value stands for.
    """

    cost: Tensor
    max_cost: float

    @property
    def invalid_value(self) -> float:
        """The float value (after :meth:`as_float`) of invalid entries."""
        return self.max_cost

    def as_float(self, part: Tensor | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
        """``part`` (default: the whole volume) of the stored cost in cost units; invalid = ``max_cost``."""
        part = self.cost if part is None else part
        if part.dtype == torch.uint8:
            return (part.to(dtype) * (self.max_cost / 254.0)).clamp_(max=self.max_cost)
        return part.to(dtype) * self.max_cost


def to_gray(image: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 1, H, W), the channel mean."""
    return image.mean(1, keepdim=True)


def _partner_columns(w: int, d: int, step: int) -> tuple[int, slice]:
    """Output column x' stands for left column ``step x'``; at disparity d its partner is right column ``step x' - d``.
    Returns (t, cols): the output columns from t on have partners, read as ``right[..., cols]`` (one per column
    from t on); those below t have none (``step x' < d``)."""
    t = -(-d // step)
    return min(t, -(-w // step)), slice(step * t - d, None, step)


def shifted_op(op, left: Tensor, right: Tensor, d0: int, d1: int, step: int = 1) -> Tensor:
    """``op(left[..., x], right[..., x - d])`` for d in [d0, d1) at every ``step``-th column x = step x':
    (B, H, W) -> (B, d1 - d0, H, ceil(W / step)); x - d < 0 reads column 0. ``op`` a torch binary op taking ``out=``
    (``torch.bitwise_xor`` for census codes, ``torch.sub`` for gradients): written straight into the output, one
    slice per disparity (no shifted copy of ``right``)."""
    b, h, w = left.shape
    left = left[..., ::step]
    out = left.new_empty(b, d1 - d0, h, left.shape[-1])
    for j, d in enumerate(range(d0, d1)):
        t, cols = _partner_columns(w, d, step)
        op(left[..., t:], right[..., cols][..., :left.shape[-1] - t], out=out[:, j, :, t:])
        op(left[..., :t], right[..., :1], out=out[:, j, :, :t])
    return out


def feature_cost(fl: Tensor, fr: Tensor, d0: int, d1: int, step: int = 1) -> Tensor:
    """``(1 - <fl(x), fr(x - d)>) / 2`` for d in [d0, d1): unit features (B, F, H, W) -> (B, d1 - d0, H, W), or at
    every ``step``-th column x as :func:`shifted_op` (B, d1 - d0, H, ceil(W / step)).

    One disparity at a time (contiguous slices, differentiable); where x - d < 0 the partner is
    column 0 (the caller marks those entries invalid)."""
    b, _, h, w = fl.shape
    fl = fl[..., ::step]
    dot = fl.new_empty(b, d1 - d0, h, fl.shape[-1])
    for j, d in enumerate(range(d0, d1)):
        t, cols = _partner_columns(w, d, step)
        dot[:, j, :, t:] = (fl[..., t:] * fr[..., cols][..., :fl.shape[-1] - t]).sum(1)
        if t > 0:
            dot[:, j, :, :t] = (fl[..., :t] * fr[..., :1]).sum(1)
    return (1.0 - dot) * 0.5


@dataclass
class _Features:
    census: Tensor  # (B, 1, H, W) int64
    gray: Tensor  # (B, 1, H, W): all rows of the gray image the features describe (a sheared census is made from it)
    gx: Tensor  # (B, 1, H, W)
    n_bits: int
    learned: Tensor | None = None  # (B, F, H, W) unit vectors of a MatchingFeatures net
    learned_weight: float = 0.0
    step: int = 1  # census, gx and learned hold every step-th row of gray's


def _features(image: Tensor, config: CostConfig, net=None, step: int = 1) -> _Features:
    """The matching features of an image (B, C, H, W), of every ``step``-th row."""
    gray = to_gray(image.float())
    gx = torch.zeros_like(gray)
    gx[..., 1:-1] = 0.5 * (gray[..., 2:] - gray[..., :-2])
    learned = None if net is None else net(image.float())[..., ::step, :]
    return _Features(census_transform(gray, config.census, 0, step), gray, gx[..., ::step, :], config.census ** 2 - 1,
                     learned, 0.0 if net is None else float(net.weight), step)


def _invalid(d0: int, d1: int, w: int, device, step: int = 1) -> Tensor:
    """(d1 - d0, 1, ceil(W / step)) bool: x - d < 0 (no partner in the right image) at every ``step``-th column x."""
    x = torch.arange(0, w, step, device=device)
    return x.view(1, 1, -1) < torch.arange(d0, d1, device=device).view(-1, 1, 1)


def raw_cost_chunk(fl: _Features, fr: _Features, d0: int, d1: int, config: CostConfig, step: int = 1) -> Tensor:
    """Unaggregated cost for disparities [d0, d1): (B, d1 - d0, H, W) float32, or of every ``step``-th left column
    (B, d1 - d0, H, ceil(W / step)); invalid = max_cost.

    With learned features of weight w, the census term is ``(1 - w) census + w feature_cost``."""
    ham = popcount(shifted_op(torch.bitwise_xor, fl.census[:, 0], fr.census[:, 0], d0, d1, step))
    cost = ham.float().mul_(1.0 / fl.n_bits)
    if fl.learned is not None:
        w = fl.learned_weight
        cost = cost.mul_(1.0 - w).add_(feature_cost(fl.learned, fr.learned, d0, d1, step).mul_(w))
    if config.gradient_weight > 0:
        diff = shifted_op(torch.sub, fl.gx[:, 0], fr.gx[:, 0], d0, d1, step).abs_().clamp_(max=config.gradient_trunc)
        cost += diff * (config.gradient_weight / config.gradient_trunc)
    return cost.masked_fill_(_invalid(d0, d1, fl.gray.shape[-1], cost.device, step), config.max_cost)


def _window_sum(x: Tensor, radius: int, dim: int) -> Tensor:
    """Sum over ``[i - radius, i + radius]`` along ``dim`` (-1 or -2), clipped at the borders.

    ``2 radius`` in-place adds of shifted slices into a copy of x: for this module's windows (radius 3 to 7) about
    twice as fast as differences of prefix sums (a cumsum along rows is a slow strided scan) and without their
    rounding (a 16-disparity teddy chunk, radius 3: 3 ms per axis against 4-7 ms; 2 threads)."""
    n = x.shape[dim]
    out = x.clone()
    for k in range(1, min(radius, n - 1) + 1):
        out.narrow(dim, 0, n - k).add_(x.narrow(dim, k, n - k))
        out.narrow(dim, k, n - k).add_(x.narrow(dim, 0, n - k))
    return out


def _window_count(n: int, radius: int, like: Tensor) -> Tensor:
    """Pixels of each clipped window along an axis of length n: (n,)."""
    i = torch.arange(n, device=like.device, dtype=like.dtype)
    return (i + radius).clamp(max=n - 1) - (i - radius).clamp(min=0) + 1


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over (2 radius + 1)^2 pixels of every slice of (B, K, H, W); borders use the pixels inside.

    Separable window sums (:func:`_window_sum`) along x and y, divided by the clipped window's pixel count."""
    if radius == 0:
        return x
    h, w = x.shape[-2:]
    count = _window_count(h, radius, x).view(-1, 1) * _window_count(w, radius, x)
    return _window_sum(_window_sum(x, radius, -1), radius, -2).div_(count)


def sheared_window_mean(raw: Tensor, first: int, d0: int, d1: int, radius: int, shear: float) -> Tensor:
    """Window means of disparities [d0, d1) over (2 radius + 1)^2 windows sheared in disparity by ``shear`` px per
    row: ``out[:, j, y, x]`` is the mean of ``raw[:, d0 + j + shear dy - first, y + dy, x + dx]`` over
    |dy|, |dx| <= radius, terms outside the image or outside raw's disparities left out (shear 0: :func:`box_mean`).

    Args:
        raw: (B, K, H, W) costs of disparities ``first`` .. ``first + K - 1``.
    Returns:
        (B, d1 - d0, H, W).
    """
    b, k, h, w = raw.shape
    rows = _window_sum(raw, radius, -1).div_(_window_count(w, radius, raw))  # the mean along x, then over dy
    out = raw.new_zeros(b, d1 - d0, h, w)
    count = raw.new_zeros(1, d1 - d0, h, 1)
    for dy in range(-radius, radius + 1):  # 2 radius + 1 shifted adds
        t = shear_shift(shear, dy)
        lo, hi = max(d0, first - t), min(d1, first + k - t)  # disparities whose d + s dy exists
        y0, y1 = max(0, -dy), h - max(0, dy)
        if lo >= hi or y0 >= y1:
            continue
        out[:, lo - d0:hi - d0, y0:y1] += rows[:, lo + t - first:hi + t - first, y0 + dy:y1 + dy]
        count[:, lo - d0:hi - d0, y0:y1] += 1
    return out.div_(count.clamp_min_(1))


def _sheared_chunk(fl: _Features, fr: _Features, d0: int, d1: int, max_disp: int, shear: float,
                   config: CostConfig, step: int = 1) -> Tensor:
    """The sheared window cost of disparities [d0, d1): (B, d1 - d0, H, W); ``fr`` carries the right census of
    that shear. ``step`` > 1: of every step-th column (features of every step-th row), windows of
    ``ceil(aggregate_radius / step)`` such samples (B, d1 - d0, H, ceil(W / step))."""
    radius = -(-config.aggregate_radius // step)
    reach = shear_shift(abs(shear * step), radius)
    first, last = max(0, d0 - reach), min(max_disp + 1, d1 + reach)
    return sheared_window_mean(raw_cost_chunk(fl, fr, first, last, config, step), first, d0, d1, radius, shear * step)


def _feature_rows(f: _Features, lo: int, hi: int) -> _Features:
    """The features (of every row) of rows [lo, hi) (computed on more rows: the same values as the whole image's)."""
    return replace(f, census=f.census[..., lo:hi, :], gray=f.gray[..., lo:hi, :], gx=f.gx[..., lo:hi, :],
                   learned=None if f.learned is None else f.learned[..., lo:hi, :])


def _sheared_features(fr: _Features, config: CostConfig, shear: float) -> _Features:
    """``fr`` with the right census of ``shear`` (of ``fr``'s rows)."""
    return fr if shear == 0 else replace(fr, census=census_transform(fr.gray, config.census, shear, fr.step))


def shear_choice(left: Tensor, right: Tensor, max_disp: int, config: CostConfig, features=None,
                 progress: bool = False) -> Tensor | None:
    """Which window each pixel's cost uses: (B, H, W) int64, 0 upright, i the shear ``config.shears[i - 1]``
    (None without shears).

    For every hypothesis (upright included, all with box windows) the best cost over disparities is averaged
    over a region around the pixel; a shear wins where its average is the lowest and below ``1 - shear_margin``
    times the upright one. The costs are those of the full-resolution census (and features) sampled at every
    :data:`CHOICE_STEP`-th row and column, windows and region of ``ceil(aggregate_radius / CHOICE_STEP)`` and
    ``ceil(shear_radius / CHOICE_STEP)`` samples, and each sample's choice holds for its CHOICE_STEP^2 pixels.
    Computed in bands of rows (with the windows' margin) and chunks of disparities: memory of a chunk, plus
    (B, 1 + len(shears), H, W) / CHOICE_STEP^2 floats. ``progress``: a bar over the bands.
    """
    if not config.shears:
        return None
    step = CHOICE_STEP
    b, _, h, w = left.shape
    hs, ws = -(-h // step), -(-w // step)
    margin = config.census // 2 + step * -(-config.aggregate_radius // step) + (0 if features is None
                                                                                  else features.radius)
    band = step * max(1, CHUNK_VALUES // (b * w * config.chunk))  # a multiple of step: bands start on sampled rows
    best = left.new_empty(b, 1 + len(config.shears), hs, ws, dtype=torch.float32)
    bar = progress_bar(-(-h // band), "shear choice", "band", progress)
    for y0 in range(0, h, band):  # bands of rows: each chunk holds B band W chunk values at most
        y1 = min(h, y0 + band)
        lo, hi = max(0, y0 - margin) // step * step, min(h, y1 + margin)
        band_left, band_right = left[..., lo:hi, :], right[..., lo:hi, :]
        fl, fr = _features(band_left, config, features, step), _features(band_right, config, features, step)
        chunk = config.chunk_for(band_left)
        for i, shear in enumerate((0,) + config.shears):
            frs = _sheared_features(fr, config, shear)
            low = None
            for d0 in range(0, max_disp + 1, chunk):
                d1 = min(d0 + chunk, max_disp + 1)
                c = _sheared_chunk(fl, frs, d0, d1, max_disp, shear, config, step)
                c = c.masked_fill_(_invalid(d0, d1, w, c.device, step), float("inf")).amin(1)
                low = c if low is None else torch.minimum(low, c)
            best[:, i, y0 // step:-(-y1 // step)] = low[:, (y0 - lo) // step:-(-(y1 - lo) // step)]
        bar.update()
    bar.close()
    region = box_mean(best, -(-config.shear_radius // step))
    sheared_low, index = (region[:, 1:] / (1.0 - config.shear_margin)).min(1)
    choice = torch.where(sheared_low < region[:, 0], index + 1, 0)
    return choice.repeat_interleave(step, -2)[..., :h, :].repeat_interleave(step, -1)[..., :w].contiguous()


@dataclass
class Guide:
    """The guided filter's per-pixel statistics of the guide image, all (B, 1, H, W)."""

    image: Tensor
    mean: Tensor
    var: Tensor

    @classmethod
    def of(cls, gray: Tensor, radius: int) -> "Guide":
        mean = box_mean(gray, radius)
        return cls(gray, mean, box_mean(gray * gray, radius) - mean * mean)


def shifted_window_min(cost: Tensor, shift: int) -> Tensor:
    """The least value of every slice of cost (B, K, H, W) over the (2 shift + 1)^2 pixels around each pixel
    (inside the image): of a window cost, the best of the windows moved by up to ``shift`` px. Separable: minima of
    shifted slices along x, then along y (a 16-disparity teddy chunk: 2 ms, against 72 ms for a min-pooling layer;
    1 thread)."""
    if shift == 0:
        return cost
    for dim in (-1, -2):
        n = cost.shape[dim]
        out = cost.clone()
        for k in range(1, min(shift, n - 1) + 1):
            low, high = out.narrow(dim, 0, n - k), out.narrow(dim, k, n - k)
            torch.minimum(low, cost.narrow(dim, k, n - k), out=low)
            torch.minimum(high, cost.narrow(dim, 0, n - k), out=high)
        cost = out
    return cost


def aggregate(cost: Tensor, radius: int, guide: Guide | None = None, eps: float = 0.0) -> Tensor:
    """Aggregate every slice of cost (B, K, H, W) over (2 radius + 1)^2 windows.

    Without ``guide``: the box mean. With it: the guided filter (He et al.) of each slice, guided
    by the gray image: the cost is fitted as ``a I + b`` in every window (``eps`` regularises
    ``a``), so windows that straddle an image edge do not smear the cost of one side over the other.
    """
    if radius == 0:
        return cost
    if guide is None:
        return box_mean(cost, radius)
    mean_c = box_mean(cost, radius)
    a = (box_mean(cost * guide.image, radius) - guide.mean * mean_c) / (guide.var + eps)
    b = mean_c - a * guide.mean
    return box_mean(a, radius).mul_(guide.image).add_(box_mean(b, radius))


def check_pair(left: Tensor, right: Tensor, max_disp: int) -> None:
    """ValueError unless left, right are finite (B, C, H, W) tensors of one shape and 0 < max_disp < W."""
    if not isinstance(left, Tensor) or not isinstance(right, Tensor) or left.dim() != 4:
        raise ValueError("left and right must be tensors of shape (B, C, H, W), got "
                         f"{tuple(getattr(left, 'shape', ()))} and {tuple(getattr(right, 'shape', ()))}")
    if left.shape != right.shape:
        raise ValueError(f"left and right must have the same shape (B, C, H, W), got left {tuple(left.shape)} "
                         f"and right {tuple(right.shape)}")
    if left.shape[0] == 0 or left.shape[-2] == 0:
        raise ValueError(f"left and right hold no pixels to match (B = 0 or H = 0), got {tuple(left.shape)}")
    for name, image in (("left", left), ("right", right)):
        if image.is_floating_point() and not bool(torch.isfinite(image).all()):
            raise ValueError(f"{name} contains NaN or infinite values")
    w = left.shape[-1]
    if isinstance(max_disp, bool) or not isinstance(max_disp, int) or not 0 < max_disp < w:
        raise ValueError(f"max_disp must be an int in [1, W - 1] = [1, {w - 1}], got {max_disp!r}")


def taker_runs(rows: Tensor, gap: int) -> list[tuple[int, int]]:
    """Runs ``[y0, y1)`` covering the True entries of ``rows`` (H,) bool, two runs merged when fewer than ``gap``
    False rows part them (a run's window margin would cost as much as the rows between)."""
    taken = rows.nonzero()[:, 0]
    if not len(taken):
        return []
    breaks = (taken.diff() > gap).nonzero()[:, 0]
    starts = torch.cat([taken[:1], taken[breaks + 1]]).tolist()
    ends = torch.cat([taken[breaks], taken[-1:]]).add(1).tolist()
    return list(zip(starts, ends))


def _window_cost(left: Tensor, right: Tensor, max_disp: int, config: CostConfig, features=None,
                 choice: Tensor | None = None) -> Tensor:
    """The window-aggregated cost of every disparity 0..max_disp, stored: (B, max_disp + 1, H, W); where
    ``choice`` (B, H, W) (:func:`shear_choice`) is i > 0, the sheared window cost of ``config.shears[i - 1]``."""
    fl, fr = _features(left, config, features), _features(right, config, features)
    guide = Guide.of(fl.gray, config.aggregate_radius) if config.guided_eps > 0 else None
    b, _, h, w = left.shape
    sheared = []  # (shear, rows, where, left and right features of those rows): each run of rows that takes a shear
    radius = config.aggregate_radius
    for i, shear in enumerate(() if choice is None else config.shears, 1):
        runs = taker_runs((choice == i).any(-1).any(0), 2 * radius + 1)
        frs = _sheared_features(fr, config, shear) if runs else None
        for y0, y1 in runs:  # with the window's reach
            lo, hi = max(0, y0 - radius), min(h, y1 + radius)
            sheared.append((shear, (y0, y1, lo), (choice[:, None, y0:y1] == i),
                            _feature_rows(fl, lo, hi), _feature_rows(frs, lo, hi)))
    dtype = torch.uint8 if config.store == "uint8" else torch.float16
    out = torch.empty(b, max_disp + 1, h, w, dtype=dtype, device=left.device)
    chunk = config.chunk_for(left)
    for d0 in range(0, max_disp + 1, chunk):  # chunk loop: bounded memory
        d1 = min(d0 + chunk, max_disp + 1)
        c = aggregate(raw_cost_chunk(fl, fr, d0, d1, config), config.aggregate_radius, guide, config.guided_eps)
        c = shifted_window_min(c, config.window_shift)
        for shear, (y0, y1, lo), where, fl_rows, fr_rows in sheared:
            part = _sheared_chunk(fl_rows, fr_rows, d0, d1, max_disp, shear, config)[..., y0 - lo:y1 - lo, :]
            c[..., y0:y1, :] = torch.where(where, part, c[..., y0:y1, :])
        invalid = _invalid(d0, d1, w, c.device)
        if config.store == "uint8":
            q = (c * (254.0 / config.max_cost)).round_().clamp_(0, 254).masked_fill_(invalid, INVALID)
        else:
            q = (c / config.max_cost).masked_fill_(invalid, 1.0)
        out[:, d0:d1] = q.to(dtype)
    return out


def cost_volume(left: Tensor, right: Tensor, max_disp: int, config: CostConfig | None = None,
                features=None, progress: bool = False) -> CostVolume:
    """Cost of every disparity 0..max_disp: left, right (B, C, H, W) in [0, 1] -> :class:`CostVolume`
    with ``cost`` (B, max_disp + 1, H, W) in ``config.store``'s dtype.

    ``features``: a :class:`~.features.MatchingFeatures` net (None: census only); its cost replaces the
    fraction ``features.weight`` of the census cost (:func:`raw_cost_chunk`). ``progress``: bars over the
    shear choice's and SGM's bands on big images.

    With SGM, the window cost is computed in bands of rows (with a margin of rows on each side
    that reaches the census and the guided filter's support, so a band's rows equal the whole
    image's up to float rounding) and handed to :func:`~.sgm.semi_global`, which reads each band
    twice: the only full-size array is SGM's output.
    """
    config = config or CostConfig()
    check_pair(left, right, max_disp)
    choice = shear_choice(left, right, max_disp, config, features, progress)
    if config.sgm.paths == 0:
        return CostVolume(_window_cost(left, right, max_disp, config, features, choice), config.max_cost)
    b, _, h, w = left.shape
    margin = (config.census // 2 + 2 * config.aggregate_radius + config.window_shift
              + (0 if features is None else features.radius))

    def rows(y0: int, y1: int) -> Tensor:
        lo, hi = max(0, y0 - margin), min(h, y1 + margin)
        window = _window_cost(left[..., lo:hi, :], right[..., lo:hi, :], max_disp, config, features,
                              None if choice is None else choice[..., lo:hi, :])
        return window[..., y0 - lo:y1 - lo, :]

    band = max(1, BAND_VALUES // (b * (max_disp + 1) * w))
    to_float = CostVolume(torch.empty(0), config.max_cost).as_float
    cost, max_cost = semi_global(rows, band, to_float, config.max_cost, to_gray(left.float()), config.sgm,
                                 progress)
    return CostVolume(cost, max_cost)

"""Factor networks: small CNNs that turn images or features into grid factor parameters.

:class:`GridFactorNet` reads features (B, C, H, W) and a measurement with D values per
pixel (B, D, H, W) and predicts the factors of the grid energy

    1/2 sum_i (x_i - z_i)^T a_i (x_i - z_i) + 1/2 sum_(ij) w_ij |x_i - x_j|^2

that :func:`gbp_torch.grid.solve` / :class:`~gbp_torch.modules.MultigridGBP` minimise.
Its last convolution has one output channel per raw value ``o``, in this order:

====================  ===============================  ===================================
channels              count                            when
====================  ===============================  ===================================
data precision        1 (scalar) or D(D+1)/2 (full)    always
wh, wv                1 each                           always
residual of z         D                                ``refine=True``
k_data                1                                ``robust=True``
k_h, k_v              1 each                           ``robust_smooth=True``
====================  ===============================  ===================================

For D = 1 with scalar precision this is [a, wh, wv, residual, k], the layout of the
shipped checkpoints. Edge fields are one shorter than the grid, so the last column
(wh, k_h) or row (wv, k_v) of those channels is unused.

Every positive output is ``softplus(o) + floor`` (:func:`positive`), times a scale
(``s_d = data_scale``, ``s_w = smooth_scale``, floats or one per batch item):

- scalar data precision  ``a = s_d (softplus(o) + floor)``, (B, H, W); the data term is
  ``a I_D``, the same precision for all D components.
- full data precision: the D(D+1)/2 channels fill a lower-triangular ``L`` row by row
  (``L_00, L_10, L_11, L_20, ...``, the order of ``torch.tril_indices``); the diagonal is
  ``softplus(o) + floor`` (so ``L`` is invertible), the entries below it are ``o`` itself.
  Then ``a = s_d (L L^T + floor I)``, (B, D, D, H, W): symmetric by construction
  (``a_ij`` and ``a_ji`` are the same sum of products) and with every eigenvalue at least
  ``s_d floor``, even where large off-diagonal entries make ``L L^T`` nearly singular.
- edge weights ``w = s_w (softplus(o) + floor)``: wh (B, H, W-1), wv (B, H-1, W).
- robust thresholds ``k = softplus(o) + floor`` (unscaled): k_data (B, H, W) for the
  Mahalanobis data residuals, k_h (B, H, W-1) and k_v (B, H-1, W) for the edges.
- refined measurement ``z = measurement + o`` (a residual), (B, D, H, W); without
  ``refine``, ``z = measurement``.

``floor`` (default 1e-3) keeps precisions and thresholds away from zero, so GBP's gains
and the robust weights ``k / r`` never divide by zero, and softplus keeps a nonzero
gradient for any finite pre-activation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tiling import Tiling, map_tiles

PRECISIONS = ("scalar", "full")


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def positive(o: Tensor, floor: float) -> Tensor:
    """``softplus(o) + floor``: smooth, > floor, gradient never exactly zero. Any shape."""
    return F.softplus(o) + floor


def cholesky_precision(tri: Tensor, dim: int, floor: float) -> Tensor:
    """Full SPD precision blocks from lower-triangle channels: ``L L^T + floor I``.

    Args:
        tri: (B, D(D+1)/2, H, W) raw values of ``L``'s lower triangle, row by row
            (``torch.tril_indices(D, D)`` order); the diagonal entries become
            ``softplus(o) + floor``, the others are used as they are.
        dim: D.
        floor: > 0; also the lower bound of every eigenvalue of the result.

    Returns:
        (B, D, D, H, W) symmetric positive definite blocks (exactly symmetric).
    """
    n = dim * (dim + 1) // 2
    if tri.dim() != 4 or tri.shape[1] != n:
        raise ValueError(f"tri must have shape (B, D(D+1)/2 = {n}, H, W) for D = {dim}, got {tuple(tri.shape)}")
    rows, cols = torch.tril_indices(dim, dim, device=tri.device)
    on_diag = (rows == cols).view(1, n, 1, 1)
    tri = torch.where(on_diag, positive(tri, floor), tri)
    b, _, h, w = tri.shape
    lower = tri.new_zeros(b, dim * dim, h, w)
    lower[:, rows * dim + cols] = tri
    lower = lower.view(b, dim, dim, h, w)
    # a_ij = sum_k L_ik L_jk; products and a sum rather than a matmul, so autocast keeps the dtype
    a = (lower.unsqueeze(2) * lower.unsqueeze(1)).sum(3)
    eye = torch.eye(dim, dtype=a.dtype, device=a.device).view(1, dim, dim, 1, 1)
    return a + floor * eye


def channels_last(convolutions: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``convolutions(x)`` run in the channels-last layout on the CPU, the result back in the default layout.

    oneDNN's convolutions take their fast path on channels-last inputs: the shipped denoiser's network 0.67 ->
    0.40 s on a 512x512 image (2 threads), the same values up to float rounding. Other devices keep their layout.
    """
    if x.device.type != "cpu":
        return convolutions(x)
    return convolutions(x.contiguous(memory_format=torch.channels_last)).contiguous()


def conv_stack(in_channels: int, width: int, depth: int, out_channels: int) -> nn.Sequential:
    """``depth`` 3x3 convolutions (ReLU between), ``width`` channels, zero-initialised last layer.

    Maps (B, in_channels, H, W) -> (B, out_channels, H, W).
    """
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
        return F.pixel_shuffle(channels_last(self.body, F.pixel_unshuffle(x, 2)), 2)[..., :h, :w]


def conv_count(stack: nn.Sequential) -> int:
    """Number of convolutions in a :func:`conv_stack` (each 3x3 conv looks one pixel further)."""
    return sum(isinstance(m, nn.Conv2d) for m in stack)


def body_plus_context(body: nn.Sequential, context: ContextBranch | None, x: Tensor,
                      tile: int | None = 512) -> Tensor:
    """``body(x) + context(x)`` (context optional), tile by tile when ``x`` is larger than ``tile x tile``.

    x (B, C, H, W) -> (B, C', H, W). The margin covers the receptive radius (one pixel per
    full-resolution conv, two per half-resolution context conv plus its 2x2 cell), so the tiled
    result equals the whole-image one up to rounding while memory stays that of one tile.
    """
    def run(part: Tensor) -> Tensor:
        out = channels_last(body, part)
        return out if context is None else out + context(part)

    if tile is None:
        return run(x)
    radius = max(conv_count(body), 0 if context is None else 2 * conv_count(context.body) + 1)
    return map_tiles(run, x, even_tiling(tile, radius))


def even_tiling(tile: int, radius: int) -> Tiling:
    """Tiles of about ``tile`` pixels with a margin of ``radius + 2``, both even and aligned to 2, so that
    the half-resolution context branch sees the same 2x2 cells as on the whole image."""
    margin = radius + 2
    return Tiling(tile=tile + tile % 2, margin=margin + margin % 2, align=2)


@dataclass
class GridFactors:
    """Parameters of a grid factor graph with D values per pixel.

    Attributes:
        z: (B, D, H, W) data targets (refined measurement).
        data_precision: (B, H, W) scalar precision (the block ``a I_D``) or (B, D, D, H, W)
            symmetric positive definite blocks.
        wh: (B, H, W-1) weights of the edges (y, x) - (y, x+1).
        wv: (B, H-1, W) weights of the edges (y, x) - (y+1, x).
        k_data: (B, H, W) robust thresholds of the data terms, or None.
        k_smooth: (k_h (B, H, W-1), k_v (B, H-1, W)) robust thresholds of the edges, or None.

    :func:`gbp_torch.grid.solve` wants z as (B, H, W) when D = 1: pass ``f.z[:, 0]``, or
    use :meth:`solve_args`.
    """

    z: Tensor
    data_precision: Tensor
    wh: Tensor
    wv: Tensor
    k_data: Tensor | None = None
    k_smooth: tuple[Tensor, Tensor] | None = None

    @property
    def dim(self) -> int:
        """D, the number of values per pixel."""
        return self.z.shape[1]

    def solve_args(self) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor]]:
        """``(z, data_precision, (wh, wv))``, positional arguments of :func:`gbp_torch.grid.solve`.

        For D = 1, z becomes (B, H, W) and a full (B, 1, 1, H, W) precision (B, H, W);
        for D > 1 everything is passed as it is (the solver supports D <= 2).
        """
        z, a = self.z, self.data_precision
        if self.dim == 1:
            z = z[:, 0]
            a = a[:, 0, 0] if a.dim() == 5 else a
        return z, a, (self.wh, self.wv)


def _scale(s: Tensor | float, like: Tensor, name: str, dims: int) -> Tensor:
    """A float or (B,) scale as a tensor broadcasting against ``like`` (B, ...) of ``dims`` trailing dims."""
    s = torch.as_tensor(s, dtype=like.dtype, device=like.device)
    if s.numel() not in (1, like.shape[0]):
        raise ValueError(f"{name} must be a float or of shape (B,) = ({like.shape[0]},), got {tuple(s.shape)}")
    return s.reshape((-1,) + (1,) * dims)


class GridFactorNet(nn.Module):
    """CNN mapping an image / feature map to grid factors around a D-valued measurement.

    Args:
        in_channels: C of the input features.
        width, depth: size of the conv stack (parameters: about ``9 width^2 (depth - 2)``).
        refine: also predict a residual correction of the measurement (D channels).
        robust: also predict per-pixel robust thresholds of the data terms.
        floor: > 0, lower bound added to every positive output (see the module docstring).
        context_width, context_depth: size of a :class:`ContextBranch` whose output is added
            to the features before the last conv (0: none; needs ``depth >= 2``).
        dim: D >= 1, values per pixel.
        precision: ``"scalar"`` (one precision per pixel, shared by the D components) or
            ``"full"`` (a D x D SPD block per pixel, Cholesky-parametrised).
        robust_smooth: also predict per-edge robust thresholds of the smoothness terms.
        tile: images larger than ``tile x tile`` run the convolutions tile by tile with a margin of
            the receptive radius (:mod:`gbp_torch.tiling`): the same factors, up to rounding, in
            memory bounded by one tile (None: never tile). An attribute; set it on a built net too.
            Setting the attribute ``progress = True`` shows a tqdm bar over the tiles (the CLI does).

    Forward: ``features`` (B, C, H, W), ``measurement`` (B, D, H, W), ``data_scale`` and
    ``smooth_scale`` floats or (B,) (e.g. 1 / sigma^2) -> :class:`GridFactors`. Outputs
    follow the measurement's dtype where it is wider than the convolutions' (autocast).
    With the zero-initialised last layer the untrained net gives
    ``a = (log 2 + floor) data_scale`` (scalar; full: ``((log 2 + floor)^2 + floor) I``),
    ``w = (log 2 + floor) smooth_scale``, ``z = measurement``.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, depth: int = 5, refine: bool = True,
                 robust: bool = False, floor: float = 1e-3, context_width: int = 0, context_depth: int = 0,
                 dim: int = 1, precision: str = "scalar", robust_smooth: bool = False, tile: int | None = 1024):
        super().__init__()
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be an int >= 1, got {dim!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if not floor > 0:
            raise ValueError(f"floor must be > 0, got {floor!r}")
        if depth < 1 or (context_depth and depth < 2):
            raise ValueError(f"depth must be >= 1 (>= 2 with a context branch), got {depth!r}")
        self.in_channels, self.dim, self.precision = in_channels, dim, precision
        self.refine, self.robust, self.robust_smooth, self.floor = refine, robust, robust_smooth, floor
        self.n_precision = 1 if precision == "scalar" else dim * (dim + 1) // 2
        out = self.n_precision + 2 + dim * int(refine) + int(robust) + 2 * int(robust_smooth)
        self.body = conv_stack(in_channels, width, depth, out)
        self.context = ContextBranch(in_channels, context_width, context_depth, width) if context_depth else None
        self.tile = tile
        self.progress = False

    @property
    def receptive_radius(self) -> int:
        """How far (pixels) an output looks into the input: one per 3x3 conv of the body; the context
        branch, before the last conv, two per conv at half resolution plus its 2x2 cell."""
        body = conv_count(self.body)
        if self.context is None:
            return body
        return max(body - 1, 2 * conv_count(self.context.body) + 1) + 1

    def tiling(self) -> Tiling | None:
        """The :class:`~gbp_torch.tiling.Tiling` of :meth:`raw` (None when ``tile`` is None)."""
        if self.tile is None:
            return None
        return even_tiling(self.tile, self.receptive_radius)

    def raw(self, features: Tensor) -> Tensor:
        """The convolutions alone: features (B, C, H, W) -> raw outputs ``o`` (B, n_out, H, W), tiled when
        the image is larger than ``tile x tile``."""
        tiling = self.tiling()
        if tiling is not None:
            return map_tiles(self._convolve, features, tiling, progress=self.progress, desc="network tiles")
        return self._convolve(features)

    def _convolve(self, features: Tensor) -> Tensor:
        """The convolutions in the parameters' dtype (float64 features meet float32 weights; :meth:`forward`
        promotes the outputs back for the solve)."""
        return channels_last(self._layers, features.to(self.body[0].weight.dtype))

    def _layers(self, x: Tensor) -> Tensor:
        if self.context is None:
            return self.body(x)
        return self.body[-1](self.body[:-1](x) + self.context(x))

    def _check(self, features: Tensor, measurement: Tensor) -> None:
        if features.dim() != 4 or features.shape[1] != self.in_channels:
            raise ValueError(f"features must have shape (B, C = {self.in_channels}, H, W), got {tuple(features.shape)}")
        b, _, h, w = features.shape
        if tuple(measurement.shape) != (b, self.dim, h, w):
            raise ValueError(f"measurement must have shape (B, D, H, W) = {(b, self.dim, h, w)} (the same B, H, W "
                             f"as the features, D = {self.dim}), got {tuple(measurement.shape)}")

    def forward(self, features: Tensor, measurement: Tensor, data_scale: Tensor | float = 1.0,
                smooth_scale: Tensor | float = 1.0) -> GridFactors:
        """features (B, C, H, W), measurement (B, D, H, W), scales floats or (B,) -> :class:`GridFactors`."""
        self._check(features, measurement)
        o = self.raw(features)
        o = o.to(torch.promote_types(o.dtype, measurement.dtype))  # bfloat16 under autocast -> float32
        d, p = self.dim, self.n_precision
        ss = _scale(smooth_scale, o, "smooth_scale", 2)
        if self.precision == "scalar":
            a = _scale(data_scale, o, "data_scale", 2) * positive(o[:, 0], self.floor)
        else:
            a = _scale(data_scale, o, "data_scale", 4) * cholesky_precision(o[:, :p], d, self.floor)
        wh = ss * positive(o[:, p, :, :-1], self.floor)  # edge (y, x) - (y, x+1)
        wv = ss * positive(o[:, p + 1, :-1, :], self.floor)  # edge (y, x) - (y+1, x)
        c = p + 2
        z = measurement
        if self.refine:
            z, c = measurement + o[:, c:c + d], c + d
        k_data = k_smooth = None
        if self.robust:
            k_data, c = positive(o[:, c], self.floor), c + 1
        if self.robust_smooth:
            k_smooth = (positive(o[:, c, :, :-1], self.floor), positive(o[:, c + 1, :-1, :], self.floor))
        return GridFactors(z, a, wh, wv, k_data, k_smooth)

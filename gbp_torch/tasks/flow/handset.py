"""Hand-set optical flow: coarse-to-fine warping, robust constancy + smoothness, multigrid D = 2 GBP.

Per pyramid level (coarse to fine, ratio ~0.75) and per warp:

1. linearise brightness + gradient constancy at the current flow (:func:`gbp_torch.vision.flow_data_term`,
   bicubic warping, B-spline at the finest level): a 2x2 data precision ``a`` and target ``z`` per pixel;
2. ask the factor source (:mod:`.factors`) for the data scale, robust thresholds and edge weights;
3. IRLS: generalised-Charbonnier weights of the linearised data residual and of the flow differences
   (:mod:`.penalty`, graduated from least squares over the first warps), then a warm-started multigrid
   GBP solve (:func:`gbp_torch.grid.solve`, D = 2);
4. a median filter of the flow weighted by the frame's similarity and the data term's robust weight
   (:func:`~gbp_torch.vision.weighted_median_filter`), the cheap form of the non-local term.

At one coarse level, before its warps, a discrete search (:mod:`.search`) moves pixels to integer displacements
that clearly match better than the incoming flow: motions too large or too fast for the coarse levels to follow.

The flow goes up the pyramid with :func:`gbp_torch.vision.upsample_flow`. The covariance is GBP's
marginal 2x2 covariance of the last solve times ``var_scale`` plus a motion-boundary term (``boundary_var``
times the square of the flow's local range), both fitted on synthetic pairs (:mod:`.calibrate`); pixels
whose final constancy residual exceeds ``occlusion_residual`` (or whose match leaves frame 2) are reported
occluded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...grid import GridConfig, MultigridConfig, solve
from ...grid.checks import check_inputs
from ...grid.config import SMOOTHERS
from ...grid.forward import GridResult
from ...grid.observability import (
    GridUnobservableWarning,
    Unobservable,
    pixel_counts,
    typical_precision,
    unobservable,
    with_hidden_variance,
)
from ...grid.system import squared_differences
from ...modes import BackwardLike
from ...progress import progress_bar
from ...vision import (
    DataTerm,
    as_unit_float,
    colour_guide,
    flow_data_term,
    gaussian_blur,
    gaussian_pyramid,
    luma,
    match_exposure,
    median_filter,
    upsample_flow,
    weighted_median_filter,
)
from ..settings import check_choice, check_int, check_number
from .calibrate import boundary_variance
from .factors import FactorSource, FlowFactors, HandsetFactors
from .output import FlowOutput
from .penalty import charbonnier_weight, gnc_weight
from .search import displacement_search, search_level

#: interpolations of the warp (:func:`~gbp_torch.vision.sample`)
WARP_MODES = ("bicubic", "bspline", "bilinear", "nearest")
#: the smallest frame side (pixels) the models take
MIN_FRAME = 8


@dataclass(frozen=True)
class HandsetFlowConfig:
    """Settings of the warping loop (the factors are the factor source's business).

    Attributes:
        ratio, min_size: image pyramid (size ratio between levels, smallest side of the coarsest; less on frames
            under twice min_size, see :meth:`HandsetFlow.coarsest_size`).
        warps: warps per level; fine_warps: warps at the finest level (None: ``warps``).
        irls: reweighted solves per warp.
        solve_iters: multigrid FCG steps per solve (warm-started).
        gradient_weight: weight of gradient constancy relative to brightness constancy.
        blend: share of frame 1's gradient in the linearisation (0.5 averages both frames).
        mode: warp interpolation (``"bicubic"``, ``"bspline"``, ``"bilinear"``); fine_mode: at the finest level
            (None: ``mode``). Keys' cubic (``"bicubic"``) shifts fine texture with a phase error that pulls sub-pixel
            flow toward half-pixel positions (a pure 0.25 px translation of Middlebury's Hydrangea frame came out
            0.033 px long); B-spline interpolation cuts that to 0.008 px. At the finest level only: there it
            lowered the synthetic EPE of both models a little (hand-set 0.3290 -> 0.3271, seed 5000 0.2774 ->
            0.2758, large motions 0.946 -> 0.942), while B-spline warps at the coarse levels, whose motions are the
            largest, lost on large motions (0.946 -> 1.07).
        median: median filter size between warps (1: none).
        median_sigma: the median's window values weigh ``exp(-dI^2 / (2 median_sigma^2))``, dI the level
            frame's colour difference to the centre (:func:`~gbp_torch.vision.colour_guide`: for gray frames the
            gray-level difference; :func:`~gbp_torch.vision.weighted_median_filter`: motion edges that follow
            image edges stay put); None: the plain median.
        presmooth: sigma (pixels) of a Gaussian blur of the frames before the pyramid (0: none). Gradient
            constancy linearises with second derivatives, which amplify sensor noise. Chosen on synthetic pairs
            (``benchmarks/flow_tune.py``, 16 pairs): hand-set EPE 0.337 -> 0.328 at seed 1000 (held out: seed 5000
            0.291 -> 0.276, noisier pairs 0.573 -> 0.560), ``gbp_flow`` without retraining 0.260 -> 0.252 and
            0.273 -> 0.263; sigma 0.3 / 0.65 / 0.8 / 1.2 gave 0.337 / 0.328 / 0.337 / 0.392 at seed 1000 (measured
            while the median of gray frames was still guided by the blurred luma).
        texture: structure-texture split ``I - texture * blur(I, texture_sigma)`` (0: raw images).
        alpha: exponent of the generalised Charbonnier penalties (data and smoothness).
        gnc_warps: warps over which the penalties go from quadratic to robust (0: robust at once).
        occlusion_residual: final constancy residual above which a pixel is reported occluded (8 times the
            hand-set data threshold). A fixed level for every factor source: a learned source's per-pixel robust
            thresholds are IRLS settings, often well below the hand-set one, and 8 times them flagged 43 % of the
            visible pixels of synthetic pairs for ``gbp_flow`` (this level: 10 %, and 63 % of the occluded ones).
        smoother: the multigrid smoother, ``"gbp"`` or ``"jacobi"``.
        median_every_warp: median-filter after every warp (else after the last warp of each level).
        normalise: zeta > 0: constraint normalisation of the constancy channels (``flow_data_term``'s
            ``normalise``; residuals in pixels along each gradient, every textured channel weighing alike; the
            factor source's data scale and threshold must then be in those units); 0: raw channels. Off: it won on
            synthetic pairs but not on the benchmarks (docs/flow.md).
        var_scale, boundary_var: the covariance's calibration, ``var_scale * GBP's covariance +
            boundary_var * motion_range(flow)^2 I`` (:mod:`.calibrate`; fitted by ``benchmarks/flow_calibrate.py``
            on the learned model's 256 calibration pairs, half of them with the large motions of
            :data:`~.synthetic.LARGE_MOTION`, covering 95 % of each half: held-out coverage 0.971 on pairs of the
            default motions and 0.923 on large ones, 0.940 / 0.730 near motion boundaries, where one factor alone
            (426.9, 0) gave 0.980 / 0.926 and 0.849 / 0.599).
        search_reach: the largest motion (full-resolution pixels, per component) that the discrete displacement search
            covers (:mod:`.search`; 0: no search); it runs at the finest level whose scale is at most
            ``search_radius / search_reach`` (none on frames whose pyramid has no such level).
        search_radius: the search window at that level, +- pixels (a (2 r + 1)^2 set of displacements).
        search_margin: a pixel takes its best displacement only if that one's cost is below ``1 - margin`` times its
            incoming flow's. Reach, radius and margin were chosen on synthetic pairs of Train400 textures upscaled 2x
            (docs/flow.md).
        match_exposure: map frame 2 per channel to frame 1's mean and standard deviation first where some channel's
            gain or bias differs by at least 0.05 (:func:`gbp_torch.vision.exposure.match_exposure`: a change of
            exposure between the frames breaks brightness constancy; ``gbp-flow --match-exposure``). Off by default:
            it won on synthetic pairs (16 each, learned model, EPE: default motions 0.244 -> 0.225, large motions
            0.877 -> 0.787, gains 0.6-1.6 0.317 -> 0.262) but read Sintel market_5's content change as a 5.6 % gain
            (clean EPE 15.09 -> 15.46; docs/flow.md).
    """

    ratio: float = 0.75
    min_size: int = 16
    warps: int = 2
    fine_warps: int | None = None
    irls: int = 2
    solve_iters: int = 3
    gradient_weight: float = 400.0
    blend: float = 0.3
    mode: str = "bicubic"
    fine_mode: str | None = "bspline"
    median: int = 7
    median_sigma: float | None = 0.1
    presmooth: float = 0.5
    texture: float = 0.0
    texture_sigma: float = 3.0
    alpha: float = 0.45
    gnc_warps: int = 3
    occlusion_residual: float = 0.32
    smoother: str = "jacobi"
    median_every_warp: bool = False
    var_scale: float = 35.89
    boundary_var: float = 0.9374
    normalise: float = 0.0
    search_reach: float = 56.0
    search_radius: int = 10
    search_margin: float = 0.25
    match_exposure: bool = False

    def __post_init__(self) -> None:
        for name, least in (("min_size", 1), ("warps", 1), ("irls", 1), ("solve_iters", 1), ("median", 1),
                            ("gnc_warps", 0), ("search_radius", 1)):
            check_int(self, name, least)
        if self.fine_warps is not None:
            check_int(self, "fine_warps", 1)
        if self.median % 2 == 0:
            raise ValueError(f"HandsetFlowConfig.median must be odd, got {self.median}")
        check_number(self, "ratio", lambda v: 0 < v < 1, "in (0, 1)")
        check_number(self, "blend", lambda v: 0 <= v <= 1, "in [0, 1]")
        check_number(self, "alpha", lambda v: 0 < v <= 1, "in (0, 1]")
        for name in ("occlusion_residual", "texture_sigma", "var_scale"):
            check_number(self, name, lambda v: v > 0, "> 0")
        check_number(self, "search_margin", lambda v: 0 <= v < 1, "in [0, 1)")
        for name in ("gradient_weight", "presmooth", "texture", "boundary_var", "normalise", "search_reach"):
            check_number(self, name, lambda v: v >= 0, ">= 0")
        if self.median_sigma is not None:
            check_number(self, "median_sigma", lambda v: v > 0, "> 0 or None")
        check_choice(self, "mode", WARP_MODES)
        if self.fine_mode is not None:
            check_choice(self, "fine_mode", WARP_MODES)
        check_choice(self, "smoother", SMOOTHERS)
        if not isinstance(self.match_exposure, bool):
            raise ValueError(f"HandsetFlowConfig.match_exposure must be True or False, got {self.match_exposure!r}")


class HandsetFlow(nn.Module):
    """Optical flow with hand-set factors; a learned factor source plugs into the same loop.

    Args:
        config: the warping loop's settings.
        factors: the factor source (default :class:`~.factors.HandsetFactors`).
        backward: gradient mode of the recorded solves (see :meth:`forward_sequence`).

    Forward: ``frame1, frame2`` (B, C, H, W) in [0, 1] -> :class:`~.output.FlowOutput`. With gradients
    enabled only the last warp is recorded.
    """

    def __init__(self, config: HandsetFlowConfig = HandsetFlowConfig(), factors: FactorSource | None = None,
                 backward: BackwardLike = "unroll"):
        super().__init__()
        self.config = config
        self.factors = factors if factors is not None else HandsetFactors()
        self.backward = backward
        self.progress = False  # True: a tqdm bar over the warps (the CLI sets it)

    def forward(self, frame1: Tensor, frame2: Tensor) -> FlowOutput:
        """Flow of ``frame1`` (B, C, H, W) in [0, 1] towards ``frame2`` (same shape) -> :class:`FlowOutput`
        with flow (B, 2, H, W), cov (B, 2, 2, H, W) and occluded (B, 1, H, W). uint8 / uint16 frames are
        scaled to [0, 1]."""
        return self.forward_sequence(frame1, frame2, record="last")[0]

    def forward_sequence(self, frame1: Tensor, frame2: Tensor, record: str = "all") -> tuple[FlowOutput, list[Tensor]]:
        """The output and the flow after every warp (coarse to fine, each on its level's grid, in that level's
        pixels).

        With gradients enabled, ``record="all"`` records every warp (each solve with :attr:`backward`, each
        linearisation point, the incoming flow, a constant), for a loss on the whole sequence; ``"last"``
        records only the last warp (the flows of the others are then constants). The median filter passes
        gradients to the selected values."""
        if record not in ("all", "last"):
            raise ValueError(f"record must be 'all' or 'last', got {record!r}")
        frame1, frame2 = checked_frames(frame1, frame2)
        # in float32 whatever the caller's autocast: under it the pre-blur (a convolution) would return bfloat16 /
        # float16 frames, whose gradients and warps the constancy terms cannot use
        with torch.autocast(frame1.device.type, enabled=False):
            return self._sequence(frame1, frame2, record)

    def _sequence(self, frame1: Tensor, frame2: Tensor, record: str) -> tuple[FlowOutput, list[Tensor]]:
        c = self.config
        grad = torch.is_grad_enabled()
        with torch.no_grad():
            if c.match_exposure:
                frame2 = match_exposure(frame1, frame2)
            floor = self.coarsest_size(*frame1.shape[-2:])
            pyr1 = gaussian_pyramid(self.preprocess(frame1), ratio=c.ratio, min_size=floor)
            pyr2 = gaussian_pyramid(self.preprocess(frame2), ratio=c.ratio, min_size=floor)
            # the median's guide is the frame as given (colour, not blurred), so a gray frame and its three equal
            # channels give one flow
            guides = gaussian_pyramid(colour_guide(frame1), ratio=c.ratio, min_size=floor) \
                if c.median > 1 and c.median_sigma is not None else pyr1
        flow = frame1.new_zeros(frame1.shape[0], 2, *pyr1[-1].shape[-2:])
        searched = search_level([p.shape[-1] for p in pyr1], c.search_radius, c.search_reach)
        sequence = []
        count = 0
        bar = progress_bar(self.total_warps(len(pyr1)), "flow", "warp", self.progress)
        for level in range(len(pyr1) - 1, -1, -1):
            flow = upsample_flow(flow.detach(), tuple(pyr1[level].shape[-2:]))
            if level == searched:
                with torch.no_grad():
                    flow = displacement_search(pyr1[level], pyr2[level], flow, c.search_radius, c.search_margin)[0]
            warps = c.warps if level > 0 or c.fine_warps is None else c.fine_warps
            for w in range(warps):
                result = data = factors = undetermined = None  # drop the last warp's full-size fields first
                robustness = 1.0 if c.gnc_warps == 0 else min(1.0, count / c.gnc_warps)
                on = grad and (record == "all" or (level == 0 and w == warps - 1))
                with torch.set_grad_enabled(on):
                    x0 = flow.detach()
                    flow, result, data, factors, undetermined = self._warp(
                        pyr1[level], pyr2[level], x0, level, robustness, self.backward if on else "unroll")
                    if c.median > 1 and (c.median_every_warp or w == warps - 1):
                        with torch.no_grad():
                            confidence = self.data_weight(data, factors, x0, flow).unsqueeze(1)
                        flow = self.median(flow, guides[level], confidence)
                sequence.append(flow)
                count += 1
                bar.update()
        bar.close()
        return self._output(flow, result, data, undetermined), sequence

    def median(self, flow: Tensor, image: Tensor, confidence: Tensor | None = None) -> Tensor:
        """The median filter of the flow (B, 2, h, w), guided by the level's frame 1 (B, C, h, w;
        :func:`~gbp_torch.vision.colour_guide`) and each window value's ``confidence`` (B, 1, h, w) unless
        ``median_sigma`` is None."""
        c = self.config
        if c.median_sigma is None:
            return median_filter(flow, c.median)
        return weighted_median_filter(flow, image, c.median, c.median_sigma, confidence=confidence)

    def data_weight(self, data: DataTerm, factors: FlowFactors, x0: Tensor, x: Tensor) -> Tensor:
        """The robust data weight in (0, 1] of each pixel's linearised constancy residual at ``x`` (the warp
        was linearised at x0), (B, h, w): the IRLS weight of the data term, and the median's confidence
        (occluded and mismatched pixels, whose flow is the least reliable, hardly vote; chosen on synthetic
        pairs, with 3 IRLS solves per warp: flow_tune EPE 0.359 -> 0.343, held-out seed 5000 0.319 -> 0.298)."""
        return charbonnier_weight(squared_linearised_residual(data, x0, x), factors.k_data, self.config.alpha)

    def coarsest_size(self, height: int, width: int) -> int:
        """The pyramid's floor for frames of ``height`` x ``width``: ``min_size``, lowered on frames whose smaller side
        is under twice it (to half that side, 8 at least), so that small frames still get coarse levels (a 17 x 33
        pair had one level, on which a 3 px motion is out of the linearisation's reach)."""
        return min(self.config.min_size, max(8, min(height, width) // 2))

    def total_warps(self, levels: int) -> int:
        """Warps of a run over a pyramid of ``levels`` levels."""
        c = self.config
        return (levels - 1) * c.warps + (c.warps if c.fine_warps is None else c.fine_warps)

    def preprocess(self, frame: Tensor) -> Tensor:
        """Luma (B, 1, H, W) of an RGB / gray frame, blurred by ``presmooth``, optionally its texture part."""
        c = self.config
        frame = gaussian_blur(luma(frame), c.presmooth)
        if c.texture > 0:
            frame = frame - c.texture * gaussian_blur(frame, c.texture_sigma)
        return frame

    def _warp(self, image1: Tensor, image2: Tensor, flow: Tensor, level: int, robustness: float,
              backward: BackwardLike = "unroll"
              ) -> tuple[Tensor, GridResult, DataTerm, FlowFactors, Unobservable | None]:
        """One warp: linearise at ``flow`` (B, 2, h, w), IRLS solves (``backward``: their gradient mode). Returns the
        flow, the last solve's result, the data term, the factors and what the last solve's data leave undetermined
        (:func:`regularise_undetermined`)."""
        c = self.config
        mode = c.fine_mode if level == 0 and c.fine_mode is not None else c.mode
        data = flow_data_term(image1, image2, flow, gradient_weight=c.gradient_weight, blend=c.blend, mode=mode,
                              normalise=c.normalise)
        factors = self.factors(image1, data, flow, level)
        x = flow
        solver = GridConfig(levels=None, multigrid=MultigridConfig(smoother=c.smoother))
        for _ in range(c.irls):
            a, wh, wv = self._weighted(data, factors, flow, x, robustness)
            z, a, undetermined = regularise_undetermined(data.z, a, wh, wv, flow)
            result = solve(z, a, (wh, wv), x0=x, iters=c.solve_iters, config=solver, validate=False,
                           backward=backward)
            x = result.mean
        return x, result, data, factors, undetermined

    def _weighted(self, data: DataTerm, factors: FlowFactors, x0: Tensor, x: Tensor,
                  robustness: float) -> tuple[Tensor, Tensor, Tensor]:
        """IRLS-weighted data precision (B, 2, 2, h, w) and edge weights at estimate ``x``."""
        alpha = self.config.alpha
        wd = gnc_weight(self.data_weight(data, factors, x0, x), robustness) * factors.data_scale
        kh, kv = factors.k_smooth if isinstance(factors.k_smooth, tuple) else (factors.k_smooth,) * 2
        dh_sq, dv_sq = squared_differences(x)
        wh = factors.wh * gnc_weight(charbonnier_weight(dh_sq, kh, alpha), robustness)
        wv = factors.wv * gnc_weight(charbonnier_weight(dv_sq, kv, alpha), robustness)
        return data.a * wd[:, None, None], wh, wv

    def _output(self, flow: Tensor, result: GridResult, data: DataTerm,
                undetermined: Unobservable | None) -> FlowOutput:
        c = self.config
        occluded = ((data.residual > c.occlusion_residual) | ~data.valid)[:, None]
        cov = result.var * c.var_scale
        if c.boundary_var > 0:
            extra = boundary_variance(flow, c.boundary_var)[:, 0]
            cov[:, 0, 0] += extra
            cov[:, 1, 1] += extra
        if undetermined is not None:
            warnings.warn(f"flow: pixels whose motion the frames do not determine (no texture, or texture of one "
                          f"direction only); {pixel_counts(undetermined.rel > 0)}. The variance of the undetermined "
                          "components is inf.", GridUnobservableWarning, stacklevel=3)
            cov = with_hidden_variance(cov, undetermined.hidden)
        return FlowOutput(flow=flow, cov=cov, occluded=occluded)


def regularise_undetermined(z: Tensor, a: Tensor, wh: Tensor, wv: Tensor,
                            start: Tensor) -> tuple[Tensor, Tensor, Unobservable | None]:
    """A solve's target z (B, 2, H, W) and data precision a (B, 2, 2, H, W) (edge weights wh, wv) with the
    observability regularisation (:mod:`gbp_torch.grid.observability`) where the data do not determine the flow:
    frames without texture, or whose texture runs in one direction only (the aperture problem over a whole
    region). There the solve keeps the undetermined components at the warp's ``start`` (B, 2, H, W): the singular
    system let them drift by tens of pixels, and the next warp sampled outside the frame. Where there are no data
    at all the target is ``start`` too (z is rounding noise there); along one seen direction z already falls back
    to the start in the other. Elsewhere z and a are unchanged. Returns (z, a, what
    :func:`~gbp_torch.grid.observability.unobservable` found, or None). Loopy GBP's variance there is finite (its
    messages reach a fixed point without data): the output sets it to inf."""
    with torch.no_grad():
        sys, _, _ = check_inputs(z.detach(), a.detach(), (wh.detach(), wv.detach()), validate=False)
        found = unobservable(sys)
        if found is None:
            return z, a, None
        extra = typical_precision(sys).view(-1, 1, 1) * found.rel
    z = torch.where((found.rel >= 1)[:, None], start, z)
    return z, a + extra[:, None, None] * torch.eye(2, dtype=a.dtype, device=a.device)[..., None, None], found


def squared_linearised_residual(data: DataTerm, x0: Tensor, x: Tensor) -> Tensor:
    """``|It + J (x - x0)|^2`` over the constancy channels, (B, H, W), from the data term's a, eta, residual.

    ``|It + J dx|^2 = dx^T a dx - 2 dx^T (eta - a x0) + |It|^2`` with dx = x - x0 (B, 2, H, W).
    """
    dx = x - x0
    a_dx = torch.einsum("bdehw,behw->bdhw", data.a, dx)
    ax0 = torch.einsum("bdehw,behw->bdhw", data.a, x0)
    q = (dx * (a_dx - 2 * (data.eta - ax0))).sum(1) + data.residual.square()
    return q.clamp_min(0)


def checked_frames(frame1: Tensor, frame2: Tensor) -> tuple[Tensor, Tensor]:
    """The frames as floating point in [0, 1] (uint8 / uint16 scaled), after shape and value checks."""
    frames = []
    for name, f in (("frame1", frame1), ("frame2", frame2)):
        if not isinstance(f, Tensor) or f.dim() != 4:
            shape = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"{name} must be a (B, C, H, W) tensor (floating point in [0, 1], uint8 or uint16), "
                             f"got {shape}")
        frames.append(as_unit_float(f, name))  # also refuses NaN / inf
    frame1, frame2 = frames
    if frame1.shape != frame2.shape:
        raise ValueError(f"frame2 must have frame1's shape (B, C, H, W) = {tuple(frame1.shape)}, "
                         f"got {tuple(frame2.shape)}")
    if min(frame1.shape[-2:]) < MIN_FRAME:
        raise ValueError(f"frames must be at least {MIN_FRAME} x {MIN_FRAME} pixels, got {tuple(frame1.shape[-2:])}")
    if frame1.shape[0] == 0:
        raise ValueError("frame1 and frame2 hold no pair (B = 0)")
    return frame1, frame2

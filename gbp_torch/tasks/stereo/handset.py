"""Hand-set stereo: multigrid GBP on local quadratic fits of a census cost volume.

    model = HandsetStereo()
    out = model(left, right, max_disp=64)        # StereoOutput: disparity, var, occluded (B, 1, H, W)

Steps (one cost volume, then ``outer`` relinearisations):

0. the right view's row offset (up to ``CostConfig.row_reach`` rows) and its change across the width (a small
   rotation) estimated and, from 0.1 px (0.4 px across the width) on, resampled away (:mod:`.rows`: pairs whose
   rectification is off by a fraction of a row); a :class:`~.rows.SwappedViewsWarning`
   when the pair matches better at negative disparities (left and right given swapped);
1. the census cost volume over all disparities (:func:`~.cost.cost_volume`, chunked, uint8; optionally
   mixed with the cost of learned matching features, ``features``), aggregated by a guided filter of
   each slice (or, in regions where a window sheared by +-0.5 or +-1 px of disparity per row matches
   clearly better, as on floors, over that sheared window) and then by semi-global (SGM) scanline recursions
   (:mod:`.sgm`);
2. cues: winner-take-all (WTA) v0, the peak-ratio confidence, the right view's WTA, the
   left-right check and the left border's out-of-view strip (occlusions); the initial estimate is
   v0's parabola fit, occlusions filled from the background side, through a guided weighted median
   (:func:`guided_median`, comparing values along the local disparity slope);
3. the factor source (:class:`~.factors.HandsetFactors`, or a learned one) turns cues and the
   left image into data scales, robust thresholds and edge weights;
4. repeat: the coupled search ``v = argmin_d C(d) + theta_t (d - u)^2`` over the *whole* range
   (so a pixel can jump to another minimum, unlike a fixed window; theta grows each round so
   the search narrows around the smooth estimate u), a parabola fit at v (z, curvature), data
   precision = data_scale * curvature, occluded pixels' targets filled from the background side
   of their row; one robust multigrid GBP solve (Tukey data, Cauchy smoothness, warm start u);
5. sub-pixel refinement by Gauss-Newton steps of brightness constancy on contrast-normalised images
   (:mod:`.refine`), within ``RefineConfig.max_step`` (0.15 px) of the census estimate, then another guided
   weighted median;
6. the disparity is the last mean; its variance the last census round's GBP marginal variance times ``var_scale``
   (fitted on synthetic pairs, see train/stereo/calibrate.py): it reads the cost's curvature and the data scales,
   so it ranks the errors far better than the refinement's variance, which it replaced (2026-12-07; docs/stereo.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...grid import GridConfig, MultigridConfig
from ...heap import release_free_memory
from ...progress import progress_bar
from ...vision import as_unit_float, colour_guide, field_slopes, weighted_median_filter
from ..settings import check_int, check_number, is_real
from .cost import CostConfig, CostVolume, check_pair, cost_volume
from .factors import HandsetFactors, StereoCues, StereoFactors
from .occlusion import fill_background, left_right_check, out_of_view
from .output import StereoOutput
from .refine import RefineConfig, photometric_refine
from .robust_solve import weighted_solve
from .rows import SwappedViewsWarning, align_rows, looks_swapped, match_costs, row_offset, row_tilt
from .search import coupled_search, quadratic_fit, right_winner
from .slopes import edge_slopes


@dataclass(frozen=True)
class SolveSchedule:
    """The outer loop.

    Attributes:
        outer: relinearisations (coupled search + GBP solve).
        theta: coupling weights theta_t of the searches (cost units per px^2), one per round
            (the last is repeated). Three rounds (0.002, 0.02, 0.2) instead of four (0.002, 0.01, 0.05, 0.2): a
            quarter less of the rounds' time for bad > 1 summed over the four synthetic colour sets 4.241 -> 4.258 %
            (docs/stereo.md).
        iters: multigrid FCG steps per GBP solve.
        curvature: (min, max) clamp of the fitted curvature before scaling.
        lr_threshold: left-right check threshold in px.
        confidence_floor: the peak ratio's least denominator, ``(C_2 - C_1) / max(C_2, floor)`` (cost units; one
            census bit of a 7x7 window is 1/48): a cost curve flat to a few bits is ambiguous, not confident (without
            it a constant pair, whose SGM costs differ by one uint8 step, had full confidence everywhere).
        median: window sizes (samples per side) of the guided weighted medians (:func:`guided_median`) of the
            initial and of the final disparity (1: off).
        median_dilation: the medians' windows read every this-many-th pixel (7 samples dilated by 2: a 13x13 window).
        median_sigma: colour distance (:func:`~gbp_torch.vision.colour_guide`, images in [0, 1]) at which a
            window value's weight in those medians falls to exp(-1/2). Sizes and sigma were chosen on synthetic pairs
            (``train.stereo.synth_bench``, seeds 100 and 200, 16 pairs each: bad > 1 px 1.86 / 4.32 %
            without them, 1.62 / 3.91 % with the final one, 1.59 / 3.79 % adding a 7x7 initial one,
            1.57 / 3.65 % with 11x11 for both); the dilation later on the four colour sets of
            ``train.stereo.synth_bench --tint 0.3`` (bad > 1 summed: 11x11 4.39 %, 7x7 dilated by 2 4.24 %, by 3
            4.52 %; 9x9 by 2 4.43 %, 5x5 by 2 4.52 %, by 3 4.33 %; docs/stereo.md).
        median_slope: window of the robust slope estimate (:func:`~gbp_torch.vision.field_slopes`) with which the
            medians compare values along the local plane (0: upright medians, which move a steep ramp such as a
            floor's disparity; chosen with the sheared costs on synthetic pairs with floors, see
            :class:`~.cost.CostConfig`).
        slope_window: window of the robust local slopes that the smoothness expects along each edge
            (:mod:`.slopes`; 0: the plain, fronto-parallel smoothness).
        slope_shrink: slopes below this (px per px) count as 0, above it they are reduced by it (noise in the
            estimate's slopes stays out of the prior). Window and shrink were chosen on synthetic colour pairs
            (``train.stereo.synth_bench --tint 0.3``, 16 pairs, floors in none or all scenes): see docs/stereo.md.
        irls: robust solves per round, each reweighted at the previous one's solution (the first at the round's
            start), all with the round's slopes.
    """

    outer: int = 3
    theta: tuple[float, ...] = (0.002, 0.02, 0.2)
    iters: int = 6
    curvature: tuple[float, float] = (0.01, 1.0)
    lr_threshold: float = 1.0
    confidence_floor: float = 0.05
    median: tuple[int, int] = (7, 7)
    median_dilation: int = 2
    median_sigma: float = 0.03
    median_slope: int = 9
    slope_window: int = 15
    slope_shrink: float = 0.05
    irls: int = 2

    def __post_init__(self) -> None:
        check_int(self, "outer", 1)
        check_int(self, "slope_window", 0)
        check_int(self, "irls", 1)
        if self.slope_window % 2 == 0 and self.slope_window:
            raise ValueError(f"SolveSchedule.slope_window must be 0 or odd, got {self.slope_window!r}")
        check_number(self, "slope_shrink", lambda v: v >= 0, ">= 0")
        check_int(self, "iters", 1)
        check_int(self, "median_slope", 0)
        check_int(self, "median_dilation", 1)
        theta, curvature, median = tuple(self.theta), tuple(self.curvature), tuple(self.median)
        if not theta or any(not is_real(t) or t < 0 for t in theta):
            raise ValueError(f"SolveSchedule.theta must be one or more finite numbers >= 0, got {self.theta!r}")
        if len(curvature) != 2 or not all(is_real(c) for c in curvature) or not 0 < curvature[0] <= curvature[1]:
            raise ValueError(f"SolveSchedule.curvature must be (min, max) with 0 < min <= max, got {self.curvature!r}")
        if len(median) != 2 or any(isinstance(m, bool) or not isinstance(m, int) or m < 1 or m % 2 == 0
                                   for m in median):
            raise ValueError(f"SolveSchedule.median must be two odd sizes >= 1, got {self.median!r}")
        check_number(self, "lr_threshold", lambda v: v > 0, "> 0")
        check_number(self, "confidence_floor", lambda v: v >= 0, ">= 0")
        check_number(self, "median_sigma", lambda v: v > 0, "> 0")
        for name, value in (("theta", theta), ("curvature", curvature), ("median", median)):
            object.__setattr__(self, name, value)  # lists from a config file become tuples


#: The stereo solves: multigrid FCG with damped-Jacobi smoothing. The GBP smoother needs its message precisions set up
#: for every solve (about 20 ms each on a teddy pair, seven solves a run); the Jacobi smoother does not, and only the
#: variance reported at the end sets them up once. On the four synthetic colour sets bad > 1 summed 4.258 -> 4.259 %,
#: MAE 0.6026 -> 0.6028, 4 % less time per pair (docs/stereo.md).
STEREO_GRID = GridConfig(levels=None, multigrid=MultigridConfig(smoother="jacobi"))

#: The hand-set model's variance calibration: the last census round's GBP variance times this covers 95 % of the
#: non-occluded pixels of 16 synthetic pairs with depth edges as hard as real scenes'
#: (``train.stereo.synth_bench.EDGES``, seed 200) within 1.96 std (``python -m train.stereo.calibrate``; 0.2372 for the
#: photometric refinement's variance, reported until 2026-12-07, which ranks the errors far less well: docs/stereo.md).
VAR_SCALE = 0.2580


def guided_median(u: Tensor, guide: Tensor, size: int, sigma: float, slope_window: int = 0,
                  dilation: int = 1) -> Tensor:
    """The weighted median of u (B, H, W) guided by the left image (B, C, H, W)
    (:func:`~gbp_torch.vision.colour_guide`): removes isolated errors and foreground fattening without
    moving depth edges that follow colour or intensity edges; (B, H, W); size 1: u itself. ``slope_window`` > 0:
    values compared along the local plane (:func:`~gbp_torch.vision.field_slopes` of that window)."""
    field = u.unsqueeze(1)
    slopes = field_slopes(field, slope_window) if slope_window > 0 and size > 1 else None
    return weighted_median_filter(field, guide, size, sigma, slopes=slopes, dilation=dilation).squeeze(1)


def cues_of(volume: CostVolume, lr_threshold: float, chunk: int, confidence_floor: float
            ) -> tuple[StereoCues, Tensor]:
    """(:class:`StereoCues`, WTA disparity v0 (B, H, W) long) of a cost volume; the peak ratio's denominator is
    at least ``confidence_floor`` (:class:`SolveSchedule`)."""
    v0, c1 = coupled_search(volume, chunk=chunk)
    _, c2 = coupled_search(volume, exclude=v0, radius=1, chunk=chunk)
    # with 2 disparities nothing lies outside +-1 px of the best (c2 = inf): no competitor, full confidence
    ratio = (c2 - c1) / c2.clamp_min(max(confidence_floor, 1e-6))
    conf = torch.where(torch.isfinite(c2), ratio.clamp(0, 1), torch.ones_like(c1))
    winner_right = right_winner(volume).float()
    occ = left_right_check(v0.float(), winner_right, lr_threshold) | out_of_view(winner_right)
    return StereoCues(conf, occ, c1), v0


class HandsetStereo(nn.Module):
    """Stereo by robust multigrid GBP on quadratic fits of a census cost; hand-set factors by default.

    Args:
        cost: :class:`~.cost.CostConfig` of the matching cost.
        factors: the factor source, ``(left, StereoCues) -> StereoFactors`` (default :class:`HandsetFactors`).
        schedule: :class:`SolveSchedule` of the outer loop.
        grid: :class:`~gbp_torch.grid.GridConfig` of the solves (default :data:`STEREO_GRID`).
        refine: :class:`~.refine.RefineConfig` of the sub-pixel refinement (``RefineConfig(steps=0)``: off).
        var_scale: calibration factor of GBP's variances (default :data:`VAR_SCALE`).
        features: a :class:`~.features.MatchingFeatures` net whose cost joins the census cost (None: census only).

    Forward: ``left, right`` (B, C, H, W) in [0, 1], ``max_disp`` int in [1, W - 1] ->
    :class:`~.output.StereoOutput` with disparity, var and occluded (B, 1, H, W).
    """

    def __init__(self, cost: CostConfig | None = None, factors: nn.Module | None = None,
                 schedule: SolveSchedule | None = None, grid: GridConfig | None = None,
                 refine: RefineConfig | None = None, var_scale: float = VAR_SCALE, features: nn.Module | None = None):
        super().__init__()
        self.matching = features
        self.cost = cost or CostConfig()
        self.factors = factors if factors is not None else HandsetFactors()
        self.schedule = schedule or SolveSchedule()
        self.grid = grid or STEREO_GRID
        self.refine = refine or RefineConfig()
        self.var_scale = var_scale
        self.progress = False  # True: a tqdm bar over the stages (the CLI sets it)

    #: whether the last relinearisation is recorded for gradients when autograd is on (a learned factor
    #: source sets it, see :class:`~.learned.LearnedStereo`); the hand-set model runs without a graph.
    records_gradients = False
    #: the gradient mode of that recorded solve (a :class:`~gbp_torch.modes.BackwardConfig`; the learned model's)
    backward = None

    def forward(self, left: Tensor, right: Tensor, max_disp: int) -> StereoOutput:
        left, right = as_unit_float(left, "left").float(), as_unit_float(right, "right").float()
        record = self.records_gradients and torch.is_grad_enabled()
        with torch.no_grad():
            check_pair(left, right, max_disp)
            costs = match_costs(left, right, max_disp, self.cost.row_reach)
            swapped = looks_swapped(costs)
            right, offset, tilt = align_rows(right, row_offset(costs), row_tilt(costs, right.shape[-1]),
                                             float(costs.strip_columns.mean()))
        if bool(swapped.any()):
            which = "" if len(swapped) == 1 else f" (items {swapped.nonzero()[:, 0].tolist()})"
            warnings.warn(f"stereo: the pair matches better at negative disparities than at 0..max_disp{which}: are "
                          "left and right swapped? (left(x) matches right(x - d), d >= 0)", SwappedViewsWarning,
                          stacklevel=2)
        bar = progress_bar(self.schedule.outer + 2, "stereo", "stage", self.progress)
        with torch.no_grad():
            volume = cost_volume(left, right, max_disp, self.cost, self.matching, self.progress)
            cues, v0 = cues_of(volume, self.schedule.lr_threshold, self.cost.chunk_for(left),
                               self.schedule.confidence_floor)
            cues = self.extend_cues(cues, volume, v0, left, right, max_disp)
            guide = colour_guide(left)
            u = guided_median(fill_background(quadratic_fit(volume, v0).z, ~cues.occluded), guide,
                              self.schedule.median[0], self.schedule.median_sigma, self.schedule.median_slope,
                              self.schedule.median_dilation)
            del v0
        with torch.set_grad_enabled(record):
            factors = self.factors(left, cues)
        frozen = factors.detached()
        bar.update()
        res = None
        outer = self.schedule.outer
        for t in range(outer):  # a few relinearisations; with gradients only the last is recorded
            theta = self.schedule.theta[min(t, len(self.schedule.theta) - 1)]
            res = None  # the last round's fields go before the next round's are made
            if record and t == outer - 1:
                u, res = self.relinearise(volume, u.detach(), theta, cues, factors, self.backward)
            else:
                with torch.no_grad():
                    u, res = self.relinearise(volume, u, theta, cues, frozen)
            bar.update()
        del volume  # the largest array (B, D + 1, H, W); the photometric refinement does not read it
        release_free_memory()  # what the cost volume's bands left in the heap goes before the variance and refinement
        with torch.no_grad():  # the variance and the refinement are constants
            var = (res.var.reshape(u.shape) * self.var_scale).unsqueeze(1)  # the last census round's
            res = None
            refined = photometric_refine(left, right, u.detach(), cues.occluded, frozen, self.refine, self.grid)
            refined = guided_median(refined, guide, self.schedule.median[1], self.schedule.median_sigma,
                                    self.schedule.median_slope, self.schedule.median_dilation)
        u = u + (refined - u.detach()) if record else refined  # straight-through: the refinement is a constant
        bar.update()
        bar.close()
        return StereoOutput(u.unsqueeze(1), var, cues.occluded.unsqueeze(1), offset, tilt * right.shape[-1])

    def extend_cues(self, cues: StereoCues, volume: CostVolume, v0: Tensor, left: Tensor, right: Tensor,
                    max_disp: int) -> StereoCues:
        """Hook for a factor source that reads more than :class:`StereoCues`'s basic fields (default: none)."""
        return cues

    def linearise(self, volume: CostVolume, u: Tensor, theta: float, cues: StereoCues) -> tuple[Tensor, Tensor]:
        """Coupled search at u (B, H, W) and parabola fit, without gradients -> (target z, clamped curvature),
        both (B, H, W); occluded pixels' targets come from the background side of their row."""
        with torch.no_grad():
            v = coupled_search(volume, u, theta, chunk=self.cost.chunk_for(volume.cost))[0]
            fit = quadratic_fit(volume, v)
            z = torch.where(cues.occluded, fill_background(u, ~cues.occluded), fit.z)
            return z, fit.curvature.clamp(*self.schedule.curvature)

    def relinearise(self, volume: CostVolume, u: Tensor, theta: float, cues: StereoCues, factors: StereoFactors,
                    backward=None) -> tuple[Tensor, object]:
        """One round: :meth:`linearise` at u (B, H, W), ``schedule.irls`` robust GBP solves (IRLS steps from u, the
        smoothness expecting u's local slopes, :mod:`.slopes`) -> (new u, GridResult). ``backward`` (a learned
        model's training round): the last solve is recorded for gradients in that mode (the factors' graph and
        the thresholds through the robust weights; the earlier solves and the linearisation are constants)."""
        s = self.schedule
        z, curvature = self.linearise(volume, u, theta, cues)
        frozen = factors.detached()
        a = frozen.data_scale * curvature  # the unrecorded solves' data precision, made once
        offsets = edge_slopes(u, s.slope_window, s.slope_shrink) if s.slope_window else None
        x, res = u, None
        for i in range(s.irls):
            res = None  # the previous solve's variances go before the next solve's arrays are made
            if backward is not None and i == s.irls - 1:
                with torch.enable_grad():
                    res = weighted_solve(z, factors.data_scale * curvature, factors, x, s.iters, self.grid, backward,
                                         offsets)
            else:
                with torch.no_grad():
                    res = weighted_solve(z, a, frozen, x, s.iters, self.grid, "unroll", offsets)
            x = res.mean.reshape(u.shape)
        return x, res

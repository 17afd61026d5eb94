"""Learned stereo: the hand-set model with a small CNN correcting its factors, trained end to end.

    model = LearnedStereo()                       # untrained: exactly HandsetStereo
    out = model(left, right, max_disp=64)         # StereoOutput: disparity, var, occluded (B, 1, H, W)
    model = gbp_torch.pretrained.stereo("gbp_stereo")   # the shipped weights

:class:`LearnedFactors` is a factor source (``(left, StereoCues) -> StereoFactors``, the seam of
:mod:`.factors`). It reads the left image and the cost cues (confidence, occlusion flag, best cost and
:func:`cost_statistics`: WTA disparity / max_disp, log curvature of the cost at the winner,
photometric residual of the winner) and predicts *log-space multiplicative corrections* of the
hand-set factors (:class:`~.factors.HandsetFactors`): data precision scale, Tukey data threshold,
horizontal / vertical edge weights and per-edge Cauchy thresholds, plus a gated additive data
precision (so pixels whose hand-set confidence is 0 can get some). The last convolutions are
zero-initialised and the gate starts at 0: the untrained source returns the hand-set factors
exactly, and training starts from the hand-set model.

:class:`LearnedStereo` runs :class:`~.handset.HandsetStereo`'s pipeline with that source. When
gradients are enabled, the cost volume, the cues and all relinearisations but the last run without
recording, and so do the earlier IRLS solves of the last round. Its last solve is one IRLS step (the
hand-set model's solve): a least-squares solve whose precisions are the factors times the robust weights at
the previous estimate, with the round's slope offsets. :func:`weighted_solve` builds exactly that system with the
weights recorded (so gradients reach the thresholds) and solves it with the implicit backward (an adjoint
multigrid solve), so the gradient is the exact one of what the forward computes, and reaches the factor network
through the data precisions, both robust thresholds and the edge weights. The sub-pixel photometric refinement
is applied as a constant correction (straight-through: its <= 0.5 px step is not differentiated).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor, nn

from ...modes import BackwardConfig
from ...nets import ContextBranch, body_plus_context, conv_stack
from .cost import CostConfig, to_gray
from .factors import HandsetFactors, StereoCues, StereoFactors
from .features import MatchingFeatures
from .handset import VAR_SCALE, HandsetStereo, SolveSchedule
from .refine import RefineConfig
from .robust_solve import TRAIN_BACKWARD, weighted_solve
from .search import quadratic_fit

#: channels of the factor net's input: gray, confidence, occluded, best cost, then cost_statistics
N_INPUTS = 7
#: output channels: log data scale, additive data precision, log data k, log wh, log wv, log k_h, log k_v
N_OUTPUTS = 7


def cost_statistics(volume, v0: Tensor, left: Tensor, right: Tensor, max_disp: int) -> Tensor:
    """(B, 3, H, W): WTA disparity / max_disp, log10 of the cost's curvature at v0 (floored at 1e-3) and
    the photometric residual ``|gray_L(x) - gray_R(x - v0)|`` (x - v0 clamped into the image)."""
    fit = quadratic_fit(volume, v0)
    gl, gr = to_gray(left)[:, 0], to_gray(right)[:, 0]
    w = gl.shape[-1]
    x = torch.arange(w, device=gl.device).view(1, 1, -1)
    warped = gr.gather(2, (x - v0).clamp(0, w - 1))
    return torch.stack([v0.to(gl.dtype) / max_disp, fit.curvature.clamp_min(1e-3).log10(),
                        (gl - warped).abs()], 1)


def _edges(o: Tensor) -> tuple[Tensor, Tensor]:
    """A per-pixel field (B, H, W) as per-edge fields, the mean of each edge's two ends."""
    return 0.5 * (o[..., :, 1:] + o[..., :, :-1]), 0.5 * (o[..., 1:, :] + o[..., :-1, :])


class LearnedFactors(nn.Module):
    """Factor source: a small CNN's log-space corrections of :class:`~.factors.HandsetFactors`.

    Args:
        width, depth: the full-resolution conv stack (3x3 convs, ReLU).
        context_width, context_depth: a half-resolution :class:`~gbp_torch.nets.ContextBranch` added to
            the output (0: none); widens the receptive field cheaply.
        max_log: bound of every log-correction (``max_log tanh(o / max_log)``): factors move at most
            ``e^max_log`` times from the hand-set values (at 3, a net trained on synthetic pairs pressed
            against the bound on Middlebury and had more bad pixels there than one trained at 1).
        handset: keyword arguments of the base :class:`~.factors.HandsetFactors`.
        tile: frames larger than ``tile x tile`` run the CNN tile by tile
            (:func:`~gbp_torch.nets.body_plus_context`): the same output in bounded memory (None: whole frame).

    Call: ``left (B, C, H, W)`` in [0, 1], :class:`~.factors.StereoCues` (with ``extra`` (B, 3, H, W)
    from :func:`cost_statistics`; zeros when absent) -> :class:`~.factors.StereoFactors`.
    """

    def __init__(self, width: int = 32, depth: int = 5, context_width: int = 32, context_depth: int = 4,
                 max_log: float = 1.0, handset: dict | None = None, tile: int | None = 512):
        super().__init__()
        self.tile = tile
        self.base = HandsetFactors(**(handset or {}))
        self.max_log = max_log
        self.body = conv_stack(N_INPUTS, width, depth, N_OUTPUTS)
        self.context = ContextBranch(N_INPUTS, context_width, context_depth, N_OUTPUTS) if context_width else None
        self.gate = nn.Parameter(torch.zeros(()))  # additive data precision, off at init

    def features(self, left: Tensor, cues: StereoCues) -> Tensor:
        """The net's input (B, N_INPUTS, H, W)."""
        gray = to_gray(left)
        extra = cues.extra if cues.extra is not None else gray.new_zeros(gray.shape[0], 3, *gray.shape[-2:])
        return torch.cat([gray - 0.5, cues.confidence.unsqueeze(1), cues.occluded.unsqueeze(1).to(gray.dtype),
                          cues.cost.unsqueeze(1), extra.to(gray.dtype)], 1)

    def forward(self, left: Tensor, cues: StereoCues) -> StereoFactors:
        base = self.base(left, cues)
        x = self.features(left, cues)
        o = body_plus_context(self.body, self.context, x, self.tile)
        o = self.max_log * torch.tanh(o / self.max_log)
        log_a, add_a, log_k, log_wh, log_wv, log_kh, log_kv = o.unbind(1)
        data_scale = (base.data_scale * log_a.exp() + self.base.data * self.gate * torch.sigmoid(add_a)).clamp_min(0)
        data_k = base.data_k_px * log_k.exp()
        wh = base.wh * _edges(log_wh)[0].exp()
        wv = base.wv * _edges(log_wv)[1].exp()
        k0 = float(base.smooth_k_px)
        kh, kv = k0 * _edges(log_kh)[0].exp(), k0 * _edges(log_kv)[1].exp()
        return StereoFactors(data_scale, data_k, wh, wv, (kh, kv))


class LearnedStereo(HandsetStereo):
    """:class:`~.handset.HandsetStereo` with :class:`LearnedFactors` (and the cost statistics it reads).

    Args:
        factors: a :class:`LearnedFactors` or the keyword arguments of one (default: the default net).
        var_scale: calibration factor of GBP's variances (the hand-set model's by default; a trained model's is fitted
            at export, ``python -m train.export ... --calibrate 16``, or refitted with ``python -m
            train.stereo.calibrate --pretrained NAME --rewrite REASON``).
        cost, schedule, grid, refine: as :class:`~.handset.HandsetStereo` (the shipped factor net was trained with
            the default schedule: slope offsets, two IRLS solves per round, the last one recorded).
        backward: gradient mode of the recorded (last) solve, a :class:`~gbp_torch.modes.BackwardConfig`
            or its fields (default: implicit with short adjoint solves, :data:`TRAIN_BACKWARD`).
        features: a :class:`~.features.MatchingFeatures` or its keyword arguments (None: census cost only);
            it is not trained here (see ``experiment=stereo_features``): its weights come with the model's.

    Forward: ``left, right`` (B, C, H, W) in [0, 1], ``max_disp`` -> :class:`~.output.StereoOutput`.
    With gradients enabled only the last solve is recorded (implicit backward).
    """

    def __init__(self, factors: LearnedFactors | dict | None = None, cost: CostConfig | None = None,
                 schedule: SolveSchedule | None = None, grid=None, refine: RefineConfig | None = None,
                 var_scale: float = VAR_SCALE, backward: BackwardConfig | dict | None = None,
                 features: MatchingFeatures | dict | None = None):
        if not isinstance(factors, nn.Module):
            factors = LearnedFactors(**(factors or {}))
        if features is not None and not isinstance(features, nn.Module):
            features = MatchingFeatures(**features)
        if features is not None:
            features.requires_grad_(False)
        super().__init__(cost=cost, factors=factors, schedule=schedule, grid=grid, refine=refine,
                         var_scale=var_scale, features=features)
        self.backward = backward if isinstance(backward, BackwardConfig) else \
            BackwardConfig(**backward) if backward else TRAIN_BACKWARD

    records_gradients = True

    def extend_cues(self, cues: StereoCues, volume, v0: Tensor, left: Tensor, right: Tensor,
                    max_disp: int) -> StereoCues:
        """The cues plus :func:`cost_statistics` (``extra``), which the factor CNN reads."""
        return replace(cues, extra=cost_statistics(volume, v0, left, right, max_disp))


__all__ = ["LearnedFactors", "LearnedStereo", "cost_statistics", "weighted_solve"]

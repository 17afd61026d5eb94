"""Learned optical flow: the hand-set model with a small CNN correcting its factors, trained end to end.

    model = LearnedFlow()                           # untrained: exactly HandsetFlow
    out = model(frame1, frame2)                     # FlowOutput: flow (B, 2, H, W), cov (B, 2, 2, H, W)
    model = gbp_torch.pretrained.flow()             # the shipped weights

:class:`LearnedFactors` is a factor source (the seam of :mod:`.factors`:
``(image1, data, flow, level) -> FlowFactors``). At every warp it reads the level's first frame (and
its gradients), the linearised data term (constancy residual, log trace of the 2x2 data precision,
validity), the current flow (magnitude and the size of its horizontal / vertical differences, a cue
for motion boundaries) and the level index, and predicts *log-space multiplicative corrections* of
the hand-set factors (:class:`~.factors.HandsetFactors`): data precision scale, robust data threshold,
horizontal / vertical edge weights and per-edge robust smoothness thresholds. The reported covariance
is GBP's, times the one global calibration factor (a learned per-pixel scale was tried: fitted on
synthetic pairs, it made the coverage worse on synthetic pairs of other motion and noise ranges). The
last convolutions are zero-initialised, so the untrained source returns the hand-set factors exactly:
training starts from the hand-set model.

:class:`LearnedFlow` runs :class:`~.handset.HandsetFlow`'s loop with that source. With gradients
enabled, :meth:`LearnedFlow.forward` records only the last warp (finest level): its factors are
recorded and its multigrid GBP solve uses the implicit backward (an adjoint multigrid solve at the
solution), so gradients reach the factor network through the data precisions, robust weights and
edge weights of that solve. :meth:`~.handset.HandsetFlow.forward_sequence` records every warp the same
way and returns the flow after each, for a loss on the whole coarse-to-fine sequence (what training
uses, so the factors of every level learn). Linearisation points (the incoming flows) and the warps are
constants; the median filter passes gradients to the selected values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...grid.system import squared_differences
from ...modes import BackwardConfig, BackwardLike
from ...nets import ContextBranch, body_plus_context, conv_stack
from ...vision import DataTerm
from .factors import FlowFactors, HandsetFactorConfig, HandsetFactors
from .handset import HandsetFlow, HandsetFlowConfig

#: the training gradient of the recorded solve: implicit, a short adjoint multigrid solve (the forward
#: solve is itself a few warm-started FCG steps, so a tighter adjoint buys little)
TRAIN_BACKWARD = BackwardConfig("implicit", adjoint_iters=10, adjoint_tol=1e-5)

#: input channels: image, dI/dx, dI/dy, log residual, log trace a, valid, log |flow|, log |dflow| h / v, level
N_INPUTS = 10
#: output channels: log data scale, log k_data, log wh, log wv, log k_h, log k_v
N_OUTPUTS = 6


def _edges(o: Tensor) -> tuple[Tensor, Tensor]:
    """A per-pixel field (B, H, W) as per-edge fields (B, H, W-1), (B, H-1, W): the mean of each edge's ends."""
    return 0.5 * (o[..., :, 1:] + o[..., :, :-1]), 0.5 * (o[..., 1:, :] + o[..., :-1, :])


def _pad_edges(dh: Tensor, dv: Tensor) -> tuple[Tensor, Tensor]:
    """Edge fields back on pixels (replicating the last column / row): (B, H, W) each."""
    return F.pad(dh, (0, 1), mode="replicate"), F.pad(dv.unsqueeze(1), (0, 0, 0, 1), mode="replicate").squeeze(1)


class LearnedFactors(nn.Module):
    """Factor source: a small CNN's log-space corrections of :class:`~.factors.HandsetFactors`.

    Args:
        width, depth: the full-resolution conv stack (3x3 convs, ReLU, zero-initialised last layer).
        context_width, context_depth: a half-resolution :class:`~gbp_torch.nets.ContextBranch` added to
            the output (0: none); widens the receptive field cheaply.
        max_log: bound of every log-correction (``max_log tanh(o / max_log)``): factors move at most
            ``e^max_log`` times from the hand-set values. At 3 a net trained on synthetic pairs saturated
            (edge weights and thresholds ~15x the hand-set ones on most pixels) and lost to the hand-set
            model on Middlebury and KITTI; at 1 it beats it there.
        handset: keyword arguments of the base :class:`~.factors.HandsetFactorConfig`.
        tile: frames larger than ``tile x tile`` run the CNN tile by tile
            (:func:`~gbp_torch.nets.body_plus_context`): the same output in bounded memory (None: whole frame).

    Call: see :class:`~.factors.FactorSource`; returns a :class:`~.factors.FlowFactors` with tensor
    thresholds.
    """

    def __init__(self, width: int = 24, depth: int = 5, context_width: int = 24, context_depth: int = 4,
                 max_log: float = 1.0, handset: dict | None = None, tile: int | None = 512):
        super().__init__()
        self.tile = tile
        self.base = HandsetFactors(HandsetFactorConfig(**(handset or {})))
        self.max_log = max_log
        self.body = conv_stack(N_INPUTS, width, depth, N_OUTPUTS)
        self.context = ContextBranch(N_INPUTS, context_width, context_depth, N_OUTPUTS) if context_depth else None

    def features(self, image1: Tensor, data: DataTerm, flow: Tensor, level: int) -> Tensor:
        """The net's input (B, N_INPUTS, H, W)."""
        img = image1.mean(1, keepdim=True) if image1.shape[1] != 1 else image1
        gx = F.pad(img[..., :, 1:] - img[..., :, :-1], (0, 1))
        gy = F.pad(img[..., 1:, :] - img[..., :-1, :], (0, 0, 0, 1))
        k = self.base.config.k_data
        res = torch.log1p(data.residual / k).unsqueeze(1)
        trace = (data.a[:, 0, 0] + data.a[:, 1, 1]).clamp_min(0)
        log_tr = (torch.log(trace + 1e-4) / 5).unsqueeze(1)
        valid = data.valid.to(img.dtype).unsqueeze(1)
        mag = torch.log1p(flow.square().sum(1, keepdim=True).sqrt())
        dh, dv = squared_differences(flow)
        dh, dv = _pad_edges(torch.log1p(dh.sqrt() / 0.3), torch.log1p(dv.sqrt() / 0.3))
        lev = torch.full_like(img, level / 4.0)
        x = torch.cat([img - 0.5, 10 * gx, 10 * gy, res, log_tr, valid, mag, dh.unsqueeze(1), dv.unsqueeze(1),
                       lev], 1)
        return x.to(self.body[0].weight.dtype)

    def forward(self, image1: Tensor, data: DataTerm, flow: Tensor, level: int) -> FlowFactors:
        base = self.base(image1, data, flow, level)
        x = self.features(image1, data, flow, level)
        o = body_plus_context(self.body, self.context, x, self.tile)
        o = (self.max_log * torch.tanh(o / self.max_log)).to(data.residual.dtype)
        log_s, log_kd, log_wh, log_wv, log_kh, log_kv = o.unbind(1)
        c = self.base.config
        return FlowFactors(
            data_scale=base.data_scale * log_s.exp(),
            k_data=c.k_data * log_kd.exp(),
            wh=base.wh * _edges(log_wh)[0].exp(), wv=base.wv * _edges(log_wv)[1].exp(),
            k_smooth=(c.k_smooth * _edges(log_kh)[0].exp(), c.k_smooth * _edges(log_kv)[1].exp()))


class LearnedFlow(HandsetFlow):
    """:class:`~.handset.HandsetFlow` with :class:`LearnedFactors`.

    Args:
        factors: a :class:`LearnedFactors` or the keyword arguments of one (default: the default net).
        config: the warping loop, a :class:`~.handset.HandsetFlowConfig` or its fields; ``var_scale`` and
            ``boundary_var`` there are the covariance calibration (refit on synthetic pairs after training,
            :mod:`.calibrate`).
        backward: gradient mode of the recorded (last) solve, a :class:`~gbp_torch.modes.BackwardConfig`,
            its fields or a mode name (default :data:`TRAIN_BACKWARD`, implicit).

    Forward and :meth:`~.handset.HandsetFlow.forward_sequence` as the hand-set model's.
    """

    def __init__(self, factors: LearnedFactors | dict | None = None, config: HandsetFlowConfig | dict | None = None,
                 backward: BackwardLike | dict | None = None):
        if not isinstance(factors, nn.Module):
            factors = LearnedFactors(**(factors or {}))
        if not isinstance(config, HandsetFlowConfig):
            config = HandsetFlowConfig(**(config or {}))
        backward = BackwardConfig(**backward) if isinstance(backward, dict) else backward
        super().__init__(config, factors, backward if backward is not None else TRAIN_BACKWARD)


__all__ = ["LearnedFactors", "LearnedFlow", "TRAIN_BACKWARD", "N_INPUTS", "N_OUTPUTS"]

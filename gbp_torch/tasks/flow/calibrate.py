"""Calibrating the flow covariance: GBP's marginal covariance plus a motion-boundary term, fitted on
synthetic pairs.

Loopy GBP underestimates marginal variances, the hand-set data scale is only a guess of the noise, and
GBP's covariance knows nothing of the errors a coarse-to-fine flow makes at motion boundaries (a boundary
drawn a pixel off costs about the flow jump there). The calibrated variance of each component is

    var_c = s * gbp_var_c + t * range^2,

``range`` the largest spread (max - min) of u or v in a ``window`` x ``window`` neighbourhood
(:func:`motion_range`, :func:`boundary_variance`). ``(s, t)`` maximise the Gaussian likelihood of the
errors of fitting pairs, then one common factor makes ``|u - u_gt| < 1.96 sqrt(var_u)`` (and the same
for v) hold for at least ``coverage`` (95 %) of the valid pixels of *each* regime of pairs (e.g. small and
large motions): pooled, the regime with more pairs or smaller errors would set it, and the other would be
under-covered (the learned model's pooled fit covered 0.933 of large motions' errors). Fit it on
:func:`~.synthetic.synthetic_flow_pair` pairs, never on a benchmark. Near motion boundaries (components
whose 3x3 flow range exceeds 1 px) GBP's covariance with one factor covers 66-71 % of ``gbp_flow``'s
errors on three sets of 64 synthetic pairs, 95 % overall; with the boundary term (fitted on the three
pooled) 80-83 %. Errors are heavy-tailed, so the fit needs many pairs: fitted on 64 pairs each, the
single factor alone came out 13.0, 24.8 and 25.7.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .output import FlowOutput

#: the window of :func:`motion_range` in the shipped models: a pixel and its 8 neighbours, so the term
#: covers a boundary drawn one pixel off (near-boundary coverage on the 192 pairs above: 80-83 % with 3x3,
#: 74-78 % with 7x7)
BOUNDARY_WINDOW = 3


class VarianceModel(NamedTuple):
    """``var_c = var_scale * gbp_var_c + boundary_var * motion_range(flow, window)^2``."""

    var_scale: float
    boundary_var: float


def motion_range(flow: Tensor, window: int = BOUNDARY_WINDOW) -> Tensor:
    """The larger of the u and v spreads (max - min) over each pixel's ``window`` x ``window``
    neighbourhood (clipped at the borders), (B, 2, H, W) -> (B, 1, H, W); 0 where the flow is constant."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd size, got {window}")
    pad = window // 2
    spread = F.max_pool2d(flow, window, 1, pad) + F.max_pool2d(-flow, window, 1, pad)
    return spread.amax(1, keepdim=True)


def boundary_variance(flow: Tensor, boundary_var: float, window: int = BOUNDARY_WINDOW) -> Tensor:
    """The motion-boundary term ``boundary_var * range^2`` of each component's variance, (B, 1, H, W) for a
    flow (B, 2, H, W)."""
    return boundary_var * motion_range(flow, window).square()


def fit_variance_model(model: Callable[[Tensor, Tensor], FlowOutput],
                       pairs: Iterable[tuple[Tensor, Tensor, Tensor, Tensor]] | Mapping[str, Iterable[tuple]],
                       coverage: float = 0.95, z: float = 1.96, window: int = BOUNDARY_WINDOW,
                       samples: int = 2_000_000) -> VarianceModel:
    """Fit :class:`VarianceModel` on ``pairs``: one set, or regimes by name (``{"default": ..., "large": ...}``),
    each of which the result covers.

    A set yields ``(frame1, frame2, gt_flow (B, 2, H, W), valid (B, H, W))``; ``model`` must return
    GBP's uncalibrated covariance (``var_scale = 1``, ``boundary_var = 0``). Up to ``samples`` components
    (an even subsample of all regimes) enter the likelihood fit; all of them enter the coverage factor. Components
    whose variance is inf (motion the frames do not determine, see :func:`~.handset.regularise_undetermined`) say
    nothing about the scale and stay out.
    """
    regimes = pairs.values() if isinstance(pairs, Mapping) else [pairs]
    return fit_variance_terms([_errors_and_terms(model, regime, window) for regime in regimes], coverage, z,
                              samples)


def _errors_and_terms(model: Callable[[Tensor, Tensor], FlowOutput], pairs: Iterable[tuple],
                      window: int) -> tuple[Tensor, Tensor, Tensor]:
    """(err2, var, rng2) (N,) float64 of the finite-variance valid components of the model on ``pairs``."""
    err2, var, rng2 = [], [], []
    with torch.no_grad():
        for frame1, frame2, gt, valid in pairs:
            out = model(frame1, frame2)
            if out.cov is None:
                raise ValueError("the model output has no covariance to calibrate")
            diag = out.cov.diagonal(dim1=1, dim2=2).movedim(-1, 1)
            mask = valid[:, None].expand_as(gt) & diag.isfinite()
            err2.append((out.flow - gt).square()[mask].double())
            var.append(diag[mask].double())
            rng2.append(motion_range(out.flow, window).square().expand_as(gt)[mask].double())
    if not err2:
        raise ValueError("a calibration regime holds no pairs")
    return torch.cat(err2), torch.cat(var), torch.cat(rng2)


def fit_variance_terms(regimes: Sequence[tuple[Tensor, Tensor, Tensor]], coverage: float = 0.95, z: float = 1.96,
                       samples: int = 2_000_000) -> VarianceModel:
    """``(s, t)`` of ``s var + t rng2`` for regimes of squared errors ``(err2, var, rng2)`` (each (N_i,)): the
    Gaussian maximum likelihood over all regimes, then scaled together by the least factor with which
    ``err2 < z^2 (s var + t rng2)`` holds for ``coverage`` of every regime's components."""
    tiny = torch.finfo(torch.float64).tiny
    checked = []
    for err2, var, rng2 in regimes:
        if not (err2.shape == var.shape == rng2.shape and err2.dim() == 1 and err2.numel() > 0):
            raise ValueError(f"err2, var and rng2 must be equal-length non-empty vectors, got {tuple(err2.shape)}, "
                             f"{tuple(var.shape)}, {tuple(rng2.shape)}")
        checked.append((err2.double(), var.double().clamp_min(tiny), rng2.double()))
    if not checked:
        raise ValueError("fit_variance_terms needs at least one regime")
    err2, var, rng2 = (torch.cat(parts) for parts in zip(*checked))
    step = max(1, err2.numel() // samples)
    e, v, r = err2[::step], var[::step], rng2[::step]

    def covering(s: Tensor | float, t: Tensor | float) -> float:
        """The least factor of ``s var + t rng2`` that covers ``coverage`` of each regime."""
        return max(float(torch.quantile((e2 / (s * v2 + t * r2))[:16_000_000], coverage)) / z**2
                   for e2, v2, r2 in checked)

    if not bool((r > 0).any()):  # no motion boundary among the fitting pixels: GBP's variance alone
        return _checked(VarianceModel(covering(1.0, 0.0), 0.0))
    # log-parameters, started from the variance-only fit with the boundary term as large on average
    s0 = (e / v).mean().clamp_min(tiny)
    params = torch.stack([s0.log(), (s0 * v.mean() / r.mean()).log()]).requires_grad_()
    opt = torch.optim.LBFGS([params], lr=1, max_iter=200, line_search_fn="strong_wolfe")

    def nll():
        opt.zero_grad()
        total = params[0].exp() * v + params[1].exp() * r
        loss = 0.5 * (total.log() + e / total).mean()
        loss.backward()
        return loss

    opt.step(nll)
    s, t = params.detach().exp()
    factor = covering(s, t)
    return _checked(VarianceModel(float(s * factor), float(t * factor)))


def _checked(fit: VarianceModel) -> VarianceModel:
    if not all(math.isfinite(x) and x >= 0 for x in fit):
        raise ValueError(f"the variance fit failed ({fit}): are the errors all zero, or not finite?")
    return fit

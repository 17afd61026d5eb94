"""Calibrating GBP's marginal variances.

Loopy GBP's variance ``lam_b^-1`` underestimates the exact marginal variance
``diag(A^-1)`` on grids by a nearly constant factor (measured on 64 x 64,
see the tests / report: ~0.5-0.6 at smoothness/data ratio 100, closer to 1 at
small ratios). :func:`variance_scale` estimates that factor per batch item
without forming A^-1: Hutchinson probing ``diag(A^-1) ~ mean_k v_k * A^-1 v_k``
with Rademacher v_k, each solve done by multigrid FCG. The per-pixel estimate
is noisy, the global ratio is not (relative error ~ 1/sqrt(probes * pixels)).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .checks import check_inputs
from .multigrid import build_hierarchy, fcg_solve
from .system import GridSystem


def _repeat(sys: GridSystem, k: int, b: Tensor) -> GridSystem:
    return GridSystem(sys.a.repeat_interleave(k, 0), sys.wh.repeat_interleave(k, 0),
                      sys.wv.repeat_interleave(k, 0), b)


def probe_diag_inverse(data_precision, edge_weights, like: Tensor, probes: int = 16, tol: float = 1e-8,
                       generator: torch.Generator | None = None) -> Tensor:
    """Hutchinson estimate of the exact marginal variances diag(A^-1).

    Args:
        like: z-shaped tensor fixing B, D, H, W, dtype and device.
    Returns:
        (B, H, W) for D = 1, (B, D, H, W) (per-component variances) for D = 2.
    """
    sys, zz, d = check_inputs(like, data_precision, edge_weights)
    bsz = zz.shape[0]
    shape = (bsz * probes,) + tuple(zz.shape[1:])
    v = torch.randint(0, 2, shape, generator=generator, device="cpu").to(zz) * 2 - 1
    rep = _repeat(sys, probes, v)
    hier = build_hierarchy(rep)
    u, _, _, _ = fcg_solve(rep, hier, torch.zeros_like(v), 100, tol)
    est = (u * v).unflatten(0, (bsz, probes)).mean(1)
    return est[:, 0] if d == 1 else est


def variance_scale(var: Tensor, data_precision, edge_weights, like: Tensor, probes: int = 16,
                   generator: torch.Generator | None = None) -> Tensor:
    """Global factor s (B,) with ``s * var ~ diag(A^-1)`` (ratio of sums over pixels).

    var: GBP variances from :func:`gbp_torch.grid.solve` ((B, H, W) or (B, 2, 2, H, W)).
    """
    exact = probe_diag_inverse(data_precision, edge_weights, like, probes, generator=generator)
    gbp = var if var.dim() == 3 else torch.diagonal(var, dim1=1, dim2=2).movedim(-1, 1)
    return exact.flatten(1).sum(1) / gbp.flatten(1).sum(1)


def calibrate(var: Tensor, scale: Tensor) -> Tensor:
    """Scale variances per batch item: var (B, ...) * scale (B,)."""
    return var * scale.view(-1, *([1] * (var.dim() - 1)))

"""The grid energy plus extra pairwise edges between any pixels (e.g. non-local matches), solved jointly.

Energy, for x (B, D, H, W), scalar data precisions and K extra edges per pixel::

    1/2 sum_i a_i |x_i - z_i|^2 + 1/2 sum_(ij) w_ij |x_i - x_j|^2 + 1/2 sum_(i,k) v_ik |x_i - x_(n_ik)|^2

with ``n_ik`` the flat index (``y * W + x``) of pixel i's k-th partner in the same image.
Its normal equations ``(A_g + L_v) x = b`` (``A_g`` the grid system, ``L_v`` the extra
edges' Laplacian) are solved by flexible CG preconditioned by one multigrid V-cycle of the
grid system whose diagonal also holds the extra edges' degrees, ``A_pre = A_g + deg(v)``:
``A = A_pre - V`` with ``V`` the extra edges' adjacency. The start is the full-multigrid
solution of ``A_pre`` or a given warm start. No host sync unless a tolerance is given.

Gradients are implicit (one more preconditioned solve with the loss gradient):
``db = lam``, ``da_i = -lam_i . x_i``, ``dw_ij = -(lam_i - lam_j) . (x_i - x_j)``, the same
for ``v``, where ``A lam = dL/dx``; the backward costs one solve, whatever the FCG steps.

Variances are the GBP marginals of ``A_pre`` (the extra edges' partners treated as
known): cheap, and an underestimate of ``diag(A^-1)`` that a calibration must scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .config import MULTIGRID
from .gbp import lam_setup
from .multigrid import Hierarchy, build_hierarchy, fcg_solve, fmg
from .system import GridSystem, matvec


@dataclass
class EdgeSolveResult:
    """mean (B, D, H, W); var (B, H, W): GBP marginal variances of the preconditioning system;
    residuals (B,): final ``|b - A x| / |b|`` per item (a tensor, no host sync)."""

    mean: Tensor
    var: Tensor
    residuals: Tensor


def edge_degree(index: Tensor, weight: Tensor) -> Tensor:
    """Sum of the extra edges' weights at both of their ends, (B, H, W); index, weight (B, K, H, W)."""
    b, _, h, w = weight.shape
    deg = weight.sum(1).flatten(1).scatter_add(1, index.flatten(1), weight.flatten(1))
    return deg.view(b, h, w)


def edge_adjacency(index: Tensor, weight: Tensor, x: Tensor) -> Tensor:
    """``V x``: each pixel's sum of weighted partner values, both directions. x (B, D, H, W)."""
    b, d, h, w = x.shape
    flat = x.flatten(2)  # (B, D, HW)
    idx = index.flatten(1).unsqueeze(1).expand(b, d, -1)  # (B, D, KHW)
    wk = weight.flatten(1).unsqueeze(1)  # (B, 1, KHW)
    k = weight.shape[1]
    pulled = (wk * flat.gather(2, idx)).view(b, d, k, h * w).sum(2)  # sum_k v_ik x_(n_ik)
    pushed = torch.zeros_like(flat).scatter_add(2, idx, wk * flat.repeat(1, 1, k))  # sum over edges into n
    return (pulled + pushed).view(b, d, h, w)


def edge_differences(index: Tensor, x: Tensor) -> Tensor:
    """``x_i - x_(n_ik)`` along every extra edge: index (B, K, H, W), x (B, D, H, W) -> (B, D, K, H, W)."""
    b, d, h, w = x.shape
    k = index.shape[1]
    flat = x.flatten(2)
    partners = flat.gather(2, index.flatten(1).unsqueeze(1).expand(b, d, -1))
    return (flat.repeat(1, 1, k) - partners).view(b, d, k, h, w)


def _fcg(pre: GridSystem, hier: Hierarchy, index: Tensor, weight: Tensor, b: Tensor, x: Tensor,
         iters: int, tol: float | None = None) -> tuple[Tensor, Tensor]:
    """:func:`~.multigrid.fcg_solve` on ``A = A_pre - V`` with right-hand side b from x: at most ``iters``
    steps, fewer when every item's relative residual reaches ``tol`` (one host sync per step; None:
    exactly ``iters``); returns (x, relative residual ``|b - A x| / |b|`` (B,))."""

    def apply(v: Tensor) -> Tensor:
        return matvec(pre, v) - edge_adjacency(index, weight, v)

    rhs = GridSystem(pre.a, pre.wh, pre.wv, b)
    x, history, _, _ = fcg_solve(rhs, hier, x, iters, tol, apply=apply)
    return x, history[-1]


def _prepare(a: Tensor, wh: Tensor, wv: Tensor, b: Tensor, index: Tensor, weight: Tensor):
    pre = GridSystem(a + edge_degree(index, weight), wh, wv, b)
    gains = lam_setup(pre, 1e-2, init="local")
    return pre, gains, build_hierarchy(pre, MULTIGRID, fine_gains=gains)


class _EdgeSolve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, wh, wv, b, weight, index, iters, tol, x0):
        pre, gains, hier = _prepare(a, wh, wv, b, index, weight)
        x, rel = _fcg(pre, hier, index, weight, b, fmg(hier) if x0 is None else x0, iters, tol)
        ctx.save_for_backward(weight, index, x)
        ctx.pre, ctx.hier, ctx.iters, ctx.tol = pre, hier, iters, tol
        var = 1.0 / gains.lam_b
        ctx.mark_non_differentiable(var, rel)
        return x, var, rel

    @staticmethod
    def backward(ctx, g, _gvar, _grel):
        weight, index, x = ctx.saved_tensors
        lam, _ = _fcg(ctx.pre, ctx.hier, index, weight, g, torch.zeros_like(g), ctx.iters, ctx.tol)
        grad_a = -(lam * x).sum(1)
        grad_wh = -((lam[..., 1:] - lam[..., :-1]) * (x[..., 1:] - x[..., :-1])).sum(1)
        grad_wv = -((lam[..., 1:, :] - lam[..., :-1, :]) * (x[..., 1:, :] - x[..., :-1, :])).sum(1)
        grad_weight = -(edge_differences(index, lam) * edge_differences(index, x)).sum(1)
        return grad_a, grad_wh, grad_wv, lam, grad_weight, None, None, None, None


def solve_with_edges(z: Tensor, a: Tensor, wh: Tensor, wv: Tensor, index: Tensor, weight: Tensor,
                     iters: int = 10, tol: float | None = None, x0: Tensor | None = None) -> EdgeSolveResult:
    """Minimise the grid energy plus the extra edges' (see the module docstring).

    Args:
        z: (B, D, H, W) data targets.
        a: (B, H, W) data precisions, >= 0.
        wh, wv: (B, H, W-1), (B, H-1, W) grid edge weights, >= 0.
        index: (B, K, H, W) int64 flat partner indices in [0, H W).
        weight: (B, K, H, W) extra edge weights, >= 0 (0 switches an edge off).
        iters: FCG steps (each one V-cycle and one product with A); the backward runs as many.
        tol: stop early once every item's relative residual is at most tol (one host sync per step;
            the backward's adjoint solve too). None: exactly ``iters`` steps, no sync.
        x0: (B, D, H, W) start (e.g. the solution of a similar system; detached); None: the full-multigrid
            solution of the preconditioning system.
    Returns:
        :class:`EdgeSolveResult`. Differentiable in z, a, wh, wv and weight (implicit gradient).
    """
    if z.dim() != 4:
        raise ValueError(f"z must be (B, D, H, W), got {tuple(z.shape)}")
    bsz, _, h, w = z.shape
    shapes = {"a": (a, (bsz, h, w)), "wh": (wh, (bsz, h, w - 1)), "wv": (wv, (bsz, h - 1, w)),
              "weight": (weight, (bsz, weight.shape[1] if weight.dim() == 4 else -1, h, w)),
              "index": (index, tuple(weight.shape))}
    for name, (t, shape) in shapes.items():
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape} for z of shape {tuple(z.shape)}, got {tuple(t.shape)}")
    if index.dtype != torch.long:
        raise ValueError(f"index must be int64, got {index.dtype}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    bad = [name for name, t in (("z", z), ("a", a), ("wh", wh), ("wv", wv), ("weight", weight))
           if not bool(torch.isfinite(t).all() & ((t >= 0).all() | (name == "z")))]
    if bad or not bool(((index >= 0) & (index < h * w)).all()):
        raise ValueError(f"{', '.join(bad) or 'index'}: NaN, inf, negative values or partner indices "
                         f"outside [0, {h * w})")
    b = a.unsqueeze(1) * z
    if x0 is not None:
        if tuple(x0.shape) != tuple(z.shape):
            raise ValueError(f"x0 must have the shape of z {tuple(z.shape)}, got {tuple(x0.shape)}")
        x0 = x0.detach().to(z.dtype)
    if tol is not None and not tol >= 0:
        raise ValueError(f"tol must be >= 0 or None, got {tol}")
    x, var, rel = _EdgeSolve.apply(a, wh, wv, b, weight, index, iters, tol, x0)
    return EdgeSolveResult(x, var, rel)

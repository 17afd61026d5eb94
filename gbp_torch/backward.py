"""Differentiable GBP on a general factor graph: unroll, truncated, implicit.

- ``unroll``: autograd through every iteration (memory O(T)).
- ``truncated``: iterate without recording to the fixed point (or ``iters - K``
  iterations), then record the last ``K`` (memory O(K)).
- ``implicit``: iterate without recording; at the fixed point the means solve
  ``F(mu, theta) = grad_mu E(mu; theta) = 0``, so for a loss gradient ``g`` the
  parameter gradient is ``-v^T dF/dtheta`` with ``H v = g``, ``H = dF/dmu``.
  ``v`` comes from :func:`gbp_torch.adjoint.adjoint_solve` preconditioned by GBP
  itself on the same graph (:meth:`GBPEngine.linear_solve`: the fixed point's
  precisions and lam-messages, ``g`` as the information source), so memory is O(1)
  in the iteration count. For linear-Gaussian factors ``H`` is GBP's precision
  ``Lambda`` (one GBP solve); with robust kernels or nonlinear factors
  ``H = Lambda + D`` and conjugate gradients run on the exact ``H`` (products by
  autograd), so implicit gradients are exact at the fixed point.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .adjoint import adjoint_solve
from .factor_graph import FactorGraph, GBPEngine, GBPResult
from .linalg import lane_matvec
from .modes import BackwardConfig, BackwardLike, BackwardMode, as_backward
from .schedules import ScheduleLike


def solve_graph(graph: FactorGraph, iters: int = 100, tol: float | None = None, damping: float = 0.0,
                schedule: ScheduleLike = "sync", backward: BackwardLike = "unroll",
                init: GBPResult | None = None) -> GBPResult:
    """GBP on ``graph`` with gradients to every factor tensor that requires grad.

    Args:
        iters, tol, damping, schedule: as :meth:`GBPEngine.run`.
        backward: "unroll", "truncated", "implicit" or a :class:`~gbp_torch.modes.BackwardConfig`
            (``truncate``: iterations recorded; ``adjoint_iters`` / ``adjoint_tol``: limits of the
            implicit mode's adjoint GBP solves, default ``iters`` and ``tol`` or 1e-10).
        init: warm start from a previous result's messages and means (detached).
    Returns:
        :class:`GBPResult`; its means carry gradients (covariances too, except in
        implicit mode, where they are detached).
    """
    back = as_backward(backward)
    engine = GBPEngine(graph, damping=damping, schedule=schedule, init=init)
    if back.mode is BackwardMode.UNROLL:
        return engine.run(iters, tol)
    if back.mode is BackwardMode.TRUNCATED:
        return _truncated(engine, iters, tol, back.truncate)
    with torch.no_grad():
        result = engine.run(iters, tol)
    params = _parameters(graph)
    if not params or not torch.is_grad_enabled():
        return result
    means = _ImplicitMeans.apply(engine, back, iters, tol, len(result.means), *result.means, *params)
    result.means = tuple(means)
    return result


def _truncated(engine: GBPEngine, iters: int, tol: float | None, truncate: int) -> GBPResult:
    if truncate > iters:
        raise ValueError(f"truncate must be <= iters={iters}, got {truncate}")
    with torch.no_grad():
        first = engine.run(iters - truncate, tol) if iters > truncate else None
    last = engine.run(truncate)  # exactly K recorded iterations, even from a fixed point
    if first is None:
        return last
    last.iters += first.iters
    last.residuals = torch.cat((first.residuals, last.residuals))
    if first.converged and not last.diverged:
        last.converged, last.status = True, first.status
    return last


def _parameters(graph: FactorGraph) -> list[Tensor]:
    """Every tensor of the graph's factor families that requires grad."""
    out: list[Tensor] = []
    for fam in graph.families:
        tensors = [v for v in vars(fam).values() if isinstance(v, Tensor)] + list(getattr(fam, "params", []))
        if fam.robust is not None and isinstance(fam.robust.k, Tensor):
            tensors.append(fam.robust.k)
        out += [t for t in tensors if t.requires_grad and all(t is not o for o in out)]
    return out


class _ImplicitMeans(torch.autograd.Function):
    """Identity on the fixed-point means; backward = adjoint solve + one VJP."""

    @staticmethod
    def forward(ctx, engine, back, iters, tol, num_groups, *means_and_params):
        ctx.engine, ctx.back, ctx.iters, ctx.tol, ctx.num_groups = engine, back, iters, tol, num_groups
        return tuple(m.clone() for m in means_and_params[:num_groups])

    @staticmethod
    def backward(ctx, *grads):
        engine: GBPEngine = ctx.engine
        with torch.no_grad():
            sources = []
            for g, grad in zip(engine.graph.groups, grads):
                grad = torch.zeros(engine.batch, g.num, g.dim, dtype=engine.dtype, device=engine.device) \
                    if grad is None else grad.reshape(-1, g.num, g.dim).expand(engine.batch, g.num, g.dim)
                sources.append(grad.transpose(1, 2).contiguous())
        v = _adjoint(engine, sources, ctx.back, ctx.iters, ctx.tol)
        with torch.enable_grad():
            surrogate = _stationarity_product(engine, v)
            grads_params = torch.autograd.grad(surrogate, _parameters(engine.graph), allow_unused=True)
        out = [None if gp is None else -gp for gp in grads_params]
        return (None, None, None, None, None, *([None] * ctx.num_groups), *out)


def _adjoint(engine: GBPEngine, sources: list[Tensor], back: BackwardConfig, iters: int,
             tol: float | None) -> list[Tensor]:
    """Solve ``H v = g`` with H the exact Jacobian of the stationarity map at the fixed point."""
    adj_iters, adj_tol = back.adjoint_iters or iters, back.tolerance(tol)
    exact = all(fam.robust is None and not fam.nonlinear for fam in engine.graph.families)
    return adjoint_solve(sources, lambda r: engine.linear_solve(r, adj_iters, adj_tol), adj_tol,
                         back.adjoint_cg_iters, hessian=None if exact else lambda p: _hessian_product(engine, p))


def _stationarity_product(engine: GBPEngine, v: list[Tensor], means: list[Tensor] | None = None) -> Tensor:
    """``v^T F(mu, theta)``, ``F = grad_mu E = sum_f w_f J_f^T L_f (J_f mu_f - c_f)`` at ``means``
    (default: the fixed point, detached), recomputed with gradients to the factor tensors."""
    means = [m.detach() for m in engine.means] if means is None else means
    total = torch.zeros((), dtype=engine.dtype, device=engine.device)
    for i, fam in enumerate(engine.graph.families):
        x = engine.factor_means(i, values=means)
        model = engine.lanes_model(fam, x)
        jac, c, prec = model
        resid = lane_matvec(jac, x) - c  # (B, m, F)
        jv = lane_matvec(jac, engine.factor_means(i, values=v))  # (B, m, F)
        terms = (jv * lane_matvec(prec, resid)).sum(-2)  # (B, F)
        w = engine.robust_weights(i, model, x)
        total = total + (terms if w is None else w * terms).sum()
    return total


def _hessian_product(engine: GBPEngine, v: list[Tensor]) -> list[Tensor]:
    """``H v`` (lanes, per group): gradient in mu of ``v^T F(mu)`` (H is symmetric)."""
    with torch.enable_grad():
        means = [m.detach().requires_grad_() for m in engine.means]
        product = _stationarity_product(engine, [t.detach() for t in v], means)
        return [g.detach() for g in torch.autograd.grad(product, means)]

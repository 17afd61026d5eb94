"""How gradients flow back through GBP: unroll, truncated, implicit.

- ``unroll``: autograd through every iteration (memory O(T)).
- ``truncated``: iterate without recording to the fixed point (or ``iters - K``
  iterations), then record the last ``K`` (memory O(K)).
- ``implicit``: iterate without recording; at the fixed point the means solve
  ``F(mu, theta) = grad_mu E(mu; theta) = 0``, so for a loss gradient ``g`` the
  parameter gradient is ``-v^T dF/dtheta`` with the adjoint ``v = Lambda^-1 g``.
  ``v`` is found by GBP itself on the same graph (same precisions, the forward
  run's converged lam-messages as a warm start, ``g`` as the information
  source), so memory is O(1) in the iteration count.

For linear-Gaussian factors ``dF/dmu`` is GBP's precision ``Lambda``. With
robust kernels (IRLS weights depend on mu) or nonlinear factors (Jacobians
depend on mu) ``dF/dmu = Lambda + D``; the adjoint then runs conjugate
gradients on ``dF/dmu`` (products by autograd) preconditioned by GBP's
``Lambda^-1``, so implicit gradients are exact at the fixed point, not the
IRLS / Gauss-Newton approximations.
"""

from __future__ import annotations

import copy
from enum import Enum
from typing import Union

import torch
from torch import Tensor

from .factor_graph import FactorGraph, GBPEngine, GBPResult
from .linalg import lane_matvec
from .schedules import ScheduleLike


class BackwardMode(str, Enum):
    UNROLL = "unroll"
    TRUNCATED = "truncated"
    IMPLICIT = "implicit"


BackwardLike = Union[str, BackwardMode]


def as_backward_mode(mode: BackwardLike) -> BackwardMode:
    """A :class:`BackwardMode` from itself or its name."""
    try:
        return BackwardMode(mode)
    except ValueError:
        raise ValueError(f"unknown backward mode {mode!r}; choose one of {[m.value for m in BackwardMode]}") from None


def solve_graph(
    graph: FactorGraph,
    iters: int = 100,
    tol: float | None = None,
    damping: float = 0.0,
    schedule: ScheduleLike = "sync",
    backward: BackwardLike = "unroll",
    truncate: int = 10,
    adjoint_iters: int | None = None,
    adjoint_tol: float | None = None,
    init: GBPResult | None = None,
) -> GBPResult:
    """GBP on ``graph`` with gradients to every factor tensor that requires grad.

    Args:
        iters, tol, damping, schedule: as :meth:`GBPEngine.run`.
        backward: "unroll", "truncated" or "implicit".
        truncate: K, iterations recorded by "truncated".
        adjoint_iters, adjoint_tol: limits of the implicit mode's adjoint GBP solve
            (default: ``iters`` and ``tol`` or 1e-10).
        init: warm start from a previous result's messages and means (detached).
    Returns:
        :class:`GBPResult`; its means carry gradients (covariances too, except in
        implicit mode, where they are detached).
    """
    mode = as_backward_mode(backward)
    engine = GBPEngine(graph, damping=damping, schedule=schedule, init=init)
    if mode is BackwardMode.UNROLL:
        return engine.run(iters, tol)
    if mode is BackwardMode.TRUNCATED:
        if not 1 <= truncate <= iters:
            raise ValueError(f"truncate must be in [1, iters={iters}], got {truncate}")
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
    with torch.no_grad():
        result = engine.run(iters, tol)
    params = _parameters(graph)
    if not params or not torch.is_grad_enabled():
        return result
    adjoint = (adjoint_iters or iters, adjoint_tol if adjoint_tol is not None else (tol or 1e-10))
    means = _ImplicitMeans.apply(engine, adjoint, len(result.means), *result.means, *params)
    result.means = tuple(means)
    return result


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
    """Identity on the fixed-point means; backward = adjoint GBP solve + one VJP."""

    @staticmethod
    def forward(ctx, engine, adjoint, num_groups, *means_and_params):
        ctx.engine, ctx.adjoint, ctx.num_groups = engine, adjoint, num_groups
        ctx.num_params = len(means_and_params) - num_groups
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
        v = _adjoint(engine, sources, *ctx.adjoint)
        with torch.enable_grad():
            surrogate = _stationarity_product(engine, v)
            grads_params = torch.autograd.grad(surrogate, _parameters(engine.graph), allow_unused=True)
        out = [None if gp is None else -gp for gp in grads_params]
        return (None, None, None, *([None] * ctx.num_groups), *out)


#: Conjugate-gradient steps of the adjoint for robust / nonlinear graphs.
MAX_ADJOINT_CG = 50


def _dot(a: list[Tensor], b: list[Tensor]) -> Tensor:
    return sum((x * y).sum() for x, y in zip(a, b))


def _adjoint(engine: GBPEngine, sources: list[Tensor], iters: int, tol: float) -> list[Tensor]:
    """Solve ``H v = g`` with H the exact Jacobian of the stationarity map at the fixed point.

    For linear-Gaussian graphs H is GBP's precision Lambda: one GBP solve. With
    robust or nonlinear factors H = Lambda + D (symmetric: the energy's Hessian)
    and we run conjugate gradients on H with ``H p`` by autograd and GBP's
    ``Lambda^-1`` as the preconditioner (one GBP solve per step).
    """
    with torch.no_grad():
        z = _adjoint_solve(engine, sources, iters, tol)
    g_norm = float(_dot(sources, sources).sqrt())
    if g_norm == 0.0 or all(fam.robust is None and not fam.nonlinear for fam in engine.graph.families):
        return z
    v = [torch.zeros_like(t) for t in sources]
    r = list(sources)
    p = z
    rz = _dot(r, z)
    for _ in range(MAX_ADJOINT_CG):
        hp = _hessian_product(engine, p)
        alpha = rz / _dot(p, hp)
        v = [a + alpha * b for a, b in zip(v, p)]
        r = [a - alpha * b for a, b in zip(r, hp)]
        if float(_dot(r, r).sqrt()) <= tol * max(g_norm, 1e-300):
            break
        with torch.no_grad():
            z = _adjoint_solve(engine, r, iters, tol)
        rz_new = _dot(r, z)
        p = [a + (rz_new / rz) * b for a, b in zip(z, p)]
        rz = rz_new
    return v


def _adjoint_solve(engine: GBPEngine, sources: list[Tensor], iters: int, tol: float) -> list[Tensor]:
    """``Lambda^-1 g`` per group (lanes (B, d, N)) by GBP with the fixed point's precisions."""
    adj = copy.copy(engine)
    frozen = []
    for i in range(len(engine.graph.families)):
        eta, lam = engine._potential(i, None)
        frozen.append((torch.zeros_like(eta), lam.detach()))
    adj.frozen, adj.eta_source = frozen, sources
    adj.f2v_eta = [[torch.zeros_like(m) for m in msgs] for msgs in engine.f2v_eta]
    adj.f2v_lam = [[m.detach() for m in msgs] for msgs in engine.f2v_lam]  # lam-messages ignore eta: reuse
    adj.means = [torch.zeros_like(m) for m in engine.means]
    adj.ok = list(engine.ok)
    adj.beliefs = adj._beliefs()
    adj.run(iters, tol)
    return adj.means


def _stationarity_product(engine: GBPEngine, v: list[Tensor], means: list[Tensor] | None = None) -> Tensor:
    """``v^T F(mu, theta)``, ``F = grad_mu E = sum_f w_f J_f^T L_f (J_f mu_f - c_f)`` at ``means``
    (default: the fixed point, detached), recomputed with gradients to the factor tensors."""
    means = [m.detach() for m in engine.means] if means is None else means
    total = torch.zeros((), dtype=engine.dtype, device=engine.device)
    for i, fam in enumerate(engine.graph.families):
        x = engine._factor_means(i, values=means)
        model = engine._lanes_model(fam, x)
        jac, c, prec = model
        resid = lane_matvec(jac, x) - c  # (B, m, F)
        jv = lane_matvec(jac, engine._factor_means(i, values=v))  # (B, m, F)
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

"""Implicit differentiation of grid solves (memory constant in the iteration count).

At the solution ``x*`` the energy's gradient vanishes: ``F(x*, theta) =
grad_x E(x*; theta) = 0`` with E the quadratic grid energy, or the robust one
(IRLS fixed point). For a loss gradient ``g`` the parameter gradient is
``-v^T dF/dtheta`` with ``H v = g``, ``H = dF/dx`` (the energy's Hessian):

- least squares: ``H = A``, one multigrid solve (FCG, V-cycles with the GBP
  smoother) of ``A v = g``;
- robust kernels: ``H = A_w + D`` (``A_w`` the IRLS matrix at x*); conjugate
  gradients on H with Hessian products by autograd, preconditioned by the
  multigrid solve with ``A_w``. Gradients are exact at the fixed point.

Gradients reach z, the data precisions, both edge-weight fields, the edge
offsets and tensor robust thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from ..adjoint import adjoint_solve
from .checks import check_inputs
from .config import GridConfig
from .irls import GridRobust, reweight, robust_energy
from .multigrid import build_hierarchy, fcg_solve
from .observability import regularise
from .system import GridSystem, energy


@dataclass(frozen=True)
class AdjointSettings:
    """How the adjoint systems are solved: multigrid ``config`` (FCG), ``iters`` / ``tol`` per
    solve, ``cg_iters`` conjugate-gradient steps on the exact Hessian (robust kernels)."""

    config: GridConfig
    iters: int
    tol: float
    cg_iters: int


def _robust_tensors(rb: GridRobust | None) -> list[Tensor]:
    out: list[Tensor] = []
    for kern in (rb.data, rb.smooth) if rb is not None else ():
        if kern is None:
            continue
        ks = kern.k if isinstance(kern.k, (tuple, list)) else (kern.k,)
        out += [k for k in ks if isinstance(k, Tensor)]
    return out


def implicit_mean(x_star: Tensor, z: Tensor, data_precision, edge_weights, robust: GridRobust | None,
                  mask, settings: AdjointSettings, regularised: Tensor | None = None,
                  offsets: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """``x_star`` (shape of z) made differentiable by the implicit function theorem.

    The inputs are those of the forward solve (tensors among them may require grad).
    """
    wh, wv = edge_weights if isinstance(edge_weights, (tuple, list)) else (edge_weights, edge_weights)
    ch, cv = offsets if offsets is not None else (None, None)
    named = [("z", z), ("a", data_precision), ("wh", wh), ("wv", wv), ("mask", mask), ("ch", ch), ("cv", cv)]
    named += [(f"k{i}", k) for i, k in enumerate(_robust_tensors(robust))]
    slots = [(n, t) for n, t in named if isinstance(t, Tensor) and t.requires_grad]
    if not slots or not torch.is_grad_enabled():
        return x_star
    problem = _Problem(z, data_precision, wh, wv, mask, isinstance(edge_weights, (tuple, list)), robust, settings,
                       tuple(n for n, _ in slots), regularised, ch, cv)
    return _GridImplicit.apply(problem, x_star.detach(), *[t for _, t in slots])


@dataclass(frozen=True)
class _Problem:
    """The forward solve's inputs; ``names`` lists those that receive gradients, in the order of
    the tensors handed to the autograd function (z, a, wh, wv, mask, ch, cv, then thresholds k0, k1, ...)."""

    z: Tensor
    a: object
    wh: object
    wv: object
    mask: object
    pair: bool
    robust: GridRobust | None
    settings: AdjointSettings
    names: tuple[str, ...]
    regularised: Tensor | None = None  # relative regularisation of unobservable pixels (observability.py)
    ch: Tensor | None = None  # edge offsets (horizontal, vertical), or None
    cv: Tensor | None = None


def _energy_fn(problem: _Problem, inputs: dict[str, Tensor]):
    """Total energy E(x) (scalar) built from the forward inputs, with ``inputs`` substituted."""
    def get(name: str):
        return inputs.get(name, getattr(problem, name))

    robust = problem.robust
    thresholds = [inputs[n] for n in problem.names if n.startswith("k")]
    if thresholds:
        robust = _substitute_thresholds(robust, iter(thresholds))
    edges = (get("wh"), get("wv")) if problem.pair else get("wh")
    offsets = (get("ch"), get("cv")) if problem.ch is not None else None
    sys, zz, _ = check_inputs(get("z"), get("a"), edges, get("mask"), validate=False, offsets=offsets)
    if problem.regularised is not None:  # the forward solve's regularisation
        sys = regularise(sys, zz, problem.regularised)

    def total(x: Tensor) -> Tensor:
        xx = x.reshape(zz.shape)
        e = robust_energy(sys, zz, xx, robust) if robust is not None else energy(sys, xx, zz)
        return e.sum()

    return total, sys, zz, robust


def _substitute_thresholds(rb: GridRobust, ks) -> GridRobust:
    """A copy of ``rb`` whose tensor thresholds come, in order, from ``ks``."""
    kernels = {}
    for field in ("data", "smooth"):
        kern = getattr(rb, field)
        if kern is None:
            continue
        if isinstance(kern.k, (tuple, list)):
            k = tuple(next(ks) if isinstance(t, Tensor) and t.requires_grad else t for t in kern.k)
        else:
            k = next(ks) if isinstance(kern.k, Tensor) and kern.k.requires_grad else kern.k
        kernels[field] = replace(kern, k=k)
    return replace(rb, **kernels)


class _GridImplicit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, problem, x_star, *tensors):
        ctx.problem = problem
        ctx.save_for_backward(x_star, *tensors)
        return x_star.clone()

    @staticmethod
    def backward(ctx, grad):
        problem = ctx.problem
        x_star, *tensors = ctx.saved_tensors
        with torch.enable_grad():
            inputs = {n: t.detach().requires_grad_() for n, t in zip(problem.names, tensors)}
            total, sys, zz, robust = _energy_fn(problem, inputs)
            v = _adjoint(total, sys, zz, robust, x_star, grad, problem.settings)
            x = x_star.detach().requires_grad_()
            (f,) = torch.autograd.grad(total(x), x, create_graph=True)
            surrogate = (f * v).sum()
            grads = torch.autograd.grad(surrogate, list(inputs.values()), allow_unused=True)
        return (None, None, *[None if g is None else -g for g in grads])


def _adjoint(total, sys: GridSystem, zz: Tensor, robust: GridRobust | None, x_star: Tensor, g: Tensor,
             settings: AdjointSettings) -> Tensor:
    """Solve ``H v = g`` (v shaped like x_star): multigrid FCG with the (IRLS-weighted) system
    matrix, inside CG on the exact Hessian when kernels are robust."""
    with torch.no_grad():
        base = sys if robust is None else reweight(sys, zz, x_star.reshape(zz.shape), robust)
        base = GridSystem(base.a.detach(), base.wh.detach(), base.wv.detach(), base.b.detach())
        hier = build_hierarchy(base, settings.config)

    def precondition(r: list[Tensor]) -> list[Tensor]:
        rhs = GridSystem(base.a, base.wh, base.wv, r[0].reshape(zz.shape))
        x = fcg_solve(rhs, hier, torch.zeros_like(rhs.b), settings.iters, settings.tol)[0]
        return [x.reshape(x_star.shape)]

    def hessian(p: list[Tensor]) -> list[Tensor]:
        with torch.enable_grad():
            x = x_star.detach().requires_grad_()
            (f,) = torch.autograd.grad(total(x), x, create_graph=True)
            (hp,) = torch.autograd.grad((f * p[0]).sum(), x)
        return [hp.detach()]

    return adjoint_solve([g], precondition, settings.tol, settings.cg_iters,
                         hessian=None if robust is None else hessian)[0]

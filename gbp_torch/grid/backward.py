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

Gradients reach z, the data precisions, both edge-weight fields and tensor
robust thresholds.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from .checks import check_inputs
from .irls import GridRobust, reweight, robust_energy
from .multigrid import build_hierarchy, fcg_solve
from .system import GridSystem, energy

#: Conjugate-gradient steps of the robust adjoint.
MAX_ADJOINT_CG = 50


def _robust_tensors(rb: GridRobust | None) -> list[Tensor]:
    out: list[Tensor] = []
    for kern in (rb.data, rb.smooth) if rb is not None else ():
        if kern is None:
            continue
        ks = kern.k if isinstance(kern.k, (tuple, list)) else (kern.k,)
        out += [k for k in ks if isinstance(k, Tensor)]
    return out


def implicit_mean(x_star: Tensor, z: Tensor, data_precision, edge_weights, robust: GridRobust | None,
                  mask, iters: int, tol: float) -> Tensor:
    """``x_star`` (shape of z) made differentiable by the implicit function theorem.

    The inputs are those of the forward solve (tensors among them may require grad);
    ``iters`` / ``tol`` bound the adjoint FCG solves.
    """
    wh, wv = edge_weights if isinstance(edge_weights, (tuple, list)) else (edge_weights, edge_weights)
    named = [("z", z), ("a", data_precision), ("wh", wh), ("wv", wv), ("mask", mask)]
    named += [(f"k{i}", k) for i, k in enumerate(_robust_tensors(robust))]
    slots = [(n, t) for n, t in named if isinstance(t, Tensor) and t.requires_grad]
    if not slots or not torch.is_grad_enabled():
        return x_star
    spec = dict(z=z, a=data_precision, wh=wh, wv=wv, mask=mask, pair=isinstance(edge_weights, (tuple, list)),
                robust=robust, iters=iters, tol=tol, names=[n for n, _ in slots])
    return _GridImplicit.apply(spec, x_star.detach(), *[t for _, t in slots])


def _energy_fn(spec: dict, inputs: dict[str, Tensor]):
    """Total energy E(x) (scalar) built from the forward inputs, with ``inputs`` substituted."""
    def get(name: str):
        return inputs.get(name, spec[name])

    robust = spec["robust"]
    thresholds = [inputs[n] for n in spec["names"] if n.startswith("k")]
    if thresholds:
        robust = _substitute_thresholds(robust, iter(thresholds))
    edges = (get("wh"), get("wv")) if spec["pair"] else get("wh")
    sys, zz, _ = check_inputs(get("z"), get("a"), edges, get("mask"))

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
    def forward(ctx, spec, x_star, *tensors):
        ctx.spec = spec
        ctx.save_for_backward(x_star, *tensors)
        return x_star.clone()

    @staticmethod
    def backward(ctx, grad):
        spec = ctx.spec
        x_star, *tensors = ctx.saved_tensors
        with torch.enable_grad():
            inputs = {n: t.detach().requires_grad_() for n, t in zip(spec["names"], tensors)}
            total, sys, zz, robust = _energy_fn(spec, inputs)
            v = _adjoint(total, sys, zz, robust, x_star, grad, spec["iters"], spec["tol"])
            x = x_star.detach().requires_grad_()
            (f,) = torch.autograd.grad(total(x), x, create_graph=True)
            surrogate = (f * v).sum()
            grads = torch.autograd.grad(surrogate, list(inputs.values()), allow_unused=True)
        return (None, None, *[None if g is None else -g for g in grads])


def _adjoint(total, sys: GridSystem, zz: Tensor, robust: GridRobust | None, x_star: Tensor, g: Tensor,
             iters: int, tol: float) -> Tensor:
    """Solve ``H v = g`` (v shaped like x_star)."""
    with torch.no_grad():
        base = sys if robust is None else reweight(sys, zz, x_star.reshape(zz.shape), robust)
        base = GridSystem(base.a.detach(), base.wh.detach(), base.wv.detach(), base.b.detach())
        hier = build_hierarchy(base)

        def precondition(r: Tensor) -> Tensor:
            rhs = GridSystem(base.a, base.wh, base.wv, r.reshape(zz.shape))
            return fcg_solve(rhs, hier, torch.zeros_like(rhs.b), iters, tol)[0].reshape(x_star.shape)

        z = precondition(g)
    g_norm = float(g.norm())
    if robust is None or g_norm == 0.0:
        return z

    def hessian(p: Tensor) -> Tensor:
        with torch.enable_grad():
            x = x_star.detach().requires_grad_()
            (f,) = torch.autograd.grad(total(x), x, create_graph=True)
            (hp,) = torch.autograd.grad((f * p).sum(), x)
        return hp.detach()

    v, r, p = torch.zeros_like(g), g.clone(), z
    rz = (r * z).sum()
    for _ in range(MAX_ADJOINT_CG):
        hp = hessian(p)
        alpha = rz / (p * hp).sum()
        v, r = v + alpha * p, r - alpha * hp
        if float(r.norm()) <= tol * max(g_norm, 1e-300):
            break
        with torch.no_grad():
            z = precondition(r)
        rz_new = (r * z).sum()
        p, rz = z + (rz_new / rz) * p, rz_new
    return v


def solve_with_backward(z: Tensor, data_precision, edge_weights, backward: str = "unroll", truncate: int = 5,
                        adjoint_iters: int = 100, adjoint_tol: float | None = None, **kwargs):
    """The truncated / implicit modes of :func:`gbp_torch.grid.solve` (``backward=``; see there).

    ``kwargs`` are the other arguments of :func:`gbp_torch.grid.solve`. Returns a
    GridResult whose ``mean`` carries the gradients (``var`` is detached in implicit mode).
    """
    from ..backward import BackwardMode, as_backward_mode
    from .solve import solve

    mode = as_backward_mode(backward)
    if mode is BackwardMode.UNROLL:
        return solve(z, data_precision, edge_weights, **kwargs)
    with torch.no_grad():
        result = solve(z, data_precision, edge_weights, **kwargs)
    if mode is BackwardMode.TRUNCATED:
        if truncate < 1:
            raise ValueError(f"truncate must be >= 1, got {truncate}")
        tail = dict(kwargs, iters=truncate, tol=None, x0=result.mean)
        return solve(z, data_precision, edge_weights, **tail)
    from .irls import as_grid_robust

    tol = adjoint_tol if adjoint_tol is not None else (kwargs.get("tol") or 1e-10)
    result.mean = implicit_mean(result.mean, z, data_precision, edge_weights, as_grid_robust(kwargs.get("robust")),
                                kwargs.get("mask"), adjoint_iters, tol)
    return result

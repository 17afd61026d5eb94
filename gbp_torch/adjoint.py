"""The adjoint solve of implicit differentiation, shared by the general engine and the grid.

At a solver's fixed point ``x*`` the energy's gradient vanishes; for a loss gradient
``g`` the parameters receive ``-v^T dF/dtheta`` where ``H v = g`` and ``H`` is the
energy's Hessian at ``x*``. The solver supplies ``precondition(r) ~ A^-1 r`` with its own
precision ``A`` (GBP / multigrid on the same graph). For linear-Gaussian problems
``H = A`` and one preconditioner application is the answer; with robust or nonlinear
factors ``H = A + D`` and :func:`adjoint_solve` runs preconditioned conjugate gradients
on ``H`` (symmetric), with Hessian products supplied by the caller (autograd).

Vectors are lists of tensors (one per variable group; the grid passes a one-element list).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Vec = list[Tensor]


def dot(a: Vec, b: Vec) -> Tensor:
    """Inner product of two vectors (lists of same-shaped tensors), a 0-dim tensor."""
    return sum((x * y).sum() for x, y in zip(a, b))


def axpy(alpha: Tensor, x: Vec, y: Vec) -> Vec:
    """``alpha x + y``."""
    return [alpha * a + b for a, b in zip(x, y)]


def adjoint_solve(g: Vec, precondition: Callable[[Vec], Vec], tol: float, max_iters: int = 50,
                  hessian: Callable[[Vec], Vec] | None = None, x0: Vec | None = None) -> Vec:
    """Solve ``H v = g``.

    Args:
        g: right-hand side (the loss gradient w.r.t. the solution).
        precondition: ``r -> A^-1 r`` by the solver's own precision (run without autograd).
        tol: stop when ``|g - H v| <= tol |g|``.
        max_iters: conjugate-gradient steps at most.
        hessian: ``p -> H p``; None when ``H = A`` (the answer is then ``precondition(g)``).
        x0: warm start (e.g. the adjoint of a previous, similar solve); CG only.
    Returns:
        v, shaped like g.
    """
    if hessian is None:
        with torch.no_grad():
            return precondition(g)
    g_norm = float(dot(g, g).sqrt())
    if g_norm == 0.0:
        return [torch.zeros_like(t) for t in g]
    if x0 is None:
        v, r = [torch.zeros_like(t) for t in g], list(g)
    else:
        v = list(x0)
        r = axpy(torch.tensor(-1.0, dtype=g[0].dtype, device=g[0].device), hessian(v), g)
    if float(dot(r, r).sqrt()) <= tol * g_norm:
        return v
    with torch.no_grad():
        z = precondition(r)
    p, rz = z, dot(r, z)
    for _ in range(max_iters):
        hp = hessian(p)
        alpha = rz / dot(p, hp)
        v, r = axpy(alpha, p, v), axpy(-alpha, hp, r)
        if float(dot(r, r).sqrt()) <= tol * g_norm:
            break
        with torch.no_grad():
            z = precondition(r)
        rz_new = dot(r, z)
        p, rz = axpy(rz_new / rz, p, z), rz_new
    return v

"""Multigrid for grid GBP: hierarchy, V-cycle, full multigrid, flexible CG.

The hierarchy is built once per call by 2x2 aggregation (coarse data
precision = block sum, coarse edge weight = mean of the fine edges it crosses)
down to ``coarse_size`` pixels, where A is factorised densely. Each level
holds its operator as a 5-point stencil and a smoother (frozen-gain damped
GBP or damped Jacobi). The V-cycle is a
coarse-grid *correction* scheme on ``A e = r``; it is used as a stand-alone
iteration (``"vcycle"``) or as the preconditioner of flexible CG (``"fcg"``),
both optionally started by full multigrid (FMG). ``"c2f"`` is plain
coarse-to-fine initialisation followed by flat GBP (no correction).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from . import blocks
from .config import MULTIGRID, GridConfig
from .gbp import GBPGains, gbp_iterate, lam_setup
from .smoothers import gbp_smoother, jacobi_smoother
from .stencil import Stencil, system_stencil
from .system import GridSystem, bdot, bnorm, matvec
from .transfer import aggregate, coarsen, prolong_bilinear, prolong_constant, restrict_bilinear


@dataclass
class Level:
    """One level: its system (b = restricted fine rhs), operator, smoother, gains (c2f only) and,
    on the coarsest, the dense Cholesky factor of A (B, n, n)."""

    sys: GridSystem
    frac: float
    op: Stencil
    smoother: object = None
    gains: GBPGains | None = None
    chol: Tensor | None = None


@dataclass
class Hierarchy:
    """Levels fine -> coarse plus cycle settings; ``work`` counts fine-equivalent sweeps."""

    levels: list[Level]
    transfer: str = "constant"
    cycle: tuple[int, int] = (1, 1)
    coarse_sweeps: int = 50
    work: float = 0.0
    compile: bool = False

    def coarse_work(self) -> float:
        """Fine-equivalent sweeps of one coarsest solve (0 for the dense factor)."""
        last = self.levels[-1]
        return 0.0 if last.chol is not None else self.coarse_sweeps * last.frac

    def cycle_work(self, level: int = 0) -> float:
        """Fine-equivalent sweeps of one V-cycle from ``level``: its smoothing steps, counted outside the
        cycle so that the cycle itself is a pure tensor function (see :func:`precondition`)."""
        steps = sum(self.cycle)
        return sum(steps * lev.frac for lev in self.levels[level:-1]) + self.coarse_work()

    def restrict(self, r: Tensor) -> Tensor:
        return aggregate(r) if self.transfer == "constant" else restrict_bilinear(r)

    def prolong(self, e: Tensor, h: int, w: int) -> Tensor:
        return prolong_constant(e, h, w) if self.transfer == "constant" else prolong_bilinear(e, h, w)


def dense_matrix(sys: GridSystem) -> Tensor:
    """Assemble A densely, (B, n, n) with n = D H W (unknowns ordered d, y, x)."""
    bsz, d, h, w = sys.b.shape
    n = d * h * w
    eye = torch.eye(n, dtype=sys.b.dtype, device=sys.b.device).reshape(n, d, h, w).repeat(bsz, 1, 1, 1)
    rep = GridSystem(sys.a.repeat_interleave(n, 0), sys.wh.repeat_interleave(n, 0),
                     sys.wv.repeat_interleave(n, 0), eye)
    return matvec(rep, eye).reshape(bsz, n, n).transpose(1, 2)


def safe_cholesky(mat: Tensor, shift: float = 1e-5) -> Tensor:
    """Cholesky factors of SPD matrices (B, n, n); an item whose factorisation fails (singular or numerically
    singular: a level without data, as from textureless frames with ``validate=False``) gets the factor of
    ``mat + shift max(diag) I`` instead, so its coarse solve is a regularised one (exact items are untouched).

    On the CPU the failure flags are read at once (no synchronisation to avoid): one factorisation unless
    an item fails. Elsewhere, an unrecorded factorisation finds the failing items and a second one factors
    every item's matrix, shifted or not, without a host synchronisation. The recorded factor never holds a
    failed item's partial factor."""
    if mat.device.type == "cpu":
        chol, info = torch.linalg.cholesky_ex(mat)
        if not bool(info.any()):
            return chol
        failed = info != 0
    else:
        with torch.no_grad():
            failed = torch.linalg.cholesky_ex(mat)[1] != 0
    with torch.no_grad():
        jitter = shift * mat.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(torch.finfo(mat.dtype).tiny)
        jitter = torch.where(failed, jitter, torch.zeros_like(jitter)).view(-1, 1, 1)
    eye = torch.eye(mat.shape[-1], dtype=mat.dtype, device=mat.device)
    return torch.linalg.cholesky_ex(mat + jitter * eye)[0]


def build_hierarchy(sys: GridSystem, config: GridConfig = MULTIGRID, fine_gains: GBPGains | None = None,
                    max_dense: int = 1024) -> Hierarchy:
    """Build levels until <= ``config.multigrid.coarse_size`` pixels (or ``config.levels`` levels).

    The fine level's lam-messages converge to ``config.lam_tol`` (default 1e-2) unless
    ``fine_gains`` gives them; coarser levels' GBP smoothers use the locally homogeneous gains
    (:func:`~.gbp.local_init`, no iterations), except for ``"c2f"``, which runs GBP to its fixed
    point on them.
    """
    mg = config.multigrid
    lam_tol = 1e-2 if config.lam_tol is None else config.lam_tol
    h0, w0 = sys.shape
    hier = Hierarchy([], mg.transfer, mg.cycle, compile=mg.compile)
    cur = sys
    while True:
        h, w = cur.shape
        lev = Level(cur, h * w / (h0 * w0), system_stencil(cur))
        depth = len(hier.levels)
        last = (config.levels is not None and depth + 1 >= config.levels) or h * w <= mg.coarse_size \
            or (h == 1 and w == 1)
        if last and cur.b.shape[1] * h * w <= max_dense:
            lev.chol = safe_cholesky(dense_matrix(cur))
        else:
            if mg.smoother == "gbp" or mg.method == "c2f":
                converged = mg.method == "c2f" or depth == 0
                gains = fine_gains if (fine_gains is not None and depth == 0) else \
                    lam_setup(cur, lam_tol, max_iters=500 if converged else 0)
                lev.gains = gains if mg.method == "c2f" else None
            if mg.smoother == "gbp":
                lev.smoother = gbp_smoother(lev.op.centre, gains, config.smoother_damping(depth), mg.relax, mg.clamp)
            else:
                lev.smoother = jacobi_smoother(lev.op.centre, mg.relax)
        hier.levels.append(lev)
        if last:
            break
        cur = coarsen(cur, hier.restrict)
    return hier


def _smooth(hier: Hierarchy, lev: Level, r: Tensor, e: Tensor | None, transpose: bool) -> Tensor:
    """One smoothing step ``e += S (r - A e)`` (S^T when transpose); in place on e without autograd."""
    res = r if e is None else lev.op.residual(r, e)
    step = lev.smoother.apply_t(res) if transpose else lev.smoother.apply(res)
    del res
    return step if e is None else _add(e, step)


def _add(e: Tensor, f: Tensor) -> Tensor:
    """``e + f``, into e when autograd is off (big grids: one fine-level vector fewer at the peak)."""
    return e + f if torch.is_grad_enabled() or torch.compiler.is_compiling() else e.add_(f)


def coarse_solve(hier: Hierarchy, lev: Level, r: Tensor) -> Tensor:
    """Dense solve with the Cholesky factor, two triangular solves without a host synchronisation
    (or many smoothing sweeps when the level is too big)."""
    if lev.chol is not None:
        y = torch.linalg.solve_triangular(lev.chol, r.reshape(r.shape[0], -1, 1), upper=False)
        return torch.linalg.solve_triangular(lev.chol.mT, y, upper=True).reshape(r.shape)
    e = None
    for _ in range(hier.coarse_sweeps):
        e = _smooth(hier, lev, r, e, False)
    return e


def vcycle(hier: Hierarchy, r: Tensor, level: int = 0) -> Tensor:
    """One V(nu1, nu2) cycle for ``A_level e = r`` from e = 0; returns e."""
    lev = hier.levels[level]
    if level == len(hier.levels) - 1:
        return coarse_solve(hier, lev, r)
    nu1, nu2 = hier.cycle
    e = None
    for _ in range(nu1):
        e = _smooth(hier, lev, r, e, False)
    rc = hier.restrict(r if e is None else lev.op.residual(r, e))
    h, w = lev.sys.shape
    corr = hier.prolong(vcycle(hier, rc, level + 1), h, w)
    e = corr if e is None else _add(e, corr)
    del corr
    for _ in range(nu2):
        e = _smooth(hier, lev, r, e, True)
    return e


@functools.cache
def compiled(fn: Callable) -> Callable:
    """``torch.compile(fn, dynamic=False)``, made once per function on first use (one graph per problem shape,
    dtype and device; the first call of each compiles)."""
    return torch.compile(fn, dynamic=False)


def precondition(hier: Hierarchy, r: Tensor) -> Tensor:
    """One V-cycle from the finest level (``torch.compile``-d when ``hier.compile``: one graph per problem
    shape, dtype and device; the first call of each compiles), its work added to ``hier.work``."""
    hier.work += hier.cycle_work()
    return (compiled(vcycle) if hier.compile else vcycle)(hier, r)


def fmg(hier: Hierarchy) -> Tensor:
    """Full multigrid start: exact coarsest solve, then bilinear up + one V-cycle per level."""
    x = coarse_solve(hier, hier.levels[-1], hier.levels[-1].sys.b)
    hier.work += hier.coarse_work()
    for k in range(len(hier.levels) - 2, -1, -1):
        lev = hier.levels[k]
        x = prolong_bilinear(x, *lev.sys.shape)
        x = x + vcycle(hier, lev.op.residual(lev.sys.b, x), k)
        hier.work += hier.cycle_work(k)
    return x


def c2f(hier: Hierarchy, iters_per_level: int = 20) -> Tensor:
    """Coarse-to-fine start: flat GBP on every coarse level, bilinear up (no correction)."""
    x = coarse_solve(hier, hier.levels[-1], hier.levels[-1].sys.b)
    hier.work += hier.coarse_work()
    for k in range(len(hier.levels) - 2, 0, -1):
        lev = hier.levels[k]
        x = prolong_bilinear(x, *lev.sys.shape)
        x, _, it, _ = gbp_iterate(lev.sys, lev.gains, iters_per_level, x0=x)
        hier.work += it * lev.frac
    return prolong_bilinear(x, *hier.levels[0].sys.shape)


def vcycle_solve(sys: GridSystem, hier: Hierarchy, x: Tensor, iters: int, tol: float | None, callback=None):
    """Stationary V-cycle iteration ``x += V(b - A x)`` on ``sys.b`` (A: the hierarchy's finest
    operator). Returns (x, history, iters, converged); ``callback(it, x)`` may return True to stop.
    """
    op = hier.levels[0].op
    bn = bnorm(sys.b).clamp_min(torch.finfo(sys.b.dtype).tiny)
    hist, it, conv = [], 0, False
    r = op.residual(sys.b, x)
    while it < iters:
        x = x + precondition(hier, r)
        it += 1
        r = op.residual(sys.b, x)
        stop, conv = _check(x, bn, r, hist, it, tol, callback)
        if stop:
            break
    return x, hist, it, conv


def _check(x: Tensor, bn: Tensor, r: Tensor, hist: list, it: int, tol: float | None,
           callback) -> tuple[bool, bool]:
    """Record the relative residual ``|r| / |b|``; return (stop, converged) after iteration ``it``."""
    hist.append((bnorm(r) / bn).detach())
    if callback is not None and callback(it, x):
        return True, False
    converged = tol is not None and float(hist[-1].max()) <= tol
    return converged, converged


def _direction(zk: Tensor, p: Tensor | None, q: Tensor | None, pq: Tensor | None, in_place: bool) -> Tensor:
    """FCG(1)'s next search direction: the preconditioned residual zk made A-orthogonal to the last direction
    p (q = A p, pq = p^T A p); into zk when ``in_place``."""
    if p is None:
        return zk
    beta = (-bdot(zk, q) / pq).view(-1, 1, 1, 1)
    return zk.addcmul_(beta, p) if in_place else torch.addcmul(zk, beta, p)


def _curvature(p: Tensor, q: Tensor, floor: Tensor, tiny: float) -> Tensor:
    """``p^T A p`` (q = A p), raised to its rounding level ``floor |p|^2`` where it is at or below it."""
    return torch.maximum(bdot(p, q), (floor * bdot(p, p)).clamp_min(tiny))


def _fcg_step(hier: Hierarchy, x: Tensor, r: Tensor, p: Tensor | None, q: Tensor | None, pq: Tensor | None,
              floor: Tensor, tiny: float) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """One whole FCG step on the hierarchy's finest operator, out of place (the form ``torch.compile`` fuses:
    V-cycle, direction, A p, products and updates in one graph) -> (x, r, p, q, pq)."""
    p = _direction(vcycle(hier, r), p, q, pq, False)
    q = hier.levels[0].op.apply(p)
    pq = _curvature(p, q, floor, tiny)
    alpha = (bdot(p, r) / pq).view(-1, 1, 1, 1)
    return torch.addcmul(x, alpha, p), torch.addcmul(r, alpha, q, value=-1), p, q, pq


def fcg_solve(sys: GridSystem, hier: Hierarchy, x: Tensor, iters: int, tol: float | None, callback=None,
              apply: Callable[[Tensor], Tensor] | None = None):
    """Flexible CG (FCG(1), Notay) on ``sys.b`` (A: the hierarchy's finest operator), preconditioned by
    one V-cycle per iteration.

    The curvature ``p^T A p`` of a search direction is floored at its rounding level, ``16 eps lam_max |p|^2``
    (lam_max bounded by twice the largest diagonal trace): on a nearly singular system (data precisions
    ~1e-12 beside edge weights ~100, as from textureless frames) a rounding-level or negative curvature
    would otherwise give a huge step and overflow to NaN; directions with curvature above rounding level are
    untouched.

    ``apply``: the operator ``p -> A p`` when A is not the hierarchy's finest operator (the grid plus
    extra edges of :mod:`.extra_edges`); the bound above then needs the finest level to carry A's
    diagonal, with A diagonally dominant. With ``hier.compile`` the whole step goes through ``torch.compile``
    when A is the finest operator (with ``apply``: the V-cycle alone, see :func:`precondition`).

    Returns (x, history, iters, converged); ``callback(it, x)`` may return True to stop.
    """
    op = hier.levels[0].op
    whole_step = hier.compile and apply is None
    r = op.residual(sys.b, x) if apply is None else sys.b - apply(x)
    apply = op.apply if apply is None else apply
    info = torch.finfo(sys.b.dtype)
    bn = bnorm(sys.b).clamp_min(info.tiny)
    floor = 16 * info.eps * 2 * blocks.trace(op.centre, 1).flatten(1).amax(1)  # lam_max <= 2 max trace (Gershgorin)
    hist, it, conv = [], 0, False
    p = q = pq = None
    in_place = not torch.is_grad_enabled() and callback is None  # x and r updated in place after the first step
    while it < iters:
        if whole_step:
            hier.work += hier.cycle_work()
            x, r, p, q, pq = compiled(_fcg_step)(hier, x, r, p, q, pq, floor, info.tiny)
        else:
            p = _direction(precondition(hier, r), p, q, pq, in_place)
            q = None  # the previous direction's A p goes before the next one is made
            q = apply(p)
            pq = _curvature(p, q, floor, info.tiny)
            alpha = (bdot(p, r) / pq).view(-1, 1, 1, 1)
            if in_place and it > 0:  # x is the caller's x0 until the first step
                x.addcmul_(alpha, p)
                r.addcmul_(alpha, q, value=-1)
            else:
                x = torch.addcmul(x, alpha, p)
                r = torch.addcmul(r, alpha, q, value=-1)
        it += 1
        stop, conv = _check(x, bn, r, hist, it, tol, callback)
        if stop:
            break
    return x, hist, it, conv

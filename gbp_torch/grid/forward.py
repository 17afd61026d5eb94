"""The forward grid solve on a validated system: flat GBP or multigrid, inside IRLS for robust kernels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from . import blocks
from .config import GridConfig
from .gbp import gbp_iterate, lam_setup
from .irls import GridRobust, reweight
from .multigrid import build_hierarchy, c2f, fcg_solve, fmg, vcycle_solve
from .system import GridSystem


@dataclass
class GridResult:
    """Result of :func:`gbp_torch.grid.solve`.

    Attributes:
        mean: posterior means, same shape as z ((B, H, W), (B, 1, H, W) or (B, 2, H, W)).
        var: GBP marginal variances ``lam_b^-1``: (B, H, W) for D = 1, full
            2x2 covariance blocks (B, 2, 2, H, W) for D = 2. Loopy GBP
            underestimates the exact ``diag(A^-1)`` (see :mod:`.calibration`). A solver
            that does not need the lam-messages (multigrid with the Jacobi smoother) sets
            them up on the first read of ``var`` (under the grad mode of the solve), so a
            caller that never reads it (the inner solves of a warping loop) does not pay.
        iters: iterations of the last solve (GBP iterations, V-cycles or FCG steps).
        converged: whether ``tol`` was reached (False when tol is None).
        residuals: (T, B) relative residuals ``|b - A x| / |b|`` of the last solve.
        work: fine-grid-sweep equivalents of all solves (smoothing / GBP sweeps
            weighted by level size; lam set-up and residuals not counted).
        lam_iters: lam-message iterations of the fine-level set-up (last solve; 0 when deferred).
        outer_iters: IRLS reweightings run (0 without robust kernels).
        unobservable: (B, H, W) bool, pixels no data determines fully (their mean a regularised placeholder,
            the ``var`` of the undetermined coordinates inf: for D = 2 data of one direction only, the coordinates
            with a share in the other; see :mod:`.observability`), or None.
        variance: what ``var`` reads: the tensor, or the function that sets it up on first read.
    """

    mean: Tensor
    iters: int
    converged: bool
    residuals: Tensor
    work: float
    lam_iters: int
    outer_iters: int = 0
    unobservable: Tensor | None = None
    variance: Tensor | Callable[[], Tensor] | None = field(default=None, repr=False)

    @property
    def var(self) -> Tensor:
        if callable(self.variance):
            self.variance = self.variance()
        return self.variance

    @var.setter
    def var(self, value: Tensor) -> None:
        self.variance = value


def _default_lam_tol(dtype: torch.dtype, flat: bool) -> float:
    if not flat:
        return 1e-2
    return 1e-13 if dtype == torch.float64 else 1e-7


def _lam_tol(sys: GridSystem, config: GridConfig) -> float:
    flat = config.flat or config.multigrid.method == "c2f"
    return config.lam_tol if config.lam_tol is not None else _default_lam_tol(sys.b.dtype, flat)


def solve_once(sys: GridSystem, x0: Tensor | None, iters: int, tol: float | None,
               config: GridConfig) -> tuple[Tensor, list, int, bool, Tensor | None, int, float]:
    """One least-squares solve of ``sys``; returns (x, residual history, iters, converged, the fine
    belief precision lam_b (None: not set up, the Jacobi-smoothed multigrid does not need it), its lam
    iterations, work)."""
    c2f_method = config.multigrid.method == "c2f"
    if not (config.flat or c2f_method or config.multigrid.smoother == "gbp"):
        hier = build_hierarchy(sys, config)
        x, hist, it, conv = _iterate(sys, hier, x0, iters, tol, config)
        return x, hist, it, conv, None, 0, hier.work
    gains = lam_setup(sys, _lam_tol(sys, config), init="zero" if config.flat or c2f_method else "local")
    lam_b, lam_iters = gains.lam_b, gains.iters
    if config.flat:
        x, hist, it, conv = gbp_iterate(sys, gains, iters, x0=x0, tol=tol, damping=config.damping or 0.0,
                                        schedule=config.schedule, check_every=config.check_every)
        return x, hist, it, conv, lam_b, lam_iters, float(it)
    hier = build_hierarchy(sys, config, fine_gains=gains)
    if c2f_method:
        start = c2f(hier) if x0 is None else x0
        x, hist, it, conv = gbp_iterate(sys, gains, iters, x0=start, tol=tol, schedule=config.schedule,
                                        check_every=config.check_every)
        return x, hist, it, conv, lam_b, lam_iters, hier.work + it
    del gains  # the smoothers hold what they need: the fine gain fields go before the iteration
    x, hist, it, conv = _iterate(sys, hier, x0, iters, tol, config)
    return x, hist, it, conv, lam_b, lam_iters, hier.work


def _iterate(sys: GridSystem, hier, x0: Tensor | None, iters: int, tol: float | None, config: GridConfig):
    """FCG or V-cycles from x0 (None: the full-multigrid start, or zero) -> (x, history, iters, converged)."""
    if x0 is None:
        x0 = fmg(hier) if config.multigrid.fmg else torch.zeros_like(sys.b)
    run = fcg_solve if config.multigrid.method == "fcg" else vcycle_solve
    return run(sys, hier, x0, iters, tol)


def _deferred_variance(sys: GridSystem, config: GridConfig) -> Callable[[], Tensor]:
    """The GBP marginal variances of ``sys``, set up when first asked for, under the current grad mode."""
    grad = torch.is_grad_enabled()

    def variance() -> Tensor:
        with torch.set_grad_enabled(grad):
            lam_b = lam_setup(sys, _lam_tol(sys, config), init="local").lam_b
            return blocks.to_matrix(blocks.inv(lam_b), sys.d)

    return variance


def solve_system(sys: GridSystem, z: Tensor, iters: int, tol: float | None, x0: Tensor | None,
                 robust: GridRobust | None, config: GridConfig) -> GridResult:
    """Solve a validated system (z, x0 (B, D, H, W)); IRLS outer iterations when ``robust``.

    Returns a :class:`GridResult` whose ``mean`` is (B, D, H, W) (the caller reshapes).
    """
    from_x0 = robust is not None and x0 is not None  # robust weights are first evaluated at x0
    if from_x0:
        x, hist, it, conv, lam_b, lam_iters, work = x0, [], 0, False, None, 0, 0.0
    else:
        x, hist, it, conv, lam_b, lam_iters, work = solve_once(sys, x0, iters, tol, config)
    outer, last = 0, sys
    if robust is not None:
        for _ in range(max(robust.outer_iters, 1 if from_x0 else 0)):
            last = reweight(sys, z, x, robust)
            x_new, hist, it, conv, lam_b, lam_iters, w = solve_once(last, x, iters, tol, config)
            work += w
            outer += 1
            done = robust.outer_tol is not None and _relative_change(x_new, x) <= robust.outer_tol
            x = x_new
            if done:
                break
    var = _deferred_variance(last, config) if lam_b is None else blocks.to_matrix(blocks.inv(lam_b), sys.d)
    res = torch.stack(hist) if hist else z.new_zeros(0, z.shape[0])
    return GridResult(mean=x, iters=it, converged=conv, residuals=res, work=work, lam_iters=lam_iters,
                      outer_iters=outer, variance=var)


def _relative_change(new: Tensor, old: Tensor) -> float:
    """``max |new - old| / max |new|`` (one host sync)."""
    new, old = new.detach(), old.detach()
    return float((new - old).abs().max() / new.abs().max().clamp_min(torch.finfo(new.dtype).tiny))

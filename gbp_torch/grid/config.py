"""Settings of a grid solve as small frozen objects, validated once at construction.

    from gbp_torch.grid import GridConfig, MultigridConfig, solve
    res = solve(z, a, (wh, wv), config=GridConfig(levels=None))                     # multigrid FCG
    res = solve(z, a, (wh, wv), config=GridConfig(levels=None, multigrid=MultigridConfig(smoother="jacobi")))
    res = solve(z, a, (wh, wv), iters=500)                                          # flat GBP (levels=1)

A module holds one config and passes it whole; a warping loop forwards one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

METHODS = ("fcg", "vcycle", "c2f")
SMOOTHERS = ("gbp", "jacobi")
TRANSFERS = ("bilinear", "constant")
SCHEDULES = ("sync", "redblack")


def _check_choice(name: str, value, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


@dataclass(frozen=True)
class MultigridConfig:
    """The multigrid hierarchy and cycle (used when ``GridConfig.levels != 1``).

    Attributes:
        method: ``"fcg"`` (V-cycle-preconditioned flexible CG), ``"vcycle"``
            (stationary V-cycles) or ``"c2f"`` (coarse-to-fine start + flat GBP).
        smoother: ``"gbp"`` (frozen-gain damped GBP) or ``"jacobi"`` (damped Jacobi).
        relax: output damping of the GBP smoother / weight of the Jacobi smoother.
        clamp: the smoother uses ``max(lam_b, clamp * diag(A))`` (edge-aware weights).
        cycle: (pre, post) smoothing steps of the V-cycle.
        transfer: ``"bilinear"`` (cell-centred) or ``"constant"`` grid transfers.
        fmg: start from a full-multigrid pass (else from zero) when no warm start is given.
        coarse_size: pixels at which coarsening stops (dense Cholesky there).
        compile: run each FCG step (V-cycle, direction, A p, products and updates; the V-cycle alone in
            V-cycle iterations and in solves with extra edges) through ``torch.compile`` (inductor; one compilation per
            problem shape, dtype and device, seconds each, up to torch's recompile limit, then eager;
            pays off on small levels' per-op overhead: ``benchmarks/bench_compile.py``). With torch 2.5 the compiled
            CPU kernels switch the whole process to flush subnormal floats to zero (seen with 2.5.1, not 2.14.1).
    """

    method: str = "fcg"
    smoother: str = "gbp"
    relax: float = 0.8
    clamp: float = 0.6
    cycle: tuple[int, int] = (1, 1)
    transfer: str = "bilinear"
    fmg: bool = True
    coarse_size: int = 256
    compile: bool = False

    def __post_init__(self) -> None:
        _check_choice("method", self.method, METHODS)
        _check_choice("smoother", self.smoother, SMOOTHERS)
        _check_choice("transfer", self.transfer, TRANSFERS)
        if not 0 < self.relax <= 1:
            raise ValueError(f"relax must be in (0, 1], got {self.relax!r}")
        if not 0 <= self.clamp <= 1:
            raise ValueError(f"clamp must be in [0, 1], got {self.clamp!r}")
        cycle = tuple(self.cycle)
        if len(cycle) != 2 or any(not isinstance(c, int) or c < 0 for c in cycle) or sum(cycle) == 0:
            raise ValueError(f"cycle must be (pre, post) smoothing steps >= 0, not both 0; got {self.cycle!r}")
        object.__setattr__(self, "cycle", cycle)
        if not isinstance(self.coarse_size, int) or self.coarse_size < 1:
            raise ValueError(f"coarse_size must be an int >= 1, got {self.coarse_size!r}")


@dataclass(frozen=True)
class GridConfig:
    """How :func:`gbp_torch.grid.solve` solves.

    Attributes:
        levels: 1 = flat GBP; None = full multigrid hierarchy down to
            ``multigrid.coarse_size`` pixels; k > 1 = at most k levels.
        damping: message damping in [0, 1): flat GBP's (default 0) or the multigrid GBP
            smoother's (default 0.5; a tuple gives one value per level).
        schedule: ``"sync"`` or ``"redblack"`` (flat GBP and the c2f method).
        lam_tol: relative change at which the lam-messages count as converged
            (default: 1e-13 / 1e-7 for float64 / float32 with flat GBP and c2f, 1e-2 for
            the multigrid smoothers); the variances are as accurate as this.
        check_every: flat GBP computes the residual every this many iterations (with a tol).
        multigrid: the hierarchy and cycle settings.
    """

    levels: int | None = 1
    damping: float | tuple[float, ...] | None = None
    schedule: str = "sync"
    lam_tol: float | None = None
    check_every: int = 10
    multigrid: MultigridConfig = field(default_factory=MultigridConfig)

    def __post_init__(self) -> None:
        if self.levels is not None and (not isinstance(self.levels, int) or self.levels < 1):
            raise ValueError(f"levels must be None or an int >= 1, got {self.levels!r}")
        if isinstance(self.damping, list):
            object.__setattr__(self, "damping", tuple(self.damping))
        for d in self.damping if isinstance(self.damping, tuple) else (self.damping,):
            if d is not None and not 0 <= d < 1:
                raise ValueError(f"damping must be in [0, 1), got {self.damping!r}")
        if self.flat and isinstance(self.damping, tuple):
            raise ValueError("a per-level damping tuple needs levels != 1")
        _check_choice("schedule", self.schedule, SCHEDULES)
        if self.lam_tol is not None and not self.lam_tol > 0:
            raise ValueError(f"lam_tol must be None or > 0, got {self.lam_tol!r}")
        if not isinstance(self.check_every, int) or self.check_every < 1:
            raise ValueError(f"check_every must be an int >= 1, got {self.check_every!r}")
        if not isinstance(self.multigrid, MultigridConfig):
            raise ValueError(f"multigrid must be a MultigridConfig, got {type(self.multigrid).__name__}")

    @property
    def flat(self) -> bool:
        """Flat GBP (one level)."""
        return self.levels == 1

    @property
    def default_iters(self) -> int:
        """Iterations when the caller gives none: 100 GBP iterations flat, 30 multigrid steps."""
        return 100 if self.flat else 30

    def smoother_damping(self, level: int) -> float:
        """Message damping of the multigrid GBP smoother on ``level`` (0 = finest)."""
        if self.damping is None:
            return 0.5
        if isinstance(self.damping, tuple):
            return self.damping[min(level, len(self.damping) - 1)]
        return self.damping


#: Multigrid with the default settings (FCG, GBP smoother, bilinear transfers, FMG start).
MULTIGRID = GridConfig(levels=None)

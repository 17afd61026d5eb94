"""Grid fast path: GBP on B x H x W pixel grids with D values per pixel, plus multigrid.

Main entry point: :func:`solve` with a :class:`GridConfig` (flat GBP or multigrid and
their settings) and :class:`GridRobust` kernels. Building blocks: :mod:`.gbp` (flat
engine), :mod:`.multigrid`, :mod:`.irls` (robust kernels), :mod:`.implicit` (the
implicit gradient), :mod:`.calibration` (variances).
"""

from .config import MULTIGRID, GridConfig, MultigridConfig
from .forward import GridResult
from .gbp import GBPGains, gbp_iterate, lam_setup
from .irls import GridRobust
from .multigrid import build_hierarchy, fcg_solve, vcycle, vcycle_solve
from .observability import GridUnobservableWarning
from .solve import solve
from .system import GridSystem, matvec

__all__ = ["solve", "GridConfig", "MultigridConfig", "MULTIGRID", "GridResult", "GridRobust", "GridSystem",
           "GridUnobservableWarning", "GBPGains", "lam_setup", "gbp_iterate", "build_hierarchy", "vcycle",
           "vcycle_solve", "fcg_solve", "matvec"]

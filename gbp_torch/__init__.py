"""gbp_torch: Gaussian belief propagation as a differentiable PyTorch layer.

Imports with torch alone. Main entry points:

- :class:`FactorGraph` + :mod:`gbp_torch.factors`: general batched GBP.
- :class:`Gaussian`: canonical-form algebra.
- :class:`RobustKernel`: Huber / Tukey / Cauchy IRLS weights with tensor thresholds.
"""

from .factor_graph import FactorGraph, GBPDivergenceWarning, GBPEngine, GBPResult
from .factors import DifferenceFactors, LinearFactors, NonlinearFactors, PriorFactors
from .gaussian import Gaussian
from .robust import RobustKernel
from .schedules import RandomSchedule, ResidualSchedule, Schedule, Sweep, Synchronous

__version__ = "0.1.0"

__all__ = [
    "FactorGraph", "GBPEngine", "GBPResult", "GBPDivergenceWarning",
    "LinearFactors", "PriorFactors", "DifferenceFactors", "NonlinearFactors",
    "Gaussian", "RobustKernel",
    "Schedule", "Synchronous", "RandomSchedule", "Sweep", "ResidualSchedule",
]

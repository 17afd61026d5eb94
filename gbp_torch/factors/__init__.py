"""Factor families: batches of factors of one kind, processed together."""

from .base import FactorFamily, VariableGroup, VariableRef
from .linear import DifferenceFactors, LinearFactors, PriorFactors
from .nonlinear import NonlinearFactors

__all__ = ["FactorFamily", "VariableGroup", "VariableRef", "LinearFactors", "PriorFactors",
           "DifferenceFactors", "NonlinearFactors"]

"""Linear-Gaussian factor families: general linear, priors, and differences."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..robust import RobustKernel, Threshold
from .base import FactorFamily, VariableRef


class LinearFactors(FactorFamily):
    """F factors with energy ``1/2 (J x - z)^T L (J x - z)``.

    Args:
        variables: K slots (each a :class:`VariableRef` of F variables); x is
            their concatenation, n = sum of the slots' dims.
        jacobian: J, (F, m, n) or (B, F, m, n), or (m, n) shared by all factors.
        z: measurements, (F, m) or (B, F, m).
        precision: L, see :class:`FactorFamily`.
        robust, k: optional robust kernel and threshold.
    """

    def __init__(
        self,
        variables: Sequence[VariableRef] | VariableRef,
        jacobian: Tensor,
        z: Tensor,
        precision: Tensor | float = 1.0,
        robust: RobustKernel | str | None = None,
        k: Threshold = 1.0,
    ):
        jacobian, z = torch.as_tensor(jacobian), torch.as_tensor(z)
        m = jacobian.shape[-2] if jacobian.dim() >= 2 else 0
        super().__init__(variables, precision, m, robust, k, dtype=z.dtype)
        if jacobian.dim() == 2:
            jacobian = jacobian.expand(self.num_factors, *jacobian.shape)
        self.jacobian = self._batched(jacobian, "jacobian", (m, self.dim))
        self.z = self._batched(z, "z", (m,))

    def linearise(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        return self.jacobian, self.z


class PriorFactors(LinearFactors):
    """Unary priors ``x_i ~ N(mean_i, precision_i^-1)`` on F variables of one group.

    ``mean``: (F, d) or (B, F, d); ``precision``: see :class:`FactorFamily` (m = d).
    """

    def __init__(self, variables: VariableRef, mean: Tensor, precision: Tensor | float = 1.0,
                 robust: RobustKernel | str | None = None, k: Threshold = 1.0):
        d = variables.group.dim
        mean = torch.as_tensor(mean)
        eye = torch.eye(d, dtype=mean.dtype if mean.is_floating_point() else torch.get_default_dtype())
        super().__init__([variables], eye, mean, precision, robust, k)


class DifferenceFactors(LinearFactors):
    """Pairwise ``x_j - x_i ~ N(z, L^-1)`` between equal-dimension variables.

    The usual "between" factor of position graphs and smoothness priors.
    ``z``: (F, d) or (B, F, d).
    """

    def __init__(self, first: VariableRef, second: VariableRef, z: Tensor, precision: Tensor | float = 1.0,
                 robust: RobustKernel | str | None = None, k: Threshold = 1.0):
        d = first.group.dim
        if second.group.dim != d:
            raise ValueError(f"DifferenceFactors needs equal dims, got {d} and {second.group.dim}")
        z = torch.as_tensor(z)
        dtype = z.dtype if z.is_floating_point() else torch.get_default_dtype()
        eye = torch.eye(d, dtype=dtype)
        super().__init__([first, second], torch.cat((-eye, eye), -1), z, precision, robust, k)

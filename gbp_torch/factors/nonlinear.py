"""Nonlinear factors ``z = h(x) + noise``, linearised with autograd Jacobians."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from ..robust import RobustKernel, Threshold
from .base import FactorFamily, VariableRef


class NonlinearFactors(FactorFamily):
    """F factors with energy ``1/2 (h(x) - z)^T L (h(x) - z)``.

    ``h`` is written for ONE factor: ``h(x, *params) -> (m,)`` with ``x`` (n,)
    the concatenation of the factor's variables (slot order) and ``params``
    that factor's slices of ``params``; it is vectorised with ``torch.func.vmap``
    and differentiated with ``torch.func.jacfwd``. At a linearisation point x0:
    ``J = dh/dx(x0)`` and ``c = z - h(x0) + J x0``.

    The engine relinearises a factor when its variables moved more than
    ``relinearise_threshold`` (max-norm) since its last linearisation, and every
    factor every ``relinearise_every`` iterations when that is set.

    Args:
        variables: K slots of F variables each.
        h: measurement function of one factor.
        z: (F, m) or (B, F, m) measurements.
        precision: L, see :class:`FactorFamily`.
        params: tensors (F, ...) or (B, F, ...) passed per factor to ``h``. A leading dim
            equal to F always means unbatched: when B == F, a (B, F, ...) tensor is read
            as F factors whose parameter has shape (F, ...).
        robust, k: optional robust kernel and threshold.
    """

    nonlinear = True

    def __init__(
        self,
        variables: Sequence[VariableRef] | VariableRef,
        h: Callable[..., Tensor],
        z: Tensor,
        precision: Tensor | float = 1.0,
        params: Sequence[Tensor] = (),
        robust: RobustKernel | str | None = None,
        k: Threshold = 1.0,
        relinearise_threshold: float = 1e-3,
        relinearise_every: int | None = None,
    ):
        z = torch.as_tensor(z)
        super().__init__(variables, precision, z.shape[-1], robust, k, dtype=z.dtype)
        self.h = h
        self.z = self._batched(z, "z", (self.measurement_dim,))
        self.params = [self._param(p, f"params[{i}]") for i, p in enumerate(params)]
        if relinearise_threshold < 0 or (relinearise_every is not None and relinearise_every < 1):
            raise ValueError("relinearise_threshold must be >= 0 and relinearise_every >= 1")
        self.relinearise_threshold = relinearise_threshold
        self.relinearise_every = relinearise_every

    def _param(self, p: Tensor, name: str) -> Tensor:
        """(F, ...) -> (1, F, ...); (B, F, ...) kept (a leading dim equal to F means unbatched)."""
        p = torch.as_tensor(p)
        if p.dim() >= 1 and p.shape[0] == self.num_factors:
            return self._batched(p, name, tuple(p.shape[1:]))  # unbatched: must not set batched_input
        if p.dim() < 2:
            raise ValueError(f"{name} must have shape (F, ...) or (B, F, ...) with F={self.num_factors}")
        return self._batched(p, name, tuple(p.shape[2:]))

    def evaluate(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """h(x) (B, F, m) and dh/dx (B, F, m, n) at x (B, F, n)."""
        batch, f, n = x.shape
        params = [p.expand(batch, *p.shape[1:]).reshape(batch * f, *p.shape[2:]) for p in self.params]

        def value_and_jac(xi: Tensor, *pi: Tensor) -> tuple[Tensor, Tensor]:
            def h_aux(v: Tensor) -> tuple[Tensor, Tensor]:
                y = self.h(v, *pi)
                return y, y

            return torch.func.jacfwd(h_aux, has_aux=True)(xi)

        jac, value = torch.func.vmap(value_and_jac)(x.reshape(batch * f, n), *params)
        m = self.measurement_dim
        if value.shape[-1:] != (m,):
            raise ValueError(f"h must return a ({m},) vector per factor, got {tuple(value.shape[1:])}")
        return value.reshape(batch, f, m), jac.reshape(batch, f, m, n)

    def linearise(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        value, jac = self.evaluate(x0)
        c = self.z - value + (jac * x0.unsqueeze(-2)).sum(-1)
        return jac, c

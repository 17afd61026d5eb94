"""Variables and the base class of factor families.

A *family* is a batch of F factors that all connect the same number K of
variables, slot k always taking a variable of the same group (so of the same
dimension d_k). One message computation then covers the whole family.
Each family exposes a linear model at a linearisation point x0 (B, F, n),
n = sum_k d_k:

    residual(x) ~= c - J x,   energy = 1/2 w(r) (J x - c)^T L (J x - c)

with J (B, F, m, n), c (B, F, m), L (B, F, m, m) and robust weight w(r) of the
Mahalanobis residual r. Leading batch dims may be 1 (shared by the batch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor

from ..gaussian import check_precision
from ..robust import RobustKernel, Threshold, as_kernel

IndexLike = Union[int, slice, Sequence[int], Tensor]


class VariableGroup:
    """``num`` variables of dimension ``dim``; made by :meth:`FactorGraph.add_variables`.

    Index it to refer to variables in a factor family: ``poses[3]``, ``poses[:-1]``,
    ``poses[torch.tensor([0, 5])]``, ``poses[[0, 5]]`` or a boolean mask ``poses[keep]`` of
    shape (num,) give a :class:`VariableRef`; float indices raise ValueError.
    """

    def __init__(self, num: int, dim: int, init: Tensor | None, gid: int):
        if num < 1 or dim < 1:
            raise ValueError(f"a variable group needs num >= 1 and dim >= 1, got num={num}, dim={dim}")
        if init is not None:
            init = torch.as_tensor(init)
            if init.shape[-2:] != (num, dim) or init.dim() not in (2, 3):
                raise ValueError(f"init must have shape ({num}, {dim}) or (B, {num}, {dim}), got {tuple(init.shape)}")
            if not torch.isfinite(init).all():
                raise ValueError("init contains NaN or inf")
        self.num, self.dim, self.init, self.gid = num, dim, init, gid

    def __getitem__(self, index: IndexLike) -> "VariableRef":
        if isinstance(index, (str, bytes)):
            raise ValueError(f"bad variable index {index!r} for group {self.gid}: use ints, slices or tensors")
        if isinstance(index, (list, tuple)):
            index = torch.as_tensor(index) if len(index) else torch.zeros(0, dtype=torch.long)
        if isinstance(index, Tensor):
            idx = self._tensor_index(index)
        else:
            try:
                idx = torch.arange(self.num)[index]
            except IndexError:
                raise ValueError(f"variable index {index!r} out of range [0, {self.num}) in group {self.gid}") from None
            except TypeError as err:
                raise ValueError(f"bad variable index {index!r} for group {self.gid}: {err}") from None
        idx = idx.reshape(-1)
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.num):
            raise ValueError(f"variable index out of range [0, {self.num}) in group {self.gid}")
        return VariableRef(self, idx)

    def _tensor_index(self, index: Tensor) -> Tensor:
        """Integer indices (any shape, flattened) or a boolean mask of length ``num`` -> (F,) long."""
        index = index.detach().cpu()
        if index.dtype == torch.bool:
            if index.dim() != 1 or index.numel() != self.num:
                raise ValueError(f"a boolean variable mask must have shape ({self.num},) for group {self.gid}, "
                                 f"got {tuple(index.shape)}")
            return index.nonzero().reshape(-1)
        if index.is_floating_point() or index.is_complex():
            raise ValueError(f"variable indices must be integers or a boolean mask, got dtype {index.dtype}")
        return index.long()

    def all(self) -> "VariableRef":
        """Every variable of the group, in order."""
        return self[:]

    def __repr__(self) -> str:
        return f"VariableGroup(num={self.num}, dim={self.dim})"


@dataclass
class VariableRef:
    """Variables ``index`` (F,) of ``group``: one slot of a factor family."""

    group: VariableGroup
    index: Tensor


class FactorFamily(ABC):
    """Base class: F factors over K variable slots with an optional robust kernel.

    Subclasses implement :meth:`linearise`. ``precision`` L of each m-dim
    measurement may be: a float (isotropic, shared); (F,) or (B, F) isotropic per
    factor; (m, m) shared matrix; (F, m, m) or (B, F, m, m). Stored as (B|1, F, m, m).
    ``robust`` names a kernel ("huber", "tukey", "cauchy") with threshold ``k``
    (float or tensor broadcastable to (B, F)), or is a :class:`RobustKernel`.
    """

    nonlinear = False
    #: True once any parameter was given with a leading batch dim (results keep it).
    batched_input = False

    def __init__(
        self,
        variables: Sequence[VariableRef] | VariableRef,
        precision: Tensor | float,
        measurement_dim: int,
        robust: RobustKernel | str | None = None,
        k: Threshold = 1.0,
        dtype: torch.dtype | None = None,
    ):
        slots = (variables,) if isinstance(variables, VariableRef) else tuple(variables)
        if not slots or not all(isinstance(s, VariableRef) for s in slots):
            raise ValueError("variables must be a VariableRef or a sequence of them (index a VariableGroup)")
        sizes = {s.index.numel() for s in slots}
        if len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"every slot must index the same non-zero number of variables, got {sorted(sizes)}")
        self.slots = slots
        self.num_factors = sizes.pop()
        self.dims = [s.group.dim for s in slots]
        self.dim = sum(self.dims)
        self.measurement_dim = measurement_dim
        self.dtype = dtype if dtype is not None and dtype.is_floating_point else torch.get_default_dtype()
        self.precision = self._precision(precision, measurement_dim)
        try:
            self.robust = as_kernel(robust, k)
        except ValueError as err:
            raise ValueError(f"{type(self).__name__}: {err}") from None
        k_t = getattr(self.robust, "k", None)
        if isinstance(k_t, Tensor) and k_t.dim() >= 2 and k_t.shape[0] > 1:  # (B, F) thresholds: B graphs
            self.batched_input = True

    # -- helpers for subclasses -------------------------------------------------
    def _batched(self, t: Tensor | float, name: str, shape: tuple[int, ...]) -> Tensor:
        """Return ``t`` as (B|1, F, *shape); accepts (F, *shape) or (B, F, *shape)."""
        t = torch.as_tensor(t, dtype=self.dtype) if not isinstance(t, Tensor) else t
        full = (self.num_factors, *shape)
        if tuple(t.shape) == full:
            t = t.unsqueeze(0)
        else:
            self.batched_input = True
        if t.dim() != len(full) + 1 or tuple(t.shape[1:]) != full:
            raise ValueError(f"{name} must have shape {full} or (B, *{full}), got {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name} contains NaN or inf")
        return t

    def _precision(self, precision: Tensor | float, m: int) -> Tensor:
        """Precision as (B|1, F, m, m) from a float, (F,)/(B, F) scalars or full matrices."""
        p = torch.as_tensor(precision, dtype=self.dtype) if not isinstance(precision, Tensor) else precision
        eye = torch.eye(m, dtype=p.dtype, device=p.device)
        if p.dim() == 0:
            p = p.expand(self.num_factors)
        if p.dim() == 2 and tuple(p.shape) == (m, m):  # one matrix shared by all factors
            p = p.expand(self.num_factors, m, m)
        if p.dim() in (1, 2):  # isotropic, per factor: (F,) or (B, F)
            if not torch.isfinite(p).all() or (p <= 0).any():
                raise ValueError("precision must be positive and finite")
            p = p[..., None, None] * eye
        p = self._batched(p, "precision", (m, m))
        check_precision(p, name=f"{type(self).__name__} precision")
        return p

    # -- the interface the engine uses ----------------------------------------------
    @abstractmethod
    def linearise(self, x0: Tensor) -> tuple[Tensor, Tensor]:
        """Jacobian J (B|1, F, m, n) and offset c (B|1, F, m) of the model at x0 (B, F, n)."""

    def num_batch(self) -> int:
        """Batch size of the family's parameters (1 when shared)."""
        tensors = [v for v in vars(self).values() if isinstance(v, Tensor)] + list(getattr(self, "params", ()))
        if self.robust is not None and isinstance(self.robust.k, Tensor):
            tensors.append(self.robust.k)
        sizes = {int(v.shape[0]) for v in tensors if v.dim() >= 2} - {1}
        if len(sizes) > 1:
            raise ValueError(f"{type(self).__name__}: parameters have different batch sizes {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    def to(self, dtype: torch.dtype, device: torch.device) -> None:
        """Move the family's tensors (called by the engine)."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.is_floating_point():
                setattr(self, name, value.to(dtype=dtype, device=device))

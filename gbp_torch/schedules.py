"""Message-passing schedules.

An iteration is a sequence of *phases*; in each phase the engine computes new
messages for a subset of every family's factors (``phases``), then keeps only
the updates the schedule ``accept``s, then refreshes the beliefs.

- ``Synchronous``: every factor, every iteration (flooding).
- ``RandomSchedule``: every factor computes, each update is kept with
  probability ``p`` (independently per factor and graph).
- ``Sweep``: factors (in the order given) are cut into ``chunks`` contiguous
  blocks processed one after another, forwards then backwards on alternate
  iterations, beliefs refreshed between blocks (Gauss-Seidel-like).
- ``ResidualSchedule``: every factor computes its candidate messages; only
  the ``fraction`` of factors (over all families) whose messages would change
  most are updated (residual belief propagation, batched).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch
from torch import Tensor


class Schedule:
    """Base: one phase over all factors, all updates accepted."""

    #: whether :meth:`accept` reads the per-factor message changes (else it may get uninitialised (B, S) tensors)
    needs_changes = False

    def phases(self, sizes: list[int], iteration: int, device: torch.device) -> list[list[Tensor | None]]:
        """Per phase, per family: indices (S,) of the factors to compute, or None for all."""
        return [[None] * len(sizes)]

    def accept(self, changes: list[Tensor], iteration: int) -> list[Tensor] | None:
        """Per family bool masks (B, S) of updates to keep, from message changes (B, S); None keeps all."""
        return None


class Synchronous(Schedule):
    """Flooding: all messages from the previous beliefs."""


@dataclass
class RandomSchedule(Schedule):
    p: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.p <= 1.0:
            raise ValueError(f"RandomSchedule.p must be in (0, 1], got {self.p}")
        self._generator: torch.Generator | None = None

    def accept(self, changes: list[Tensor], iteration: int) -> list[Tensor]:
        if self._generator is None or iteration == 0:
            self._generator = torch.Generator().manual_seed(self.seed)
        return [(torch.rand(c.shape, generator=self._generator) < self.p).to(c.device) for c in changes]


@dataclass
class Sweep(Schedule):
    chunks: int = 8

    def __post_init__(self) -> None:
        if self.chunks < 1:
            raise ValueError(f"Sweep.chunks must be >= 1, got {self.chunks}")

    def phases(self, sizes: list[int], iteration: int, device: torch.device) -> list[list[Tensor | None]]:
        order = range(self.chunks) if iteration % 2 == 0 else range(self.chunks - 1, -1, -1)
        out = []
        for c in order:
            out.append([torch.arange(c * f // self.chunks, (c + 1) * f // self.chunks, device=device) for f in sizes])
        return out


@dataclass
class ResidualSchedule(Schedule):
    fraction: float = 0.25
    needs_changes = True

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"ResidualSchedule.fraction must be in (0, 1], got {self.fraction}")

    def accept(self, changes: list[Tensor], iteration: int) -> list[Tensor]:
        flat = torch.cat(changes, -1)  # (B, total)
        k = max(1, math.ceil(self.fraction * flat.shape[-1]))
        threshold = flat.topk(k, dim=-1).values[..., -1:]
        return [c >= threshold for c in changes]


_NAMES = {"sync": Synchronous, "synchronous": Synchronous, "random": RandomSchedule,
          "sweep": Sweep, "residual": ResidualSchedule}

ScheduleLike = Union[str, Schedule]


def as_schedule(schedule: ScheduleLike) -> Schedule:
    """A :class:`Schedule` from an instance or a name: sync, random, sweep, residual."""
    if isinstance(schedule, Schedule):
        return schedule
    if schedule not in _NAMES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(_NAMES)} or pass a Schedule")
    return _NAMES[schedule]()

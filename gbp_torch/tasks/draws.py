"""Random draws shared by the synthetic-data generators (stereo and flow pairs)."""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(generator: torch.Generator, low, high, shape=(1,)) -> Tensor:
    """float64 values uniform in [low, high) of ``shape``, drawn from ``generator`` (low, high: numbers or
    tensors that broadcast with ``shape``)."""
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=torch.float64)

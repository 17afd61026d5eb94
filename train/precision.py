"""Training precision that the machine runs at full speed.

``bf16-mixed`` is fast on GPUs and on CPUs with native bfloat16 (AVX512-BF16 or AMX). On
other CPUs (AVX2 only) oneDNN emulates it, and a training step of the shipped recipes is
10-13x slower than in float32 (benchmarks/bench_training.py, 2-core AMD EPYC), so
:func:`resolve_precision` falls back to ``32-true`` there, with a warning.
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


def cpu_has_native_bf16() -> bool:
    """True if oneDNN runs bfloat16 natively on this CPU (AVX512-BF16 / AMX); True if unknown."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def _runs_on_cpu(accelerator: str) -> bool:
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def resolve_precision(precision: str | int, accelerator: str = "auto") -> str | int:
    """``precision`` unchanged, except bf16 on a CPU without native bfloat16 -> ``"32-true"`` (warns)."""
    if str(precision).startswith("bf16") and _runs_on_cpu(str(accelerator)) and not cpu_has_native_bf16():
        log.warning("precision=%s requested, but this CPU has no native bfloat16 (oneDNN would emulate it, "
                    "10x slower or worse): training in float32 (32-true) instead", precision)
        return "32-true"
    return precision

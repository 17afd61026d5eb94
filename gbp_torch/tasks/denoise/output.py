"""The result of a denoiser: a mean image and an optional per-pixel variance."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class DenoiseOutput:
    """Denoised images.

    mean: (B, 1, H, W) estimate of the clean image in [0, 1] (not clipped).
    var: (B, 1, H, W) predicted per-pixel variance of ``mean`` (same scale), or None.
    """

    mean: Tensor
    var: Tensor | None = None


def as_denoise_output(out: Tensor | DenoiseOutput | object) -> DenoiseOutput:
    """Wrap a denoiser's return value: a tensor (B, 1, H, W), a :class:`DenoiseOutput`,
    or any object with ``.mean`` and optional ``.var`` (e.g. a GBP result)."""
    if isinstance(out, DenoiseOutput):
        return out
    if isinstance(out, Tensor):
        return DenoiseOutput(out)
    if hasattr(out, "mean") and isinstance(out.mean, Tensor):
        return DenoiseOutput(out.mean, getattr(out, "var", None))
    raise TypeError(f"a denoiser must return a tensor or an object with .mean/.var, got {type(out).__name__}")

"""Denoisers that the evaluation table compares a model with: the hand-set GBP denoiser, the shipped
models (each only on the noise it was trained for) and any importable callable."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from gbp_torch.tasks.denoise.classical import ClassicalDenoiser
from gbp_torch.tasks.denoise.output import DenoiseOutput, as_denoise_output

from .conditions import Condition

#: A denoiser: (noisy (B, 1, H, W), sigma (B,)) -> tensor (B, 1, H, W) or object with .mean/.var.
Denoiser = Callable[[Tensor, Tensor], object]


class ClassicalBaseline:
    """:class:`ClassicalDenoiser` (GBP, hand-set robust smoothness) as a Denoiser (uses sigma[0])."""

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.denoiser = ClassicalDenoiser(**kwargs)

    def for_condition(self, cond: Condition) -> ClassicalBaseline:
        """The baseline with the parameters tuned for ``cond``'s noise kind (and rate)."""
        if cond.kind == "gaussian":
            return self
        return ClassicalBaseline(**{**self.kwargs, "noise": "saltpepper", "rate": cond.level})

    def __call__(self, noisy: Tensor, sigma: Tensor) -> DenoiseOutput:
        mean, var = self.denoiser(noisy[:, 0], float(sigma.flatten()[0]))
        return DenoiseOutput(mean[:, None], var[:, None])


class PretrainedBaseline:
    """A shipped model (:func:`gbp_torch.pretrained.load`) as a Denoiser, only for the noise it was trained
    on (as its manifest entry records): salt-and-pepper, Gaussian at one sigma, or Gaussian of any sigma.
    ``blind``: give it no sigma; ``self_ensemble``: average over the 8 flips / quarter turns. It runs as
    ``gbp-denoise`` runs it, through :class:`~gbp_torch.tasks.denoise.colour.ColourDenoiser` (which unclips a
    sigma-conditioned model's output on clipped input, e.g. with ``--uint8``)."""

    def __init__(self, name: str, device: str | torch.device = "cpu", blind: bool = False,
                 self_ensemble: bool = False):
        from gbp_torch.pretrained import load, manifest
        from gbp_torch.tasks.denoise.colour import ColourDenoiser
        from gbp_torch.tasks.denoise.ensemble import SelfEnsemble

        model, self.blind = load(name, device), blind
        self.model = ColourDenoiser(SelfEnsemble(model) if self_ensemble else model)
        self.noise = (manifest()[name].get("training", {}).get("data") or {}).get("noise") or {}

    @property
    def any_sigma(self) -> bool:
        """Trained on a range of Gaussian noise levels (so it can also run blind)."""
        return self.noise.get("kind") == "blind"

    def for_condition(self, cond: Condition) -> PretrainedBaseline | None:
        kind = self.noise.get("kind", "gaussian")
        if cond.kind == "saltpepper":
            return self if kind == "saltpepper" else None
        if kind == "gaussian":
            return self if cond.level == float(self.noise.get("sigma", cond.level)) else None
        return self if kind == "blind" else None

    def __call__(self, noisy: Tensor, sigma: Tensor) -> DenoiseOutput:
        return as_denoise_output(self.model(noisy, None if self.blind else sigma))


class BM3DBaseline:
    """BM3D (Dabov et al. 2007; the ``bm3d`` package, an optional benchmark dependency) at the given sigma,
    on Gaussian noise only. Runs on the CPU in float64 numpy, one image at a time."""

    def __init__(self):
        try:
            import bm3d
        except ImportError as e:
            raise ImportError("the BM3D column needs the bm3d package: pip install -e '.[bench]'") from e
        self.bm3d = bm3d

    def for_condition(self, cond: Condition) -> BM3DBaseline | None:
        return self if cond.kind == "gaussian" else None

    def __call__(self, noisy: Tensor, sigma: Tensor) -> Tensor:
        out = [torch.from_numpy(self.bm3d.bm3d(im[0].double().cpu().numpy(), sigma_psd=float(s)).astype("float64"))
               for im, s in zip(noisy, sigma.flatten())]
        return torch.stack(out)[:, None].to(noisy)


def import_denoiser(target: str) -> Denoiser:
    """``pkg.module:attr`` -> the attribute (a class is instantiated without arguments)."""
    import importlib
    import inspect

    module, _, attr = target.partition(":")
    if not module or not attr:
        raise ValueError(f"--baseline wants NAME=package.module:attribute, got {target!r}")
    obj = getattr(importlib.import_module(module), attr)
    return obj() if inspect.isclass(obj) else obj

"""Calibrating a denoiser's predicted variances: one factor, or a power law in sigma.

A learned GBP denoiser's variances are the exact marginals of the factor graph
it builds, not of the true posterior: after training for the mean they are
uniformly too wide or too narrow (the prototype measured 98 % coverage instead of
95 %). :func:`fit_variance_scale` finds the factor ``s`` for which a fraction
``coverage`` of the pixels of some calibration images (Train400, never the test
sets) lie within ``z sqrt(s var)`` of the truth; for a model trained on many noise
levels the factor is a power law in sigma. ``train.export --calibrate N`` stores it
in the shipped model (``GBPDenoiser(var_scale=..., var_slope=...)``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from .datasets import NoiseSpec, load_dataset, noisy_image


def calibration_scale(err: Tensor, var: Tensor, coverage: float = 0.95, z: float = 1.96) -> float:
    """err, var: any equal shapes -> the ``s`` with ``mean(|err| < z sqrt(s var)) = coverage``."""
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    ratio = (err.square() / var.clamp_min(torch.finfo(var.dtype).tiny)).flatten()
    k = min(ratio.numel(), max(1, int(round(coverage * ratio.numel()))))
    return float(ratio.kthvalue(k).values) / z**2


@torch.no_grad()
def fit_variance_scale(model: nn.Module, images: Sequence[Tensor], noise: NoiseSpec, coverage: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Calibration ``(var_scale, var_slope)`` of ``model`` ((noisy, sigma) -> .mean, .var; built with
    ``var_scale=1, var_slope=0``) on ``images`` (uint8 (H, W) each) with ``noise`` added
    (:func:`~train.denoise.datasets.noisy_image`).

    The variances are multiplied by ``var_scale * (sigma / REFERENCE_SIGMA) ** var_slope``. With one
    noise level the slope is 0; with many (blind training noise) it is the least-squares slope of the
    log per-image factors against log sigma, and ``var_scale`` then makes the pooled coverage exact."""
    from gbp_torch.tasks.denoise.gbp import REFERENCE_SIGMA

    errs, variances, sigmas = [], [], []
    device = next(model.parameters()).device
    for i, img in enumerate(images):
        clean, noisy, sigma = (t.to(device) for t in noisy_image(img, noise, seed, i))
        out = model(noisy[None], sigma[None])
        if out.var is None:
            raise ValueError("this model predicts no variance; nothing to calibrate")
        errs.append((out.mean[0] - clean).flatten())
        variances.append(out.var.flatten())
        sigmas.append(float(sigma))
    slope = 0.0
    usable = [i for i, s in enumerate(sigmas) if s >= 2.0 / 255.0]
    if len({round(sigmas[i], 6) for i in usable}) >= 3:
        x = torch.tensor([math.log(sigmas[i] / REFERENCE_SIGMA) for i in usable], dtype=torch.float64)
        y = torch.tensor([math.log(calibration_scale(errs[i], variances[i], coverage)) for i in usable],
                         dtype=torch.float64)
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).square().sum())
    factors = [(max(s, 1e-3) / REFERENCE_SIGMA) ** slope for s in sigmas]
    scaled = torch.cat([v * f for v, f in zip(variances, factors)])
    return calibration_scale(torch.cat(errs), scaled, coverage), slope


def calibrate_network(target: str, kwargs: dict, state: dict, data: Mapping, images: int) -> dict:
    """The calibration record of network ``target(**kwargs)`` with weights ``state``, fitted on the first
    ``images`` Train400 images with the noise of the training data config ``data`` (``train.export``)."""
    module, _, cls = target.rpartition(".")
    model = getattr(importlib.import_module(module), cls)(**kwargs)
    model.load_state_dict(state)
    noise = NoiseSpec(**dict(data.get("noise") or {}))
    train_images = [im for _, im in load_dataset("train400", data.get("root"), images)]
    scale, slope = fit_variance_scale(model.eval(), train_images, noise)
    return {"var_scale": scale, "var_slope": slope, "data": f"first {images} Train400 images",
            "noise": dict(noise.__dict__), "target_coverage": 0.95}

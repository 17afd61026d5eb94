"""Input checks and features shared by the denoisers."""

from __future__ import annotations

import torch
from torch import Tensor

from ...vision import as_unit_float


def checked_input(noisy: Tensor, sigma) -> tuple[Tensor, Tensor | None]:
    """The denoisers' inputs, checked: ``noisy`` (B, 1, H, W) as finite floating point in [0, 1] (uint8 / uint16
    scaled), ``sigma`` None or (B,) in [0, 1] on the same scale, from a number, one value or B values."""
    noisy = as_unit_float(noisy, "noisy")
    if noisy.dim() != 4 or noisy.shape[1] != 1:
        colour = noisy.dim() in (3, 4) and noisy.shape[-3] == 3
        raise ValueError(f"noisy must be (B, 1, H, W), got {tuple(noisy.shape)}"
                         + ("; for colour images wrap the model: "
                            "gbp_torch.tasks.denoise.colour.ColourDenoiser(model)(noisy, sigma)" if colour else ""))
    if noisy.numel() == 0:
        raise ValueError(f"noisy holds no pixels (B, 1, H, W) = {tuple(noisy.shape)}")
    if sigma is None:
        return noisy, None
    s = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).flatten()
    if s.numel() not in (1, noisy.shape[0]):
        raise ValueError(f"sigma must be a number or B = {noisy.shape[0]} values, got shape "
                         f"{tuple(torch.as_tensor(sigma).shape)}")
    if not bool(((s >= 0) & torch.isfinite(s)).all()):
        raise ValueError(f"sigma must be finite and >= 0 (the noise std on the 0-1 scale), got {s.tolist()}")
    if bool((s > 1).any()):  # a noise std above the whole range: the 0-255 scale by mistake
        raise ValueError(f"sigma must be on the 0-1 scale of the image (at most 1), got {s.tolist()}; a noise std "
                         "on the 0-255 scale is divided by 255")
    return noisy, s.expand(noisy.shape[0]).clone()


def denoiser_input(noisy: Tensor, sigma: Tensor | None, sigma_input: bool, owner: str) -> Tensor:
    """``noisy`` (B, 1, H, W) (after :func:`checked_input`), with a constant sigma map appended as a second
    channel (B, 2, H, W) when ``sigma_input`` (then ``sigma`` (B,) is required)."""
    if not sigma_input:
        return noisy
    if sigma is None:
        raise ValueError(f"this {owner} was built with sigma_input=True; pass sigma (B,)")
    return torch.cat((noisy, sigma.to(noisy).view(-1, 1, 1, 1).expand_as(noisy)), 1)

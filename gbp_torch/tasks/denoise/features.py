"""Input checks and features shared by the denoisers."""

from __future__ import annotations

import torch
from torch import Tensor


def denoiser_input(noisy: Tensor, sigma: Tensor | None, sigma_input: bool, owner: str) -> Tensor:
    """Check ``noisy`` (B, 1, H, W); return it, with a constant sigma map appended as a
    second channel (B, 2, H, W) when ``sigma_input`` (then ``sigma`` (B,) is required)."""
    if noisy.dim() != 4 or noisy.shape[1] != 1:
        raise ValueError(f"noisy must be (B, 1, H, W), got {tuple(noisy.shape)}")
    if not sigma_input:
        return noisy
    if sigma is None:
        raise ValueError(f"this {owner} was built with sigma_input=True; pass sigma (B,)")
    return torch.cat((noisy, sigma.to(noisy).view(-1, 1, 1, 1).expand_as(noisy)), 1)

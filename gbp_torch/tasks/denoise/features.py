"""Input checks and features shared by the denoisers."""

from __future__ import annotations

import torch
from torch import Tensor


def denoiser_input(noisy: Tensor, sigma: Tensor | None, sigma_input: bool, owner: str) -> Tensor:
    """Check ``noisy`` (B, 1, H, W) (finite) and ``sigma`` (finite, >= 0); return noisy, with a constant sigma
    map appended as a second channel (B, 2, H, W) when ``sigma_input`` (then ``sigma`` (B,) is required)."""
    if noisy.dim() != 4 or noisy.shape[1] != 1:
        raise ValueError(f"noisy must be (B, 1, H, W), got {tuple(noisy.shape)}")
    if not bool(torch.isfinite(noisy).all()):
        raise ValueError("noisy contains NaN or infinite values")
    if sigma is not None and not bool(((torch.as_tensor(sigma) >= 0) & torch.isfinite(torch.as_tensor(sigma))).all()):
        raise ValueError(f"sigma must be finite and >= 0 (the noise std on the 0-1 scale), got {sigma!r}")
    if not sigma_input:
        return noisy
    if sigma is None:
        raise ValueError(f"this {owner} was built with sigma_input=True; pass sigma (B,)")
    return torch.cat((noisy, sigma.to(noisy).view(-1, 1, 1, 1).expand_as(noisy)), 1)

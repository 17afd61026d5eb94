"""Median filtering of flow fields between warps (the cheap form of the non-local term of Sun et al.)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def median_filter(flow: Tensor, size: int = 5, rows_per_chunk: int = 256) -> Tensor:
    """Per-channel ``size x size`` median with replicated borders, (B, C, H, W) -> (B, C, H, W).

    Works on bands of ``rows_per_chunk`` rows so the unfolded windows (size^2 values per pixel)
    stay bounded in memory on large frames.
    """
    if flow.dim() != 4:
        raise ValueError(f"flow must be a (B, C, H, W) tensor, got {tuple(flow.shape)}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 1, got {size}")
    if size == 1:
        return flow
    r = size // 2
    padded = F.pad(flow, (r, r, r, r), mode="replicate")
    height = flow.shape[-2]
    bands = []
    for top in range(0, height, rows_per_chunk):
        rows = min(rows_per_chunk, height - top)
        band = padded[..., top:top + rows + 2 * r, :]
        windows = band.unfold(-2, size, 1).unfold(-2, size, 1)  # (B, C, rows, W, size, size)
        bands.append(windows.reshape(*windows.shape[:4], -1).median(-1).values)
    return bands[0] if len(bands) == 1 else torch.cat(bands, dim=-2)


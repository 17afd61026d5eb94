"""Tiled evaluation of translation-equivariant image maps (CNNs) in bounded memory.

A CNN's output at a pixel depends only on the input within its receptive field. Evaluated
on a tile grown by a ``margin`` of at least that radius and cropped back to the tile, it
equals the whole-image output there: nothing to blend, the tiled result is the untiled
one up to floating-point rounding. Tiles at the image border keep the image border, so
the padding the network sees is the same too. ``align`` keeps every tile's origin a
multiple of a network's downsampling factor, so strided / pixel-unshuffled branches see
the same pixel cells as on the whole image.

Peak memory is that of one grown tile plus the output, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from .progress import progress_bar


@dataclass(frozen=True)
class Tiling:
    """Tile side (pixels, a multiple of ``align``) and margin on each side (>= the receptive radius)."""

    tile: int = 1024
    margin: int = 32
    align: int = 2

    def __post_init__(self):
        if self.align < 1 or self.tile < self.align or self.tile % self.align or self.margin < 0:
            raise ValueError(f"need align >= 1, tile a positive multiple of align and margin >= 0; got {self}")


def tile_spans(size: int, tile: int, margin: int, align: int) -> list[tuple[int, int, int, int]]:
    """Along one axis: ``(start, stop, core_start, core_stop)`` per tile; the input span ``[start, stop)``
    holds the core ``[core_start, core_stop)`` with at least ``margin`` pixels around it (less at the
    border), ``start`` a multiple of ``align``. The cores cover ``[0, size)`` without overlap."""
    spans = []
    for c0 in range(0, size, tile):
        c1 = min(size, c0 + tile)
        start = max(0, c0 - margin) // align * align
        spans.append((start, min(size, c1 + margin), c0, c1))
    return spans


def map_tiles(fn: Callable[[Tensor], Tensor], x: Tensor, tiling: Tiling, progress: bool = False,
              desc: str = "tiles") -> Tensor:
    """``fn(x)`` computed tile by tile: x (B, C, H, W) -> (B, C', H, W).

    ``fn`` must map (B, C, h, w) to (B, C', h, w) and look no further than ``tiling.margin`` pixels.
    ``progress``: a tqdm bar over the tiles (when tqdm is installed), labelled ``desc``.
    """
    h, w = x.shape[-2:]
    rows = tile_spans(h, tiling.tile, tiling.margin, tiling.align)
    cols = tile_spans(w, tiling.tile, tiling.margin, tiling.align)
    if len(rows) == 1 and len(cols) == 1:
        return fn(x)
    jobs = [(r, c) for r in rows for c in cols]
    bar = progress_bar(len(jobs), desc, "tile", progress)
    out = None
    for (y0, y1, cy0, cy1), (x0, x1, cx0, cx1) in jobs:
        part = fn(x[..., y0:y1, x0:x1])
        if part.shape[-2:] != (y1 - y0, x1 - x0):
            raise ValueError(f"fn changed the tile size from {(y1 - y0, x1 - x0)} to {tuple(part.shape[-2:])}")
        if out is None:
            out = torch.empty((*part.shape[:-2], h, w), dtype=part.dtype, device=part.device)
        out[..., cy0:cy1, cx0:cx1] = part[..., cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        bar.update()
    bar.close()
    return out

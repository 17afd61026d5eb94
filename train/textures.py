"""Train400 textures for the synthetic stereo and flow pairs: loading and seeded random crops."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gbp_torch.io import read_gray
from gbp_torch.paths import dataset_dir


def load_textures(root=None, limit: int | None = None) -> list[torch.Tensor]:
    """Train400 images (H, W) float32 in [0, 1], sorted by name (the first ``limit``)."""
    files = sorted(dataset_dir("denoise/train400", root).glob("*.png"))[:limit]
    if not files:
        raise FileNotFoundError("no Train400 images found (denoise/train400 under the data root)")
    return [read_gray(f).float() for f in files]


def random_crop(textures: list[torch.Tensor], size: int, generator: torch.Generator,
                upscale: float = 1.0) -> torch.Tensor:
    """A random texture, optionally upscaled (bicubic), cropped to at most ``size`` x ``size`` at a random place."""
    tex = textures[int(torch.randint(len(textures), (1,), generator=generator))]
    if upscale != 1.0:
        tex = F.interpolate(tex[None, None], scale_factor=upscale, mode="bicubic", align_corners=False)[0, 0]
        tex = tex.clamp(0, 1)
    h, w = tex.shape
    c = min(size, h, w)
    y0 = int(torch.randint(h - c + 1, (1,), generator=generator))
    x0 = int(torch.randint(w - c + 1, (1,), generator=generator))
    return tex[y0:y0 + c, x0:x0 + c]

"""Image reading and writing (torchvision.io), imported lazily by callers."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor


def read_gray(path: str | os.PathLike) -> Tensor:
    """An image file as a (H, W) float tensor in [0, 1] (colour is converted to gray)."""
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    img = decode_image(str(path), mode=ImageReadMode.GRAY)
    return img[0].float() / 255.0


def write_gray(path: str | os.PathLike, image: Tensor) -> None:
    """Write a (H, W) image in [0, 1] (clipped) as an 8-bit PNG; creates parent folders."""
    from torchvision.io import write_png

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    write_png(img.unsqueeze(0), str(path))

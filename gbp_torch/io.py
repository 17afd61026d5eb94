"""Image reading and writing (torchvision.io), imported lazily by callers."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor


def _read_bytes(path: str | os.PathLike) -> Tensor:
    """The file's bytes as a uint8 tensor; a clear error if it is missing."""
    from torchvision.io import read_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    return read_file(str(path))


def read_gray(path: str | os.PathLike) -> Tensor:
    """An image file as a (H, W) float tensor in [0, 1] (colour is converted to gray)."""
    from torchvision.io import ImageReadMode, decode_image

    return decode_image(_read_bytes(path), mode=ImageReadMode.GRAY)[0].float() / 255.0


def read_image(path: str | os.PathLike) -> Tensor:
    """An image file as a (C, H, W) float tensor in [0, 1]: C = 3 for a colour image, C = 1 for a
    gray one (including colour files whose three channels are equal). Alpha is dropped and
    palettes are expanded."""
    from torchvision.io import ImageReadMode, decode_image

    rgb = decode_image(_read_bytes(path), mode=ImageReadMode.RGB)
    if torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2]):
        rgb = rgb[:1]
    return rgb.float() / 255.0


def write_image(path: str | os.PathLike, image: Tensor) -> None:
    """Write an image in [0, 1] (clipped), (H, W) gray or (C, H, W) with C = 1 or 3, as an
    8-bit PNG; creates parent folders."""
    from torchvision.io import write_png

    if image.dim() == 2:
        image = image.unsqueeze(0)
    if image.dim() != 3 or image.shape[0] not in (1, 3):
        raise ValueError(f"image must be (H, W) or (C, H, W) with C = 1 or 3, got {tuple(image.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu()
    write_png(img, str(path))

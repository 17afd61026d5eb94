"""Disparity and flow maps by file extension.

Disparity, (H, W) float32 in pixels, NaN = unknown:
  ``.pfm``  float32, Middlebury convention (bottom row first, little-endian); unknown written as inf.
  ``.png``  16-bit, value = round(disparity * 256), 0 = unknown (KITTI convention); range
            [1/256, 255.996] px (values outside are clipped, with a warning).
  ``.npy``  float32 (H, W), NaN kept.
Flow, (2, H, W) float32 (u right, v down) in pixels, NaN = unknown:
  ``.flo``  Middlebury; ``.npy`` float32 (H, W, 2); ``.png``: written as the colour coding
  (for people; not readable back), read as a KITTI 16-bit flow PNG.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

DISPARITY_EXTENSIONS = (".pfm", ".png", ".npy")
FLOW_EXTENSIONS = (".flo", ".npy", ".png")
PNG_DISPARITY_MAX = 65535 / 256


def _ext(path: str | os.PathLike, allowed: tuple[str, ...], what: str) -> str:
    ext = Path(path).suffix.lower()
    if ext not in allowed:
        raise ValueError(f"unsupported {what} file extension {ext or '(none)'!r} for {path}; "
                         f"use one of {', '.join(allowed)}")
    return ext


def _as_map(x: Tensor | np.ndarray, what: str) -> Tensor:
    t = torch.as_tensor(x).detach().cpu().to(torch.float32)
    while t.dim() > 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2 or t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{what} must be (H, W) (or with leading 1s), got {tuple(torch.as_tensor(x).shape)}")
    return t


def write_disparity(path: str | os.PathLike, disparity: Tensor | np.ndarray) -> None:
    """Write a (H, W) disparity (or a per-pixel std, same units) in the format of the extension."""
    from .image import write_png16
    from .pfm import write_pfm

    ext = _ext(path, DISPARITY_EXTENSIONS, "disparity")
    d = _as_map(disparity, "disparity")
    if ext == ".pfm":
        write_pfm(path, torch.where(torch.isfinite(d), d, torch.full_like(d, float("inf"))))
    elif ext == ".npy":
        np.save(path, d.numpy())  # np.save adds nothing: the name ends with .npy
    else:
        valid = torch.isfinite(d)
        v = (d * 256.0).round()
        clipped = valid & ((v < 1) | (v > 65535))
        if clipped.any():
            warnings.warn(f"{path}: {int(clipped.sum())} value(s) outside the 16-bit PNG range "
                          f"[1/256, {PNG_DISPARITY_MAX:.3f}] clipped", stacklevel=2)
        write_png16(path, torch.where(valid, v.clamp(1, 65535), torch.zeros_like(v)).to(torch.int32))


def read_disparity(path: str | os.PathLike, scale: float | None = None) -> Tensor:
    """A disparity map as (H, W) float32 px with NaN where unknown.

    ``.pfm`` (inf = unknown), ``.npy``, ``.png``: 16-bit divided by ``scale`` (default 256, KITTI),
    8-bit divided by ``scale`` which must then be given (Middlebury 2003: 16 tsukuba, 8 venus,
    4 teddy / cones); 0 = unknown in PNGs."""
    from .image import read_png_raw
    from .pfm import read_pfm

    ext = _ext(path, DISPARITY_EXTENSIONS, "disparity")
    if ext == ".pfm":
        d = read_pfm(path)
        if d.dim() != 2:
            raise ValueError(f"disparity PFM must have one channel: {path}")
    elif ext == ".npy":
        d = _as_map(_load_npy(path), "disparity")
    else:
        raw = read_png_raw(path)
        if raw.shape[0] != 1:
            raise ValueError(f"disparity PNG must be one-channel gray, got {raw.shape[0]} channels: {path}")
        if scale is None:
            if raw.dtype != torch.uint16:
                raise ValueError(f"8-bit disparity PNG {path}: give its scale (disparity = value / scale)")
            scale = 256.0
        v = raw[0].to(torch.int32).float()
        d = torch.where(v > 0, v / float(scale), torch.full_like(v, float("nan")))
    return torch.where(torch.isfinite(d), d, torch.full_like(d, float("nan")))


def _load_npy(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"not a readable .npy array: {path} ({str(e).splitlines()[0] if str(e) else ''})") from None


def write_flow(path: str | os.PathLike, flow: Tensor | np.ndarray) -> None:
    """Write a (2, H, W) flow (or per-pixel (std_u, std_v)) by extension: ``.flo``, ``.npy``
    (H, W, 2) float32, ``.png`` colour coding."""
    from .color import write_flow_color
    from .flo import _check_flow, write_flo

    ext = _ext(path, FLOW_EXTENSIONS, "flow")
    f = _check_flow(flow)
    if ext == ".flo":
        write_flo(path, f)
    elif ext == ".npy":
        np.save(path, np.ascontiguousarray(f.permute(1, 2, 0).numpy()))
    else:
        write_flow_color(path, f)


def read_flow(path: str | os.PathLike) -> Tensor:
    """A flow file as (2, H, W) float32 with NaN where unknown: ``.flo``, ``.npy`` (H, W, 2), or
    ``.png`` read as a KITTI 16-bit flow PNG."""
    from .flo import read_flo, read_kitti_flow

    ext = _ext(path, FLOW_EXTENSIONS, "flow")
    if ext == ".flo":
        return read_flo(path)
    if ext == ".png":
        return read_kitti_flow(path)
    a = _load_npy(path)
    if a.ndim != 3 or a.shape[2] != 2:
        raise ValueError(f"flow .npy must be (H, W, 2), got {a.shape}: {path}")
    f = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1).contiguous()
    return torch.where(torch.isfinite(f).all(0), f, torch.full_like(f, float("nan")))

"""Optical flow files: Middlebury ``.flo`` (read / write) and KITTI 16-bit flow PNGs (read / write).

Flow tensors are (2, H, W) float32: channel 0 = u (to the right), channel 1 = v (down), in pixels;
frame1(x) matches frame2(x + flow). Unknown flow is NaN in both channels: the readers turn the
Middlebury sentinel (|u| or |v| > 1e9) and KITTI's valid = 0 into NaN; ``flow_valid(flow)`` gives
the (H, W) mask of known pixels. Writers store NaN / inf as the sentinel 1e10 (``.flo``) or as
valid = 0 (KITTI PNG).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

FLO_MAGIC = 202021.25  # the bytes 'PIEH' read as a little-endian float32
UNKNOWN_FLOW_THRESH = 1e9
UNKNOWN_FLOW = 1e10
MAX_SIDE = 1 << 17


def flow_valid(flow: Tensor) -> Tensor:
    """(H, W) bool: pixels whose flow is known (finite in both channels) of a (2, H, W) flow."""
    return torch.isfinite(flow).all(dim=-3)


def _check_flow(flow: Tensor | np.ndarray) -> Tensor:
    f = torch.as_tensor(flow).detach().cpu().to(torch.float32)
    if f.dim() != 3 or f.shape[0] != 2 or f.shape[1] == 0 or f.shape[2] == 0:
        raise ValueError(f"flow must be (2, H, W) with H, W > 0, got {tuple(f.shape)}")
    return f


def read_flo(path: str | os.PathLike) -> Tensor:
    """A Middlebury ``.flo`` file as (2, H, W) float32; unknown pixels (|u| or |v| > 1e9) are NaN.

    Raises FileNotFoundError for a missing file and a one-line ValueError for a wrong magic
    number, absurd sizes, or truncated / over-long data."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"flow file not found: {path}")
    data = path.read_bytes()
    if len(data) < 12:
        raise ValueError(f".flo file {path} is truncated: {len(data)} bytes, shorter than its 12-byte header")
    magic = struct.unpack("<f", data[:4])[0]
    if magic != FLO_MAGIC:
        raise ValueError(f"not a .flo file (magic {data[:4]!r}, expected b'PIEH' = 202021.25): {path}")
    w, h = struct.unpack("<ii", data[4:12])
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f".flo file {path}: absurd size {w}x{h}")
    expected = 8 * w * h
    if len(data) - 12 != expected:
        what = "truncated" if len(data) - 12 < expected else "has trailing bytes"
        raise ValueError(f".flo file {path} is {what}: {len(data) - 12} data bytes, expected {expected} for {w}x{h}")
    uv = np.frombuffer(data, dtype="<f4", offset=12).reshape(h, w, 2).astype(np.float32)
    flow = torch.from_numpy(uv).permute(2, 0, 1).contiguous()
    unknown = (flow.abs() > UNKNOWN_FLOW_THRESH).any(0) | ~flow_valid(flow)
    flow[:, unknown] = float("nan")
    return flow


def write_flo(path: str | os.PathLike, flow: Tensor | np.ndarray) -> None:
    """Write a (2, H, W) flow as a Middlebury ``.flo``; NaN / inf pixels get the sentinel 1e10."""
    f = _check_flow(flow)
    f = torch.where(flow_valid(f), f, torch.full_like(f, UNKNOWN_FLOW))
    _, h, w = f.shape
    body = np.ascontiguousarray(f.permute(1, 2, 0).numpy(), dtype="<f4").tobytes()
    Path(path).write_bytes(b"PIEH" + struct.pack("<ii", w, h) + body)


def read_kitti_flow(path: str | os.PathLike) -> Tensor:
    """A KITTI flow PNG (16-bit RGB: u = (R - 2^15) / 64, v = (G - 2^15) / 64, B = valid) as
    (2, H, W) float32 with NaN where B = 0."""
    from .image import read_png_raw

    raw = read_png_raw(path)
    if raw.dtype != torch.uint16 or raw.shape[0] < 3:
        raise ValueError(f"not a KITTI flow PNG (needs 16-bit RGB, got {raw.dtype} with {raw.shape[0]} "
                         f"channel(s)): {path}")
    x = raw[:3].to(torch.int32).float()
    flow = (x[:2] - 32768.0) / 64.0
    flow[:, x[2] == 0] = float("nan")
    return flow


def write_kitti_flow(path: str | os.PathLike, flow: Tensor | np.ndarray) -> None:
    """Write a (2, H, W) flow as a KITTI 16-bit PNG (1/64 px steps, |flow| < 512; NaN -> valid = 0)."""
    from .image import write_png16

    f = _check_flow(flow)
    valid = flow_valid(f)
    rg = (torch.where(valid, f, torch.zeros_like(f)) * 64.0 + 32768.0).round().clamp(0, 65535)
    write_png16(path, torch.cat([rg, valid[None].float()]).to(torch.int32))

"""PFM (portable float map) files: float32 images, 1 or 3 channels.

Layout (Middlebury convention): a text header ``Pf`` (gray) or ``PF`` (colour), ``W H``, and a
scale whose sign gives the byte order (negative: little-endian, positive: big-endian), each
followed by one whitespace byte; then the rows as float32 from the BOTTOM row to the top, the
channels interleaved. Middlebury ground truth uses ``inf`` for unknown disparity: it is kept.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

_HEADER = re.compile(rb"\A(P[Ff])\s+(\d+)\s+(\d+)\s+([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s")
MAX_SIDE = 1 << 17  # 131072 pixels: larger is taken for a corrupt header


def read_pfm(path: str | os.PathLike) -> Tensor:
    """A PFM file as float32: (H, W) for ``Pf``, (3, H, W) for ``PF``, top row first.

    Raises FileNotFoundError for a missing file and a one-line ValueError for a bad header,
    absurd sizes, a zero scale, or data shorter or longer than the header says."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"PFM file not found: {path}")
    data = path.read_bytes()
    m = _HEADER.match(data[:256])
    if m is None:
        raise ValueError(f"not a PFM file (bad header; expected 'PF' or 'Pf', width, height, scale): {path}")
    channels = 3 if m.group(1) == b"PF" else 1
    w, h, scale = int(m.group(2)), int(m.group(3)), float(m.group(4))
    if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE):
        raise ValueError(f"PFM file {path}: absurd size {w}x{h}")
    if scale == 0 or not np.isfinite(scale):
        raise ValueError(f"PFM file {path}: scale must be a non-zero number, got {scale}")
    count = w * h * channels
    body = data[m.end():]
    if len(body) != 4 * count:
        what = "truncated" if len(body) < 4 * count else "has trailing bytes"
        raise ValueError(f"PFM file {path} is {what}: {len(body)} data bytes, expected {4 * count} "
                         f"for {w}x{h}x{channels} float32")
    arr = np.frombuffer(body, dtype="<f4" if scale < 0 else ">f4").reshape(h, w, channels)[::-1]
    out = torch.from_numpy(arr.astype(np.float32))  # native order, a copy (top row first)
    return out[..., 0] if channels == 1 else out.permute(2, 0, 1).contiguous()


def write_pfm(path: str | os.PathLike, image: Tensor | np.ndarray) -> None:
    """Write (H, W) or (1, H, W) as ``Pf``, (3, H, W) as ``PF``; float32, little-endian (scale -1),
    bottom row first. NaN and inf are written as they are."""
    x = torch.as_tensor(image).detach().cpu().to(torch.float32)
    if x.dim() == 3 and x.shape[0] == 1:
        x = x[0]
    if x.dim() == 2:
        arr = x.numpy()[:, :, None]
    elif x.dim() == 3 and x.shape[0] == 3:
        arr = x.permute(1, 2, 0).numpy()
    else:
        raise ValueError(f"PFM image must be (H, W), (1, H, W) or (3, H, W), got {tuple(x.shape)}")
    h, w, c = arr.shape
    if h == 0 or w == 0:
        raise ValueError(f"cannot write an empty PFM image, shape {tuple(x.shape)}")
    header = f"{'PF' if c == 3 else 'Pf'}\n{w} {h}\n-1.0\n".encode("ascii")
    Path(path).write_bytes(header + np.ascontiguousarray(arr[::-1], dtype="<f4").tobytes())

"""Census transforms and their Hamming distances (stereo matching cost, the flow's displacement search).

A census code describes a window by which neighbours are darker than its centre, so comparing codes
(:func:`popcount` of their XOR) is robust to gain, bias and any monotonic change of brightness.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def shear_shift(shear: float, dy: int) -> int:
    """The column shift of row offset dy under a shear (px per row): ``shear * dy`` rounded half away from zero,
    so that rows dy and -dy shift symmetrically (a fractional shear is approximated row by row)."""
    t = abs(shear * dy)
    return int(math.floor(t + 0.5)) * (1 if shear * dy >= 0 else -1)


def census_transform(gray: Tensor, window: int = 7, shear: float = 0, step: int = 1) -> Tensor:
    """Census codes of a (B, 1, H, W) gray image: (B, 1, H, W) int64 (``window`` 3, 5 or 7: up to 48 bits), or of
    every ``step``-th row (B, 1, ceil(H / step), W).

    Bit k is 1 where the k-th window neighbour (row-major, centre skipped) is darker than the
    centre; borders are replicated. With ``shear`` s the neighbour of offset (dy, dx) is read at (dy, dx - s dy)
    (``s dy`` rounded, :func:`shear_shift`):
    the right image's code at x - d then describes the left window matched at disparity d + s dy in row dy.
    Bits are gathered 8 to a byte (uint8 work arrays), each byte shifted into the code once.
    """
    r = window // 2
    if window * window - 1 > 63:
        raise ValueError(f"a census window of {window}x{window} does not fit one int64 code")
    b, _, h, w = gray.shape
    rx = r + shear_shift(abs(shear), r)
    pad = F.pad(gray, (rx, rx, r, r), mode="replicate")
    centre = gray[:, 0, ::step]
    rows = centre.shape[-2]
    codes = torch.zeros(b, 1, rows, w, dtype=torch.int64, device=gray.device)
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1) if (dy, dx) != (0, 0)]
    byte = torch.empty(b, rows, w, dtype=torch.uint8, device=gray.device)
    for k0 in range(0, len(offsets), 8):  # one byte of neighbours at a time
        for k, (dy, dx) in enumerate(offsets[k0:k0 + 8]):
            x0 = rx + dx - shear_shift(shear, dy)
            darker = torch.lt(pad[:, 0, r + dy:r + dy + h:step, x0:x0 + w], centre).view(torch.uint8)
            byte.add_(darker, alpha=1 << k) if k else byte.copy_(darker)
        codes[:, 0].bitwise_or_(byte.to(torch.int64).bitwise_left_shift_(k0))
    return codes


def popcount(x: Tensor) -> Tensor:
    """Set bits of each element of a non-negative int64 tensor: uint8 on the CPU, int64 elsewhere (may reuse x).

    On the CPU numpy's ``bitwise_count``: one pass over the data, about 10x faster than the SWAR bit tricks
    (:func:`swar_popcount`, ten element-wise passes) that other devices use."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.bitwise_count(x.numpy()))
    return swar_popcount(x)


def swar_popcount(x: Tensor) -> Tensor:
    """Set bits of each element of a non-negative int64 tensor by SWAR bit tricks (modifies x in place)."""
    x.sub_((x >> 1).bitwise_and_(0x5555555555555555))
    y = (x >> 2).bitwise_and_(0x3333333333333333)
    x.bitwise_and_(0x3333333333333333).add_(y)
    x.add_(x >> 4).bitwise_and_(0x0F0F0F0F0F0F0F0F)
    x.add_(x >> 8).add_(x >> 16).add_(x >> 32)
    return x.bitwise_and_(0x7F)

"""Sums and means over sliding windows, by shifted adds of slices (no convolution, no prefix sums)."""

from __future__ import annotations

from torch import Tensor


def window_sum(x: Tensor, n: int, dim: int) -> Tensor:
    """Sums of n consecutive entries along ``dim`` (valid part: length L -> L - n + 1), from doubling sums
    ``s_2m(i) = s_m(i) + s_m(i + m)`` added by the binary digits of n (about 2 log2 n adds, few roundings)."""
    length = x.shape[dim] - n + 1
    out, start, s, m = None, 0, x, 1
    while True:
        if n & m:
            part = s.narrow(dim, start, length)
            out = part if out is None else out + part
            start += m
        if 2 * m > n:
            return out
        s = s.narrow(dim, 0, s.shape[dim] - m) + s.narrow(dim, m, s.shape[dim] - m)
        m *= 2


def weighted_window_sum(x: Tensor, weights: list[float], dim: int) -> Tensor:
    """``sum_k weights[k] x[i + k]`` along ``dim`` (valid part: length L -> L - len(weights) + 1), one scaled add
    of a shifted slice per weight (a separable filter's pass; several times faster than a one-channel conv2d on
    the CPU)."""
    length = x.shape[dim] - len(weights) + 1
    out = x.narrow(dim, 0, length) * weights[0]
    for k, wk in enumerate(weights[1:], 1):
        out.add_(x.narrow(dim, k, length), alpha=wk)
    return out

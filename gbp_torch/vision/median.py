"""Median filters of dense fields (flow, disparity): plain, and weighted by a guide image.

Both work on bands of rows, padded one at a time, so the unfolded windows (size^2 values per pixel)
stay bounded in memory on large frames; borders are replicated.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: window values per band (about 35 MB of float32 / int64 work arrays for the weighted median)
BAND_VALUES = 1 << 20
#: largest window of :func:`median_filter` taken by a selection network (:func:`median_network`) rather than a sort:
#: on a 512x512 field 3x3 went 36 -> 4 ms and 5x5 104 -> 19 ms (2 threads); the network for 7x7 has 590 operations
NETWORK_SIZE = 5


def _check(field: Tensor, size: int) -> None:
    if not isinstance(field, Tensor) or field.dim() != 4:
        shape = tuple(field.shape) if isinstance(field, Tensor) else type(field).__name__
        raise ValueError(f"field must be a (B, C, H, W) tensor, got {shape}")
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 1, got {size!r}")


def _bands(height: int, width: int, size: int, rows_per_chunk: int | None):
    """(top, rows) of consecutive row bands."""
    rows = rows_per_chunk or max(1, BAND_VALUES // max(1, width * size * size))
    return [(top, min(rows, height - top)) for top in range(0, height, rows)]


def _band(field: Tensor, top: int, rows: int, size: int) -> Tensor:
    """The rows of ``field`` (B, C, H, W) that the size x size windows of ``rows`` output rows from ``top`` read,
    borders replicated: (B, C, rows + size - 1, W + size - 1). Only the band's rows are padded, so no padded copy of
    the whole field exists."""
    r = size // 2
    height = field.shape[-2]
    lo, hi = max(0, top - r), min(height, top + rows + r)
    return F.pad(field[..., lo:hi, :], (r, r, r - (top - lo), r - (hi - top - rows)), mode="replicate")


def _window_view(band: Tensor, size: int, dilation: int = 1) -> Tensor:
    """The size x size windows of a :func:`_band` as a view, (B, C, rows, W, size, size) (window row, column);
    ``dilation``: every dilation-th pixel of a ``(size - 1) dilation + 1`` wide window (the band made for that span)."""
    span = (size - 1) * dilation + 1
    return band.unfold(-2, span, 1).unfold(-2, span, 1)[..., ::dilation, ::dilation]


def _windows(field: Tensor, top: int, rows: int, size: int) -> Tensor:
    """The size x size windows (borders replicated) of ``rows`` output rows from ``top``:
    (B, C, rows, W, size^2), row-major within each window (a copy)."""
    windows = _window_view(_band(field, top, rows, size), size)
    return windows.reshape(*windows.shape[:4], -1)


#: integer views of the float types :func:`sort_order` packs, and the mask of their magnitude bits
_INT_VIEWS = {torch.float32: (torch.int32, 0x7FFFFFFF), torch.float64: (torch.int64, 0x7FFFFFFFFFFFFFFF)}


def sort_order(values: Tensor) -> Tensor:
    """Indices (int64) that sort ``values`` (..., n) ascending along the last dimension, as ``values.sort(-1)``'s.

    On the CPU (float32 / float64), a packed-key sort: each value's order-preserving integer image (the float's bits,
    the magnitude bits flipped for negatives) with its index in the lowest ``ceil(log2 n)`` bits, sorted by numpy's
    vectorised integer sort, then the indices read back from those bits. Values closer than ``2^(ceil(log2 n) - 23)``
    relative (float32; ``- 52`` for float64) may come out in either order. On rows of 81 values this is 3-4 times
    faster than ``torch.sort`` on 2 threads (the weighted median is mostly its sort). Elsewhere: ``torch.sort``."""
    if values.device.type != "cpu" or values.dtype not in _INT_VIEWS or values.shape[-1] < 2:
        return values.sort(-1).indices
    return _packed_sort(values, values.shape[-1:])


def _packed_sort(values: Tensor, window: tuple[int, ...]) -> Tensor:
    """:func:`sort_order` of ``values`` (..., *window) over its last ``len(window)`` dimensions taken as one, in
    row-major order (float32 / float64 on the CPU; any strides: the windows of an unfolded band need no copy)
    -> int64 (..., prod(window))."""
    int_type, magnitude = _INT_VIEWS[values.dtype]
    n = math.prod(window)
    low = (1 << (n - 1).bit_length()) - 1
    bits = values.detach().view(int_type)  # same element size: a view whatever the strides
    # written in row-major order (an elementwise result would follow the view's strides, and its reshape copy)
    keys = torch.bitwise_right_shift(bits, bits.element_size() * 8 - 1, out=torch.empty(bits.shape, dtype=int_type))
    keys = keys.bitwise_and_(magnitude).bitwise_xor_(bits).view(*keys.shape[:keys.dim() - len(window)], n)
    keys.bitwise_and_(~low).bitwise_or_(torch.arange(n, dtype=int_type))
    keys.numpy().sort(axis=-1)  # in place: in torch's memory (numpy's own allocations held 0.8 GB more on big images)
    return keys.bitwise_and_(low).long()


def median_filter(field: Tensor, size: int = 5, rows_per_chunk: int | None = None) -> Tensor:
    """Per-channel ``size x size`` median, (B, C, H, W) -> (B, C, H, W)."""
    _check(field, size)
    if size == 1:
        return field
    out = torch.empty_like(field)  # written band by band: no small live blocks between the bands' work arrays
    width = field.shape[-1]
    for top, rows in _bands(field.shape[-2], width, size, rows_per_chunk):
        if size <= NETWORK_SIZE:  # the selection network over the window's shifted slices: 5-8x faster
            band = _band(field, top, rows, size)
            out[..., top:top + rows, :] = _median_of([band[..., dy:dy + rows, dx:dx + width]
                                                      for dy in range(size) for dx in range(size)])
        else:
            out[..., top:top + rows, :] = _windows(field, top, rows, size).median(-1).values
    return out


def colour_guide(image: Tensor) -> Tensor:
    """A guide for :func:`weighted_median_filter` from an image (B, C, H, W): divided by sqrt(C), so that window
    values weigh by colour distance and an image with equal channels exactly as by its gray levels (the channel
    mean)."""
    return image / math.sqrt(image.shape[1])


def _batcher_pairs(n: int) -> list[tuple[int, int]]:
    """Compare-exchange pairs (i < j) of Batcher's odd-even merge sort of n wires: that of the next power of two,
    without the pairs that touch wire n or above (padding by +inf, which those pairs never move)."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


@functools.cache
def median_network(n: int) -> tuple[tuple[int, int, bool, bool], ...]:
    """A selection network for the median (the middle of n wires, n odd): the compare-exchanges ``(i, j, min_used,
    max_used)`` of a sorting network that the middle wire's value depends on, each with whether its minimum (to
    wire i) and its maximum (to wire j) are read later (n = 15: 49 of the sort's 59 pairs, 84 min / max ops)."""
    needed = {n // 2}
    kept = []
    for i, j in reversed(_batcher_pairs(n)):
        low, high = i in needed, j in needed
        if low or high:
            kept.append((i, j, low, high))
            needed |= {i, j}
    return tuple(reversed(kept))


def _median_of(values: list[Tensor]) -> Tensor:
    """The elementwise median of an odd number of tensors of one shape, by :func:`median_network` (each
    compare-exchange one or two whole-tensor ``minimum`` / ``maximum``: several times faster than sorting the stacked
    values for the short windows of :func:`field_slopes`)."""
    wires = list(values)
    for i, j, low, high in median_network(len(wires)):
        a, b = wires[i], wires[j]
        if low:
            wires[i] = torch.minimum(a, b)
        if high:
            wires[j] = torch.maximum(a, b)
    return wires[len(wires) // 2]


def _separable_median(x: Tensor, size: int) -> Tensor:
    """A median of ``size`` values along x, then one along y (borders replicated): (B, C, H, W), a cheap
    stand-in for the ``size x size`` median (2 size values per pixel instead of size^2). Computed in bands of
    rows, so that the work arrays (``size`` values per pixel) stay those of one band."""
    r = size // 2
    along_x = torch.empty_like(x)
    per_band = max(1, BAND_VALUES // max(1, x.shape[0] * x.shape[1] * x.shape[-1] * size))
    bands = _bands(x.shape[-2], x.shape[-1], size, per_band)
    width = x.shape[-1]
    for top, rows in bands:
        band = F.pad(x[..., top:top + rows, :], (r, r, 0, 0), mode="replicate")
        along_x[..., top:top + rows, :] = _median_of([band[..., k:k + width] for k in range(size)])
    padded = F.pad(along_x, (0, 0, r, r), mode="replicate")
    del along_x
    out = torch.empty_like(x)
    for top, rows in bands:
        out[..., top:top + rows, :] = _median_of([padded[..., top + k:top + k + rows, :] for k in range(size)])
    return out


def field_slopes(field: Tensor, size: int = 9) -> tuple[Tensor, Tensor]:
    """Robust local slopes of a field (B, C, H, W): separable ``size x size`` medians of its x and y differences
    (central inside, one-sided at the borders), each (B, C, H, W). Across a depth or motion edge the
    differences are outliers that the medians ignore while less than half of each line sits on the edge."""
    _check(field, size)
    gx, gy = (torch.gradient(field, dim=dim)[0] if field.shape[dim] > 1 else torch.zeros_like(field)
              for dim in (-1, -2))
    return _separable_median(gx, size), _separable_median(gy, size)


def weighted_median_filter(field: Tensor, guide: Tensor, size: int = 11, sigma: float = 0.03,
                           rows_per_chunk: int | None = None, confidence: Tensor | None = None,
                           slopes: tuple[Tensor, Tensor] | None = None, dilation: int = 1) -> Tensor:
    """Per-channel weighted median over ``size x size`` windows, (B, C, H, W) -> (B, C, H, W).

    Window value j of pixel i weighs ``exp(-|g_i - g_j|^2 / (2 sigma^2))`` with g the guide (B, G, H, W)
    (for example the gray image in [0, 1]): values from across an intensity edge hardly count, so the
    filter removes outliers without moving a depth or motion edge to the middle of a window, the
    guided form of the non-local term of Sun, Roth and Black. The output is the smallest window
    value whose cumulative weight (values sorted) reaches half the total; gradients reach the
    selected values. ``confidence`` (B, 1, H, W) >= 0, optional, multiplies each window value's weight by
    that pixel's confidence (e.g. a robust data weight: unreliable values hardly vote).

    ``slopes`` ``(gx, gy)``, each (B, C, H, W) (e.g. :func:`field_slopes`), optional: the window value at offset
    (dy, dx) from the centre enters as ``value - gx dx - gy dy``, its extrapolation to the centre along the
    centre's local plane, and window entries outside the image do not vote (replicated border values would
    not lie on the plane). A planar field then passes unchanged, also where the weights make a window lopsided
    (an upright median pulls a steep ramp, like a floor's disparity, toward the side that weighs more).

    ``dilation`` d: the window is every d-th pixel of a ``(size - 1) d + 1`` square (size^2 values reaching
    farther: a 7x7 window dilated by 2 reads 49 values over 13x13 pixels).
    """
    _check(field, size)
    if not isinstance(guide, Tensor) or guide.dim() != 4 or guide.shape[0] != field.shape[0] \
            or guide.shape[-2:] != field.shape[-2:]:
        raise ValueError(f"guide must be (B, G, H, W) with the field's B, H, W {tuple(field.shape)}, got "
                         f"{tuple(guide.shape) if isinstance(guide, Tensor) else type(guide).__name__}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if confidence is not None and (not isinstance(confidence, Tensor) or confidence.dim() != 4
                                   or tuple(confidence.shape) != (field.shape[0], 1, *field.shape[-2:])
                                   or not bool((confidence >= 0).all())):
        raise ValueError(f"confidence must be (B, 1, H, W) = {(field.shape[0], 1, *field.shape[-2:])}, >= 0 and "
                         f"not NaN, got {tuple(confidence.shape) if isinstance(confidence, Tensor) else confidence!r}")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 1:
        raise ValueError(f"dilation must be an int >= 1, got {dilation!r}")
    if slopes is not None and (len(slopes) != 2 or any(not isinstance(g, Tensor) or g.shape != field.shape
                                                        for g in slopes)):
        raise ValueError(f"slopes must be a pair (gx, gy) of tensors of the field's shape {tuple(field.shape)}")
    if size == 1:
        return field
    guide = guide.detach().to(field.dtype)
    span = (size - 1) * dilation + 1
    width, r = field.shape[-1], span // 2
    padded_width = width + 2 * r
    if slopes is not None:
        step = torch.arange(-r, r + 1, dilation, device=field.device)
        dy, dx = step.repeat_interleave(size), step.repeat(size)  # offsets of the unfolded window, row-major
    # written band by band: a list of small band outputs, each allocated after the band's work arrays, kept the
    # C heap from reusing them (a 3000x2000 disparity with 11x11 windows grew it by 1.5 GB)
    out = torch.empty_like(field)
    for top, rows in _bands(field.shape[-2], width, size, rows_per_chunk):
        # the work arrays come straight from the bands' window views (no copies of the windows themselves)
        centre = guide[..., top:top + rows, :, None, None]
        guides = _window_view(_band(guide, top, rows, span), size, dilation)
        # row-major work arrays (an elementwise result would follow the window view's strides, and its reshape copy)
        weight = torch.sub(guides[:, :1], centre[:, :1], out=field.new_empty(guides[:, :1].shape)).square_()
        for c in range(1, guide.shape[1]):  # the guide's channels (colour: 3), summed in place
            weight += (guides[:, c:c + 1] - centre[:, c:c + 1]).square_()
        weight = weight.mul_(-0.5 / sigma**2).exp_()  # (B, 1, rows, W, size, size)
        if confidence is not None:
            weight = weight.mul_(_window_view(_band(confidence.detach().to(field.dtype), top, rows, span), size,
                                              dilation))
        weight = weight.view(*weight.shape[:4], -1)  # (B, 1, rows, W, size^2)
        band = _band(field, top, rows, span)  # (B, C, rows + 2r, W + 2r)
        windows = _window_view(band, size, dilation)
        if slopes is not None:
            gx, gy = (g[..., top:top + rows, :].unsqueeze(-1) for g in slopes)
            with torch.no_grad():  # they only order the entries: the output's gradient comes from its own value below
                flat = (*windows.shape[:4], -1)
                windows = torch.sub(windows, (gx * dx).view(windows.shape), out=field.new_empty(windows.shape))
                windows = windows.view(flat).sub_(gy * dy)
            y = torch.arange(top, top + rows, device=field.device).view(-1, 1, 1) + dy  # (rows, 1, size^2)
            x = torch.arange(width, device=field.device).view(1, -1, 1) + dx  # (1, W, size^2)
            weight = weight.mul_((y >= 0) & (y < field.shape[-2]) & (x >= 0) & (x < width))
            order = sort_order(windows)
        elif windows.device.type == "cpu" and windows.dtype in _INT_VIEWS:
            order = _packed_sort(windows, (size, size))
        else:
            order = windows.reshape(*windows.shape[:4], -1).sort(-1).indices
        del windows
        cumulative = weight.expand_as(order).gather(-1, order).cumsum_(-1)
        pick = torch.searchsorted(cumulative, 0.5 * cumulative[..., -1:])  # sorted entries whose sum is below half
        pick.masked_fill_(pick == cumulative.shape[-1], 0)  # NaN weights (a NaN guide): the first, as a count gives
        del cumulative
        k = order.gather(-1, pick).squeeze(-1)  # (B, C, rows, W): the chosen window entry, row-major
        del order
        oy, ox = k.div(size, rounding_mode="floor") * dilation, k.remainder(size) * dilation  # its offset + r
        index = (torch.arange(rows, device=field.device).view(-1, 1) + oy) * padded_width \
            + torch.arange(width, device=field.device) + ox
        value = band.flatten(-2).gather(-1, index.flatten(-2)).view_as(index)
        if slopes is not None:
            value = value - gx[..., 0] * (ox - r) - gy[..., 0] * (oy - r)
        out[..., top:top + rows, :] = value
    return out

"""Weighted median filter against a per-pixel loop of its definition; its edge behaviour; its errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gbp_torch.vision import field_slopes, median_filter, weighted_median_filter


def loop_weighted_median(field: np.ndarray, guide: np.ndarray, size: int, sigma: float,
                         confidence: np.ndarray | None = None, slopes=None, dilation: int = 1) -> np.ndarray:
    """Per pixel and channel: the smallest window value whose cumulative weight reaches half the total. With
    ``slopes`` (gx, gy) (C, H, W): values at offset (dy, dx) minus gx dx + gy dy, no votes from outside the image.
    ``dilation``: the window is every dilation-th pixel of a (size - 1) dilation + 1 square."""
    span = (size - 1) * dilation + 1
    r = span // 2
    _, h, w = field.shape
    fp = np.pad(field, ((0, 0), (r, r), (r, r)), mode="edge")
    gp = np.pad(guide, ((0, 0), (r, r), (r, r)), mode="edge")
    cp = None if confidence is None else np.pad(confidence, ((0, 0), (r, r), (r, r)), mode="edge")
    dy, dx = np.meshgrid(np.arange(-r, r + 1, dilation), np.arange(-r, r + 1, dilation), indexing="ij")
    window = (slice(None), slice(None, span, dilation), slice(None, span, dilation))
    out = np.empty_like(field)
    for y in range(h):
        for x in range(w):
            gw = gp[:, y:, x:][window].reshape(guide.shape[0], -1)
            weight = np.exp(-((gw - guide[:, y, x, None]) ** 2).sum(0) / (2 * sigma**2))
            if cp is not None:
                weight = weight * cp[:, y:, x:][window].reshape(-1)
            if slopes is not None:
                weight = weight * ((y + dy >= 0) & (y + dy < h) & (x + dx >= 0) & (x + dx < w)).reshape(-1)
            for c in range(field.shape[0]):
                values = fp[c:c + 1, y:, x:][window].reshape(-1)
                if slopes is not None:
                    values = values - (slopes[0][c, y, x] * dx + slopes[1][c, y, x] * dy).reshape(-1)
                order = np.argsort(values, kind="stable")
                cum = np.cumsum(weight[order])
                out[c, y, x] = values[order][np.searchsorted(cum, 0.5 * cum[-1])]
    return out


@pytest.mark.parametrize("size,sigma", [(3, 0.1), (5, 0.03)])
def test_weighted_median_matches_a_loop_over_pixels(size, sigma):
    g = torch.Generator().manual_seed(0)
    field = torch.randn(2, 2, 13, 11, generator=g, dtype=torch.float64)
    guide = torch.rand(2, 3, 13, 11, generator=g, dtype=torch.float64)
    got = weighted_median_filter(field, guide, size, sigma, rows_per_chunk=4)
    for b in range(2):
        ref = loop_weighted_median(field[b].numpy(), guide[b].numpy(), size, sigma)
        np.testing.assert_allclose(got[b].numpy(), ref)


def test_confidence_multiplies_the_window_weights():
    g = torch.Generator().manual_seed(3)
    field = torch.randn(2, 2, 12, 10, generator=g, dtype=torch.float64)
    guide = torch.rand(2, 1, 12, 10, generator=g, dtype=torch.float64)
    confidence = torch.rand(2, 1, 12, 10, generator=g, dtype=torch.float64)
    confidence[0, 0, 3:6, 2:5] = 0.0  # pixels that must not vote
    got = weighted_median_filter(field, guide, 5, 0.1, rows_per_chunk=5, confidence=confidence)
    for b in range(2):
        ref = loop_weighted_median(field[b].numpy(), guide[b].numpy(), 5, 0.1, confidence[b].numpy())
        np.testing.assert_allclose(got[b].numpy(), ref)
    assert not torch.equal(got, weighted_median_filter(field, guide, 5, 0.1))


def test_slopes_shift_the_window_values_along_the_local_plane():
    g = torch.Generator().manual_seed(4)
    field = torch.randn(2, 2, 11, 12, generator=g, dtype=torch.float64)
    guide = torch.rand(2, 3, 11, 12, generator=g, dtype=torch.float64)
    slopes = tuple(torch.randn(2, 2, 11, 12, generator=g, dtype=torch.float64) for _ in range(2))
    got = weighted_median_filter(field, guide, 5, 0.1, rows_per_chunk=3, slopes=slopes)
    for b in range(2):
        ref = loop_weighted_median(field[b].numpy(), guide[b].numpy(), 5, 0.1,
                                   slopes=(slopes[0][b].numpy(), slopes[1][b].numpy()))
        np.testing.assert_allclose(got[b].numpy(), ref)


def test_a_steep_plane_passes_a_lopsided_median_with_its_slopes():
    """A floor-like ramp (1.2 per row) under a guide that weighs the rows above each pixel more: the upright
    weighted median pulls it by pixels, the one along the estimated slopes returns it unchanged."""
    h, w = 30, 26
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    ramp = (3.0 + 0.1 * x + 1.2 * y)[None, None]
    guide = (y / h)[None, None] ** 0.5  # rows above are closer in the guide than rows below
    slopes = field_slopes(ramp, 9)
    torch.testing.assert_close(slopes[0], torch.full_like(ramp, 0.1))
    torch.testing.assert_close(slopes[1], torch.full_like(ramp, 1.2))
    torch.testing.assert_close(weighted_median_filter(ramp, guide, 11, 0.05, slopes=slopes), ramp)
    assert float((weighted_median_filter(ramp, guide, 11, 0.05) - ramp).abs().max()) > 1.0


def test_field_slopes_ignore_a_step():
    """A plane with a step of 20 (a depth edge) at column 12: the two central differences across it are outliers
    that the 9-wide medians leave out, so the slopes are the plane's everywhere (a 9x9 mean would not be)."""
    y, x = torch.meshgrid(torch.arange(24.0), torch.arange(30.0), indexing="ij")
    field = (0.3 * x - 0.2 * y + 20.0 * (x >= 12))[None, None]
    gx, gy = field_slopes(field, 9)
    torch.testing.assert_close(gy, torch.full_like(gy, -0.2))
    torch.testing.assert_close(gx, torch.full_like(gx, 0.3))


def test_constant_guide_gives_the_plain_median():
    field = torch.randn(1, 2, 20, 17, generator=torch.Generator().manual_seed(1))
    guide = torch.full((1, 1, 20, 17), 0.3)
    torch.testing.assert_close(weighted_median_filter(field, guide, 5, 0.05), median_filter(field, 5))


def test_edge_aligned_with_the_guide_stays_and_an_outlier_goes():
    """A disparity step on an intensity step survives an 11x11 weighted median exactly (a plain median
    of that size rounds the step's corners away); a one-pixel outlier inside a region is removed."""
    disparity = torch.full((1, 1, 32, 32), 10.0)
    disparity[..., 8:24, 8:24] = 20.0  # a foreground square
    guide = torch.where(disparity > 15, 0.8, 0.2)
    noisy = disparity.clone()
    noisy[..., 4, 4] = 50.0
    out = weighted_median_filter(noisy, guide, 11, 0.05)
    torch.testing.assert_close(out, disparity)
    assert (median_filter(noisy, 11) != disparity).any()


def test_bad_arguments():
    field = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ValueError, match="odd"):
        weighted_median_filter(field, field, 4)
    with pytest.raises(ValueError, match="guide"):
        weighted_median_filter(field, torch.zeros(1, 1, 8, 7))
    with pytest.raises(ValueError, match="sigma"):
        weighted_median_filter(field, field, 3, 0.0)
    with pytest.raises(ValueError, match="B, C, H, W"):
        weighted_median_filter(field[0], field, 3)
    with pytest.raises(ValueError, match="confidence"):
        weighted_median_filter(field, field, 3, confidence=torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="confidence"):
        weighted_median_filter(field, field, 3, confidence=-torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="slopes"):
        weighted_median_filter(field, field, 3, slopes=(field,))
    with pytest.raises(ValueError, match="slopes"):
        weighted_median_filter(field, field, 3, slopes=(field, field[..., :7]))
    with pytest.raises(ValueError, match="dilation"):
        weighted_median_filter(field, field, 3, dilation=0)
    with pytest.raises(ValueError, match="odd"):
        field_slopes(field, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [2, 5, 81, 130])
def test_packed_key_sort_orders_like_torch_sort(dtype, n):
    """The CPU packed-key sort (numpy's integer sort of the values' order-preserving bit images with the index in the
    low bits) gives torch.sort's order on values of both signs and any magnitude, zero included, that differ by more
    than its resolution (2^(ceil(log2 n) - 23) relative in float32); closer ones may come out in either order."""
    from gbp_torch.vision.median import sort_order

    g = torch.Generator().manual_seed(n)
    magnitude = torch.logspace(-20, 20, 300, dtype=dtype)[:, None]
    ranks = torch.stack([torch.randperm(n, generator=g) for _ in range(300)]).to(dtype) - n // 2  # zero included
    values = (ranks * magnitude).view(3, 100, n)  # any leading shape
    order = sort_order(values)
    assert order.dtype == torch.int64 and order.shape == values.shape
    assert torch.equal(torch.sort(order, -1).values, torch.arange(n).expand_as(order))  # a permutation per row
    assert torch.equal(values.gather(-1, order), values.sort(-1).values)


def test_field_slopes_in_bands_of_rows_equal_the_numpy_medians(monkeypatch):
    """Computed band by band (a few rows at a time, bounded memory on big images), the separable medians equal
    numpy's medians of the replicate-padded differences."""
    from gbp_torch.vision import median as median_module

    monkeypatch.setattr(median_module, "BAND_VALUES", 2 * 17 * 9 * 3)  # bands of 3 rows
    g = torch.Generator().manual_seed(4)
    field = torch.randn(2, 1, 13, 17, generator=g, dtype=torch.float64)
    gx, gy = field_slopes(field, 9)
    f = field.numpy()
    for slope, axis in ((gx, -1), (gy, -2)):
        d = np.gradient(f, axis=axis)
        along_x = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(d, ((0, 0), (0, 0), (0, 0), (4, 4)),
                                                                            mode="edge"), 9, axis=-1), -1)
        ref = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(along_x, ((0, 0), (0, 0), (4, 4), (0, 0)),
                                                                     mode="edge"), 9, axis=-2), -1)
        np.testing.assert_allclose(slope.numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("with_slopes", [False, True])
def test_gradients_reach_the_selected_window_values(with_slopes):
    """The output is the chosen window value (minus the slope terms): its gradient is 1 on that field entry (and
    -dx, -dy on the slopes of the pixel), checked against a dense one-hot oracle built from the loop's choice."""
    g = torch.Generator().manual_seed(7)
    field = torch.randn(1, 2, 9, 8, generator=g, dtype=torch.float64, requires_grad=True)
    guide = torch.rand(1, 3, 9, 8, generator=g, dtype=torch.float64)
    slopes = tuple((0.1 * torch.randn(1, 2, 9, 8, generator=g, dtype=torch.float64)).requires_grad_()
                   for _ in range(2)) if with_slopes else None
    out = weighted_median_filter(field, guide, 5, 0.1, rows_per_chunk=4, slopes=slopes)
    y, x, c = 4, 3, 1
    out[0, c, y, x].backward()
    grad = field.grad[0, c]
    assert float(grad.sum()) == 1.0 and int((grad != 0).sum()) == 1  # one entry of the field, weight 1
    sy, sx = (int(i) for i in (grad == 1).nonzero()[0])
    assert abs(sy - y) <= 2 and abs(sx - x) <= 2  # inside the pixel's window
    assert not field.grad[0, 1 - c].any()
    if with_slopes:  # value - gx dx - gy dy: d/dgx = -dx, d/dgy = -dy at the pixel, 0 elsewhere
        assert float(slopes[0].grad[0, c, y, x]) == -(sx - x) and float(slopes[1].grad[0, c, y, x]) == -(sy - y)
        assert int((slopes[0].grad != 0).sum()) <= 1
    expected = float(field.detach()[0, c, sy, sx]) - (0 if not with_slopes else float(
        slopes[0].detach()[0, c, y, x] * (sx - x) + slopes[1].detach()[0, c, y, x] * (sy - y)))
    assert float(out.detach()[0, c, y, x]) == pytest.approx(expected)


@pytest.mark.parametrize("n", [1, 3, 5, 9, 11, 15])
def test_median_network_selects_the_median_of_every_binary_input_and_of_random_values(n):
    """The pruned Batcher network behind field_slopes' medians: by the 0-1 principle a comparator network that
    selects the median of all 2^n binary inputs selects it of any input; also checked on random values (with ties)
    against torch.median."""
    import itertools

    from gbp_torch.vision.median import _median_of

    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)))  # (2^n, n)
    assert torch.equal(_median_of(list(bits.T)), bits.median(1).values)
    g = torch.Generator().manual_seed(n)
    values = torch.randint(-5, 6, (4000, n), generator=g).double() / 3  # many ties
    assert torch.equal(_median_of(list(values.T)), values.median(1).values)


def test_a_nan_in_the_guide_leaves_the_windows_without_it_unchanged():
    """A NaN guide pixel makes the weights of the windows that hold it NaN: those pixels take their window's
    smallest value (no index beyond the window); every pixel whose window does not hold it is filtered as before."""
    g = torch.Generator().manual_seed(8)
    field = torch.randn(1, 2, 12, 13, generator=g)
    guide = torch.rand(1, 3, 12, 13, generator=g)
    broken = guide.clone()
    broken[0, 1, 3, 4] = float("nan")
    got, ref = weighted_median_filter(field, broken, 5, 0.1), weighted_median_filter(field, guide, 5, 0.1)
    far = torch.ones(12, 13, dtype=torch.bool)
    far[1:6, 2:7] = False  # the pixels within 2 of (3, 4)
    assert torch.equal(got[..., far], ref[..., far])
    assert torch.isfinite(got).all()
    windows = torch.nn.functional.pad(field, (2, 2, 2, 2), mode="replicate").unfold(2, 5, 1).unfold(3, 5, 1)
    assert torch.equal(got[0, :, 3, 4], windows[0, :, 3, 4].flatten(1).min(1).values)


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 9), width=st.integers(1, 9), size=st.sampled_from([1, 3, 5]),
       channels=st.integers(1, 2), guide_channels=st.sampled_from([1, 3]), rows=st.integers(1, 4),
       with_confidence=st.booleans(), with_slopes=st.booleans(), dilation=st.integers(1, 3),
       seed=st.integers(0, 2**16))
def test_weighted_median_fuzz_against_the_loop(height, width, size, channels, guide_channels, rows, with_confidence,
                                              with_slopes, dilation, seed):
    """Any frame size (a window wider than the frame included), band height, window, dilation, channel count,
    confidence and slopes: the band-wise filter equals the per-pixel loop of its definition."""
    g = torch.Generator().manual_seed(seed)
    field = torch.randn(1, channels, height, width, generator=g, dtype=torch.float64)
    guide = torch.rand(1, guide_channels, height, width, generator=g, dtype=torch.float64)
    confidence = torch.rand(1, 1, height, width, generator=g, dtype=torch.float64) if with_confidence else None
    slopes = tuple(0.3 * torch.randn(1, channels, height, width, generator=g, dtype=torch.float64)
                   for _ in range(2)) if with_slopes else None
    got = weighted_median_filter(field, guide, size, 0.2, rows_per_chunk=rows, confidence=confidence, slopes=slopes,
                                 dilation=dilation)
    if size == 1:
        assert torch.equal(got, field)
        return
    ref = loop_weighted_median(field[0].numpy(), guide[0].numpy(), size, 0.2,
                               None if confidence is None else confidence[0].numpy(),
                               None if slopes is None else (slopes[0][0].numpy(), slopes[1][0].numpy()), dilation)
    np.testing.assert_allclose(got[0].numpy(), ref, rtol=0, atol=1e-12)

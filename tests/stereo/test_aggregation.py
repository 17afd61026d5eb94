"""Cost aggregation against numpy loops: the separable box mean, the guided filter, the SGM recursion."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stereo_helpers import RecordingBar

import gbp_torch.tasks.stereo.cost as cost_module
import gbp_torch.tasks.stereo.sgm as sgm_module
from gbp_torch.tasks.stereo.cost import (
    CostConfig,
    CostVolume,
    Guide,
    aggregate,
    box_mean,
    cost_volume,
    shifted_window_min,
)
from gbp_torch.tasks.stereo.search import coupled_search
from gbp_torch.tasks.stereo.sgm import DIRECTIONS, SGMConfig, semi_global


def _window(a, y, x, r):
    return a[..., max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]


def _box_np(a, r):
    out = np.zeros_like(a)
    for y in range(a.shape[-2]):
        for x in range(a.shape[-1]):
            win = _window(a, y, x, r)
            out[..., y, x] = win.reshape(*a.shape[:-2], -1).mean(-1)
    return out


@pytest.mark.parametrize("radius", [1, 2, 4])
def test_separable_box_mean_is_the_clipped_window_mean(radius):
    x = torch.rand(2, 3, 7, 11, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
    np.testing.assert_allclose(box_mean(x, radius).numpy(), _box_np(x.numpy(), radius), atol=1e-12)


@pytest.mark.parametrize("shift,h,w", [(0, 5, 7), (1, 5, 7), (2, 6, 4), (4, 3, 9)])
def test_shifted_window_min_is_the_least_value_around_each_pixel(shift, h, w):
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(shift), dtype=torch.float64)
    ref = np.empty((2, 3, h, w))
    a = x.numpy()
    for y in range(h):
        for xx in range(w):
            ref[..., y, xx] = a[..., max(0, y - shift):y + shift + 1, max(0, xx - shift):xx + shift + 1].min((-2, -1))
    np.testing.assert_array_equal(shifted_window_min(x, shift).numpy(), ref)


def test_guided_filter_matches_window_least_squares():
    """Each window fits cost = a I + b by ridge least squares; the output averages the fits covering a pixel."""
    g = torch.Generator().manual_seed(0)
    gray = torch.rand(1, 1, 8, 10, generator=g, dtype=torch.float64)
    cost = torch.rand(1, 3, 8, 10, generator=g, dtype=torch.float64)
    r, eps = 2, 0.01
    got = aggregate(cost, r, Guide.of(gray, r), eps)
    im, c = gray[0, 0].numpy(), cost[0].numpy()
    h, w = im.shape
    a = np.zeros((3, h, w))
    b = np.zeros((3, h, w))
    for y in range(h):
        for x in range(w):
            gi = _window(im, y, x, r).ravel()
            for k in range(3):
                ci = _window(c[k], y, x, r).ravel()
                # ridge fit: minimise mean((a gi + b - ci)^2) + eps a^2
                var = gi.var()
                a[k, y, x] = (np.mean(gi * ci) - gi.mean() * ci.mean()) / (var + eps)
                b[k, y, x] = ci.mean() - a[k, y, x] * gi.mean()
    ref = _box_np(a, r) * im + _box_np(b, r)
    np.testing.assert_allclose(got[0].numpy(), ref, atol=1e-10)


def test_guided_filter_keeps_a_cost_step_at_an_image_edge():
    """A cost that steps where the image steps stays a step (the box mean blurs it over the window)."""
    gray = torch.zeros(1, 1, 6, 20, dtype=torch.float64)
    gray[..., 10:] = 1.0
    cost = gray.expand(1, 2, 6, 20).clone()
    guided = aggregate(cost, 3, Guide.of(gray, 3), 1e-4)
    assert (guided - cost).abs().max() < 1e-3
    assert (box_mean(cost, 3) - cost).abs().max() > 0.4


def _sgm_np(c, gray, cfg):
    """The SGM recursion pixel by pixel along each path: c (N, H, W), gray (H, W) -> mean of L_r."""
    n, h, w = c.shape
    total = np.zeros_like(c)
    for dy, dx in DIRECTIONS[:cfg.paths]:
        L = np.zeros_like(c)
        ys = range(h) if dy >= 0 else range(h - 1, -1, -1)
        xs = range(w) if dx >= 0 else range(w - 1, -1, -1)
        order = [(y, x) for x in xs for y in ys] if dx != 0 else [(y, x) for y in ys for x in xs]
        for y, x in order:
            py, px = y - dy, x - dx
            if not (0 <= py < h and 0 <= px < w):
                L[:, y, x] = c[:, y, x]
                continue
            prev = L[:, py, px]
            p2 = cfg.p2
            if cfg.edge_t > 0:
                p2 = max(cfg.p1, cfg.p2 / (1 + abs(gray[y, x] - gray[py, px]) / cfg.edge_t))
            best = np.minimum(prev, prev.min() + p2)
            best[1:] = np.minimum(best[1:], prev[:-1] + cfg.p1)
            best[:-1] = np.minimum(best[:-1], prev[1:] + cfg.p1)
            L[:, y, x] = c[:, y, x] + best - prev.min()
        total += L
    return total / cfg.paths


def _rows_of(cost):
    return lambda y0, y1: cost[..., y0:y1, :]


@pytest.mark.parametrize("band", [7, 3])  # 3: bands of 3, 3 and 1 rows, the last row's L carried between them
@pytest.mark.parametrize("block", [32, 2])  # 2: several blocks of scanline positions and a remainder
@pytest.mark.parametrize("cfg", [SGMConfig(paths=4, p1=0.05, p2=0.4, edge_t=0.0),
                                 SGMConfig(paths=8, p1=0.03, p2=0.6, edge_t=0.1)])
def test_sgm_matches_the_recursion_pixel_by_pixel(cfg, block, band, monkeypatch):
    monkeypatch.setattr(sgm_module, "BLOCK", block)
    g = torch.Generator().manual_seed(cfg.paths)
    cost = torch.rand(1, 6, 7, 9, generator=g)
    gray = torch.rand(1, 1, 7, 9, generator=g)
    vol = CostVolume(cost.half(), 1.0)
    out, max_cost = semi_global(_rows_of(vol.cost), band, vol.as_float, vol.max_cost, gray, cfg)
    assert max_cost == pytest.approx(1.0 + cfg.p2) and out.dtype == torch.float16
    ref = _sgm_np(vol.as_float()[0].double().numpy(), gray[0, 0].double().numpy(), cfg)
    assert ref.max() <= max_cost + 1e-9
    np.testing.assert_allclose(CostVolume(out, max_cost).as_float()[0].numpy(), ref, atol=2e-3 * max_cost)


def test_sgm_uint8_accumulation_stays_within_its_rounding_bound():
    cfg = SGMConfig(paths=8)
    g = torch.Generator().manual_seed(3)
    vol = CostVolume(torch.randint(0, 255, (1, 5, 6, 8), generator=g, dtype=torch.uint8), 1.0)
    gray = torch.rand(1, 1, 6, 8, generator=g)
    out, max_cost = semi_global(_rows_of(vol.cost), 3, vol.as_float, vol.max_cost, gray, cfg)
    assert out.dtype == torch.uint8 and int(out.max()) <= 254
    ref = _sgm_np(vol.as_float()[0].double().numpy(), gray[0, 0].double().numpy(), cfg)
    step = max_cost / 254
    err = np.abs(CostVolume(out, max_cost).as_float()[0].double().numpy() - ref)
    assert err.max() <= 0.75 * cfg.paths * step + 1e-6  # each path's term is rounded to whole steps
    assert err.mean() < 0.5 * np.sqrt(cfg.paths) * step  # the roundings are not all of one sign


def test_sgm_reads_each_band_twice_and_keeps_a_single_one():
    cost = torch.randint(0, 255, (1, 4, 10, 6), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    gray = torch.rand(1, 1, 10, 6, generator=torch.Generator().manual_seed(2))
    calls = []

    def rows(y0, y1):
        calls.append((y0, y1))
        return cost[..., y0:y1, :]

    semi_global(rows, 4, lambda c: c.float() / 254, 1.0, gray, SGMConfig())
    assert calls == [(0, 4), (4, 8), (8, 10), (8, 10), (4, 8), (0, 4)]  # down, then up
    calls.clear()
    semi_global(rows, 10, lambda c: c.float() / 254, 1.0, gray, SGMConfig())
    assert calls == [(0, 10)]


def test_sgm_progress_bar_counts_the_bands_of_both_passes(monkeypatch):
    steps = []
    monkeypatch.setattr(sgm_module, "progress_bar", RecordingBar.factory(steps))
    cost = torch.randint(0, 255, (1, 4, 10, 6), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    semi_global(lambda y0, y1: cost[..., y0:y1, :], 4, lambda c: c.float() / 254, 1.0, torch.rand(1, 1, 10, 6),
                SGMConfig(), progress=True)
    assert steps == [6] + [1] * 6 + ["closed"]  # 3 bands down, 3 up


def test_banded_cost_volume_equals_the_whole_one(monkeypatch):
    """Bands of rows with their census + guided-filter margin give the whole image's volume (to rounding)."""
    g = torch.Generator().manual_seed(4)
    left = F.avg_pool2d(torch.rand(1, 3, 30, 40, generator=g), 3, 1, 1)
    right = torch.roll(left, -3, -1)
    whole = cost_volume(left, right, 8, CostConfig()).cost
    monkeypatch.setattr(cost_module, "BAND_VALUES", 9 * 40 * 5)  # bands of 5 rows
    banded = cost_volume(left, right, 8, CostConfig()).cost
    diff = (whole.int() - banded.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3


def test_sgm_recovers_a_plane_where_the_window_cost_is_ambiguous():
    """A textured plane with a textureless band: box-aggregated WTA fails in the band, SGM fills it."""
    g = torch.Generator().manual_seed(0)
    h, w, d = 40, 60, 5
    tex = F.avg_pool2d(torch.rand(1, 1, h, w + d, generator=g), 3, 1, 1)
    tex[..., 10:30, :] = 0.5  # no texture: every disparity costs the same
    left, right = tex[..., :w], tex[..., d:]  # left(x) = right(x - d)
    off = CostConfig(sgm=SGMConfig(paths=0), guided_eps=0.0, store="float16", aggregate_radius=1)
    on = CostConfig(sgm=SGMConfig(paths=4), guided_eps=0.0, store="float16", aggregate_radius=1)
    band = (slice(None), slice(15, 25), slice(10, w))  # census and window see no texture here
    wta_off = coupled_search(cost_volume(left, right, 8, off))[0][band]
    wta_on = coupled_search(cost_volume(left, right, 8, on))[0][band]
    assert (wta_off == d).float().mean() < 0.5
    assert (wta_on == d).float().mean() > 0.95


def test_sgm_config_rejects_bad_values():
    with pytest.raises(ValueError, match="paths"):
        SGMConfig(paths=3)
    with pytest.raises(ValueError, match="p1"):
        SGMConfig(p1=0.5, p2=0.1)

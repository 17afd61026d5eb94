"""Cost volume against a brute-force numpy loop; sheared windows; chunking; the quadratic fit; bad shapes."""

import numpy as np
import pytest
import torch
from stereo_helpers import RecordingBar

import gbp_torch.tasks.stereo.cost as cost_module
from gbp_torch.tasks.stereo.cost import (
    CostConfig,
    CostVolume,
    box_mean,
    cost_volume,
    shear_choice,
    sheared_window_mean,
    shifted_op,
)
from gbp_torch.tasks.stereo.features import MatchingFeatures
from gbp_torch.tasks.stereo.search import coupled_search, quadratic_fit, right_winner
from gbp_torch.tasks.stereo.sgm import SGMConfig
from gbp_torch.vision.census import census_transform, popcount, swar_popcount


def _shift(shear, dy):
    """shear * dy rounded half away from zero."""
    return int(np.sign(shear * dy) * np.floor(abs(shear * dy) + 0.5))


def _census_np(g, win, shear=0):
    """Bit (dy, dx) of pixel (y, x): g at (y + dy, x + dx - round(shear dy)), indices clipped into the image,
    < g(y, x)."""
    r = win // 2
    h, w = g.shape
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    bits = []
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            bits.append(g[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx - _shift(shear, dy), 0, w - 1)] < g)
    return np.stack(bits)  # (n_bits, H, W)


def _cost_np(left, right, max_disp, cfg):
    gl, gr = left.mean(0), right.mean(0)
    bl, br = _census_np(gl, cfg.census), _census_np(gr, cfg.census)
    n = bl.shape[0]
    gxl, gxr = np.zeros_like(gl), np.zeros_like(gr)
    gxl[:, 1:-1] = 0.5 * (gl[:, 2:] - gl[:, :-2])
    gxr[:, 1:-1] = 0.5 * (gr[:, 2:] - gr[:, :-2])
    h, w = gl.shape
    maxc = 1 + cfg.gradient_weight
    raw = np.full((max_disp + 1, h, w), maxc)
    for d in range(max_disp + 1):
        for y in range(h):
            for x in range(d, w):
                ham = np.sum(bl[:, y, x] != br[:, y, x - d]) / n
                gd = min(abs(gxl[y, x] - gxr[y, x - d]), cfg.gradient_trunc) / cfg.gradient_trunc
                raw[d, y, x] = ham + cfg.gradient_weight * gd
    r = cfg.aggregate_radius
    agg = np.zeros_like(raw)
    for y in range(h):
        for x in range(w):
            win = raw[:, max(0, y - r):y + r + 1, max(0, x - r):x + r + 1]
            agg[:, y, x] = win.reshape(max_disp + 1, -1).mean(1)
    k = cfg.window_shift  # shiftable windows: the least window cost within k px
    best = np.empty_like(agg)
    for y in range(h):
        for x in range(w):
            best[:, y, x] = agg[:, max(0, y - k):y + k + 1, max(0, x - k):x + k + 1].reshape(max_disp + 1, -1).min(1)
    return best, maxc


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    left = torch.rand(1, 3, 9, 14, generator=g, dtype=torch.float64).float()
    right = torch.rand(1, 3, 9, 14, generator=g, dtype=torch.float64).float()
    return left, right


@pytest.mark.parametrize("census,shear", [(3, 0), (5, 0), (7, 0), (5, 1), (7, -1), (3, 2), (7, 0.5), (5, -0.5)])
def test_census_matches_numpy(census, shear):
    g = torch.rand(1, 1, 8, 11, generator=torch.Generator().manual_seed(1))
    codes = census_transform(g, census, shear)
    bits = _census_np(g[0, 0].numpy(), census, shear)
    code = sum(bits[k].astype(np.int64) << k for k in range(bits.shape[0]))
    np.testing.assert_array_equal(codes[0, 0].numpy(), code)
    for step in (2, 3):  # every step-th row: the same codes
        assert torch.equal(census_transform(g, census, shear, step), codes[..., ::step, :])


def test_census_wider_than_a_code_is_an_error():
    with pytest.raises(ValueError, match="9x9"):
        census_transform(torch.rand(1, 1, 12, 12), 9)


def test_popcount():
    """numpy's bitwise_count (the CPU path) and the SWAR bit tricks (other devices) count the same bits."""
    x = torch.randint(0, 2 ** 62, (1000,), dtype=torch.int64) >> torch.randint(0, 62, (1000,))  # all bit counts
    ref = torch.tensor([bin(int(v)).count("1") for v in x])
    assert torch.equal(popcount(x.clone()).long(), ref)
    assert torch.equal(swar_popcount(x.clone()), ref)


def test_shifted_op_matches_a_loop():
    """Every disparity's slice is op(left, right(x - d)), column 0 where x - d < 0: XOR of census codes, differences
    of gradients."""
    g = torch.Generator().manual_seed(3)
    codes = [torch.randint(0, 2 ** 48, (2, 5, 9), generator=g, dtype=torch.int64) for _ in range(2)]
    grads = [torch.randn(2, 5, 9, generator=g) for _ in range(2)]
    for op, (left, right) in ((torch.bitwise_xor, codes), (torch.sub, grads)):
        for step in (1, 2, 3):  # every step-th left column
            out = shifted_op(op, left, right, 2, 12, step)
            assert out.shape == (2, 10, 5, len(range(0, 9, step)))
            for j, d in enumerate(range(2, 12)):
                for i, x in enumerate(range(0, 9, step)):
                    assert torch.equal(out[:, j, :, i], op(left[..., x], right[..., max(x - d, 0)]))


def test_raw_cost_of_sampled_columns_and_rows_is_the_full_cost_sampled(pair):
    """The shear choice's costs at every other row and column are the full-resolution costs (census, gradient
    and learned-feature terms, invalid entries) read there, also where a sheared right census is used."""
    left, right = pair
    with torch.random.fork_rng():  # a fixed random net without touching the session's generator
        torch.manual_seed(0)
        net = MatchingFeatures()
    cfg = CostConfig(census=5, gradient_weight=0.5)

    def features(step: int):  # left, and right with the census of shear 1, of every step-th row
        return (cost_module._features(left, cfg, net, step),
                cost_module._sheared_features(cost_module._features(right, cfg, net, step), cfg, 1.0))

    with torch.no_grad():
        full = cost_module.raw_cost_chunk(*features(1), 1, 10, cfg)
        for step in (2, 3):
            sampled = cost_module.raw_cost_chunk(*features(step), 1, 10, cfg, step)
            torch.testing.assert_close(sampled, full[..., ::step, ::step], rtol=0, atol=1e-6)


@pytest.mark.parametrize("store,shift", [("float16", 0), ("uint8", 0), ("float16", 1), ("uint8", 2)])
def test_cost_volume_matches_bruteforce(pair, store, shift):
    left, right = pair
    cfg = CostConfig(census=5, gradient_weight=0.5, aggregate_radius=1, guided_eps=0.0, sgm=SGMConfig(paths=0),
                     chunk=3, store=store, shears=(), window_shift=shift)
    vol = cost_volume(left, right, 6, cfg)
    ref, maxc = _cost_np(left[0].double().numpy(), right[0].double().numpy(), 6, cfg)
    got = vol.as_float()[0].double().numpy()
    tol = maxc / 254 * 0.51 if store == "uint8" else 2e-3 * maxc
    valid = np.arange(14)[None, None, :] >= np.arange(7)[:, None, None]
    np.testing.assert_allclose(got[np.broadcast_to(valid, got.shape)], ref[np.broadcast_to(valid, ref.shape)],
                               atol=tol)
    assert np.all(got[~np.broadcast_to(valid, got.shape)] == pytest.approx(maxc))


@pytest.mark.parametrize("shear,first,d0,d1", [(0, 2, 2, 7), (1, 0, 2, 6), (-2, 1, 1, 8), (1, 3, 3, 9),
                                               (0.5, 1, 2, 6), (-0.5, 0, 0, 7)])
def test_sheared_window_mean_matches_a_loop(shear, first, d0, d1):
    """out[j, y, x]: the mean of raw[d0 + j + round(shear dy) - first, y + dy, x + dx] over the terms that exist."""
    g = torch.Generator().manual_seed(int(10 * shear) + 50)
    raw = torch.rand(2, 7, 6, 9, generator=g, dtype=torch.float64)
    radius = 2
    got = sheared_window_mean(raw, first, d0, d1, radius, shear)
    ref = np.zeros((2, d1 - d0, 6, 9))
    r = raw.numpy()
    for j, d in enumerate(range(d0, d1)):
        for y in range(6):
            for x in range(9):
                terms = [r[:, d + _shift(shear, dy) - first, y + dy, x + dx]
                         for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
                         if 0 <= y + dy < 6 and 0 <= x + dx < 9 and 0 <= d + _shift(shear, dy) - first < 7]
                ref[:, j, y, x] = np.mean(terms, 0)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12)
    torch.testing.assert_close(sheared_window_mean(raw, 0, 0, 7, radius, 0), box_mean(raw, radius))


def floor_pair(h: int = 24, w: int = 90, seed: int = 3):
    """A random texture whose right view shifts row y by d(y) = 4 + y (a floor at a grazing angle, 1 px per row)."""
    g = torch.Generator().manual_seed(seed)
    tex = torch.rand(1, 1, h, w + 40, generator=g)
    d = torch.arange(h) + 4
    right = torch.stack([tex[0, 0, y, d[y]:d[y] + w] for y in range(h)])[None, None]
    return tex[..., :w], right, d


def test_a_floor_matches_exactly_under_its_shear_and_badly_upright():
    """On a floor rising 1 px per row the window sheared by 1 compares the same pixels as the left window: zero
    cost at the true disparity and a correct winner everywhere inside; upright windows mix rows of other
    disparities, so the same winners fail on many pixels."""
    left, right, d = floor_pair()
    base = dict(census=5, aggregate_radius=1, guided_eps=0.0, sgm=SGMConfig(paths=0), store="float16", chunk=7)
    inside = (slice(None), slice(3, -3), slice(40, -3))  # windows inside both images at every disparity tried
    truth = d.view(1, -1, 1).expand(1, 24, 90)
    sheared = cost_volume(left, right, 32, CostConfig(shears=(1, -1), **base))
    choice = shear_choice(left, right, 32, CostConfig(shears=(1, -1), **base))
    assert bool((choice[inside] == 1).all())
    c = sheared.as_float()
    assert float(c.gather(1, truth[:, None])[:, 0][inside].max()) == 0.0
    assert bool((coupled_search(sheared)[0][inside] == truth[inside]).all())
    upright = cost_volume(left, right, 32, CostConfig(shears=(), **base))
    assert float(upright.as_float().gather(1, truth[:, None])[:, 0][inside].min()) > 0.1
    assert float((coupled_search(upright)[0][inside] == truth[inside]).float().mean()) < 0.5


def test_upright_pairs_keep_upright_windows(pair):
    """A constant disparity: no shear is clearly better anywhere, the volume is the upright one."""
    left = pair[0]
    right = torch.roll(left, -3, -1)
    cfg = CostConfig(shears=(-1, 1))
    assert bool((shear_choice(left, right, 6, cfg)[..., 3:-3, 6:-3] == 0).all())
    assert torch.equal(cost_volume(left, right, 6, cfg).cost[..., 3:-3, 6:-3],
                       cost_volume(left, right, 6, CostConfig(shears=()), ).cost[..., 3:-3, 6:-3])


def test_shear_choice_and_volume_do_not_depend_on_bands_and_chunks(monkeypatch):
    left, right, _ = floor_pair(h=30)
    cfg = CostConfig(chunk=16)
    choice, whole = shear_choice(left, right, 36, cfg), cost_volume(left, right, 36, cfg).cost
    assert bool((choice == cfg.shears.index(1) + 1).any()) and bool((choice == 0).any())  # shear +1 on the floor
    monkeypatch.setattr(cost_module, "CHUNK_VALUES", 90 * 4 * 5)  # choice bands of 2 x 5 rows, chunks of 4 disparities
    monkeypatch.setattr(cost_module, "BAND_VALUES", 37 * 90 * 7)  # SGM bands of 7 rows
    assert torch.equal(shear_choice(left, right, 36, cfg), choice)
    diff = (cost_volume(left, right, 36, cfg).cost.int() - whole.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3


def test_shear_choice_progress_bar_counts_its_bands(monkeypatch):
    steps = []
    monkeypatch.setattr(cost_module, "progress_bar", RecordingBar.factory(steps))
    monkeypatch.setattr(cost_module, "CHUNK_VALUES", 90 * 16 * 4)  # bands of 2 x 4 rows at the default chunk of 16
    left, right, _ = floor_pair()
    shear_choice(left, right, 32, CostConfig(), progress=True)
    assert steps == [3] + [1] * 3 + ["closed"]  # 24 rows


def test_chunking_gives_identical_volumes(pair):
    left, right = pair
    vols = [cost_volume(left, right, 9, CostConfig(chunk=c)).cost for c in (1, 4, 16)]
    assert torch.equal(vols[0], vols[1]) and torch.equal(vols[0], vols[2])


def test_wta_search_and_chunks(pair):
    left, right = pair
    vol = cost_volume(left, right, 9, CostConfig(store="float16"))
    c = vol.as_float()
    for chunk in (1, 5, 16):
        arg, val = coupled_search(vol, chunk=chunk)
        torch.testing.assert_close(val, c.min(1).values)
        assert torch.equal(c.gather(1, arg[:, None])[:, 0], c.min(1).values)
    u = torch.full((1, 9, 14), 4.0)
    arg, _ = coupled_search(vol, u, 0.3, chunk=4)
    d = torch.arange(10.0).view(1, -1, 1, 1)
    ref = (c + 0.3 * (d - u[:, None]) ** 2).argmin(1)
    assert torch.equal(arg, ref)


@pytest.mark.parametrize("theta", [0.0005, 0.004, 0.05, 0.3, 2.0])  # the first two: the whole range
def test_coupled_search_window_equals_the_full_search(theta):
    """The coupled search reads only a window around u: its minimum and argmin (ties to the smallest disparity) are
    the brute-force ones over the whole range, also for u beyond either end and on quantised (tied) uint8 costs."""
    g = torch.Generator().manual_seed(5)
    vol = CostVolume(torch.randint(0, 256, (2, 41, 6, 7), generator=g, dtype=torch.uint8), 1.3)
    u = torch.rand(2, 6, 7, generator=g) * 50 - 5  # -5 .. 45 over disparities 0 .. 40
    u[0, 0, :3] = torch.tensor([3.5, 0.5, 39.5])  # halfway between two disparities
    c = vol.as_float()
    d = torch.arange(41.0).view(1, -1, 1, 1)
    total = c + theta * (d - u[:, None]) ** 2
    arg, val = coupled_search(vol, u, theta, chunk=3)
    assert torch.equal(val, total.min(1).values)
    assert torch.equal(arg, total.argmin(1))


def test_right_winner_matches_sheared_volume(pair):
    left, right = pair
    vol = cost_volume(left, right, 5, CostConfig(store="float16"))
    c = vol.as_float()[0].numpy()
    arg = right_winner(vol)[0].numpy()
    n, h, w = c.shape
    for y in range(h):
        for xr in range(w):
            vals = [c[d, y, xr + d] if xr + d < w else np.inf for d in range(n)]
            assert arg[y, xr] == int(np.argmin(vals))


def test_quadratic_fit_recovers_parabola():
    h, w, n = 4, 5, 12
    g = torch.Generator().manual_seed(3)
    m = 2 + 7 * torch.rand(1, h, w, generator=g)  # true minimum, interior
    k = 0.05 + torch.rand(1, h, w, generator=g)  # curvature
    d = torch.arange(n, dtype=torch.float32).view(1, -1, 1, 1)
    cost = 0.5 * k[:, None] * (d - m[:, None]) ** 2 + 0.1
    vol = CostVolume(cost.half() if False else cost, 1.0)  # float32 volume read as-is (scale 1)
    v, _ = coupled_search(vol)
    fit = quadratic_fit(vol, v)
    torch.testing.assert_close(fit.z, m, atol=1e-4, rtol=0)
    torch.testing.assert_close(fit.curvature, k, atol=1e-4, rtol=0)  # 2nd difference of k/2 x^2 is k


def test_quadratic_fit_matches_numpy_polyfit():
    g = torch.Generator().manual_seed(4)
    cost = torch.rand(1, 8, 3, 3, generator=g)
    vol = CostVolume(cost, 1.0)
    v = torch.full((1, 3, 3), 3, dtype=torch.long)
    fit = quadratic_fit(vol, v)
    for y in range(3):
        for x in range(3):
            a, b, _ = np.polyfit([2, 3, 4], cost[0, 2:5, y, x].double().numpy(), 2)
            if a > 0 and abs(-b / (2 * a) - 3) <= 0.5:
                assert float(fit.z[0, y, x]) == pytest.approx(-b / (2 * a), abs=1e-4)
                assert float(fit.curvature[0, y, x]) == pytest.approx(2 * a, abs=1e-4)


@pytest.mark.parametrize("args", [
    (torch.rand(1, 3, 8, 10), torch.rand(1, 3, 8, 11), 4),
    (torch.rand(3, 8, 10), torch.rand(3, 8, 10), 4),
    (torch.rand(1, 3, 8, 10), torch.rand(1, 3, 8, 10), 0),
    (torch.rand(1, 3, 8, 10), torch.rand(1, 3, 8, 10), 10),
])
def test_bad_input_raises(args):
    with pytest.raises(ValueError, match="shape|max_disp"):
        cost_volume(*args)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="census"):
        CostConfig(census=4)
    with pytest.raises(ValueError, match="store"):
        CostConfig(store="int4")
    for shears in ((0,), (1, 1), (float("nan"),), (True,), ("1",)):
        with pytest.raises(ValueError, match="shears"):
            CostConfig(shears=shears)
    for shift in (-1, 0.5, True):
        with pytest.raises(ValueError, match="window_shift"):
            CostConfig(window_shift=shift)
    with pytest.raises(ValueError, match="shear_radius"):
        CostConfig(shear_radius=-1)
    with pytest.raises(ValueError, match="shear_margin"):
        CostConfig(shear_margin=1.0)
    assert CostConfig(shears=[1, -0.5]).shears == (1, -0.5)


def test_big_images_use_smaller_chunks_and_the_volume_does_not_change(monkeypatch):
    import gbp_torch.tasks.stereo.cost as cost_module

    left, right = torch.rand(2, 1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    cfg = CostConfig(chunk=16)
    assert cfg.chunk_for(left) == 16
    ref = cost_volume(left, right, 12, cfg).cost
    monkeypatch.setattr(cost_module, "CHUNK_VALUES", 20 * 30)  # one disparity per chunk at this size
    assert cfg.chunk_for(left) == 1
    assert torch.equal(cost_volume(left, right, 12, cfg).cost, ref)


@pytest.mark.parametrize("seed", range(6))
def test_taker_runs_cover_the_taken_rows_and_merge_short_gaps(seed):
    """Against a row-by-row walk: runs cover every taken row and no untaken row at their ends, and two runs are
    merged exactly when at most gap - 1 untaken rows part them."""
    g = torch.Generator().manual_seed(seed)
    rows = torch.rand(60, generator=g) < 0.15 * (seed + 1) / 3
    gap = seed % 4 + 1
    expected = []
    for y in range(60):
        if rows[y]:
            if expected and y - expected[-1][1] < gap:
                expected[-1][1] = y + 1
            else:
                expected.append([y, y + 1])
    assert cost_module.taker_runs(rows, gap) == [tuple(r) for r in expected]


@pytest.mark.parametrize("n", [2, 7])
def test_winner_searches_of_a_uint8_volume_equal_the_float_searches(n):
    """Winner-take-all, second best (excluding +-1 of the winner) and the right view's winner compare the stored uint8
    values: the same minima, and the same ties to the smallest disparity, as on the floats (where the invalid 255
    and 254 are both max_cost); with two disparities the second best is +inf."""
    g = torch.Generator().manual_seed(n)
    stored = torch.randint(240, 256, (2, n, 5, 9), generator=g, dtype=torch.uint8)  # many ties, 254 against 255
    stored[:, :, 0] = torch.randint(0, 256, (2, n, 9), generator=g, dtype=torch.uint8)
    vol = CostVolume(stored, 1.3)
    c = vol.as_float()
    d = torch.arange(n).view(1, -1, 1, 1)
    arg, val = coupled_search(vol, chunk=3)
    assert torch.equal(val, c.min(1).values) and torch.equal(arg, c.argmin(1))
    second = c.masked_fill((d - arg[:, None]).abs() <= 1, float("inf"))
    arg2, val2 = coupled_search(vol, exclude=arg, chunk=3)
    assert torch.equal(val2, second.min(1).values) and torch.equal(arg2, second.argmin(1))
    assert bool(torch.isinf(val2).all()) == (n == 2)
    x = torch.arange(9).view(1, 1, 1, -1)
    right = c.gather(3, (x + d).clamp(max=8).expand_as(c)).masked_fill(x + d > 8, float("inf"))
    assert torch.equal(right_winner(vol), right.argmin(1))

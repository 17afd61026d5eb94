"""Cost volume against a brute-force numpy loop; chunking; the quadratic fit; bad shapes."""

import numpy as np
import pytest
import torch

from gbp_torch.tasks.stereo.cost import CostConfig, CostVolume, census_transform, cost_volume, popcount
from gbp_torch.tasks.stereo.search import coupled_search, quadratic_fit, right_winner
from gbp_torch.tasks.stereo.sgm import SGMConfig


def _census_np(g, win):
    r = win // 2
    h, w = g.shape
    p = np.pad(g, r, mode="edge")
    bits = []
    for dy in range(win):
        for dx in range(win):
            if dy == r and dx == r:
                continue
            bits.append(p[dy:dy + h, dx:dx + w] < g)
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
    return agg, maxc


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    left = torch.rand(1, 3, 9, 14, generator=g, dtype=torch.float64).float()
    right = torch.rand(1, 3, 9, 14, generator=g, dtype=torch.float64).float()
    return left, right


@pytest.mark.parametrize("census", [3, 5, 7])
def test_census_matches_numpy(census):
    g = torch.rand(1, 1, 8, 11, generator=torch.Generator().manual_seed(1))
    codes = census_transform(g, census)
    bits = _census_np(g[0, 0].numpy(), census)
    words = []
    for wi in range(codes.shape[1]):
        part = bits[24 * wi:24 * wi + 24]
        words.append(sum(part[k].astype(np.int64) << k for k in range(part.shape[0])))
    np.testing.assert_array_equal(codes[0].numpy(), np.stack(words))


def test_popcount():
    x = torch.randint(0, 2 ** 24, (1000,), dtype=torch.int32)
    ref = torch.tensor([bin(int(v)).count("1") for v in x])
    assert torch.equal(popcount(x.clone()), ref.int())


@pytest.mark.parametrize("store", ["float16", "uint8"])
def test_cost_volume_matches_bruteforce(pair, store):
    left, right = pair
    cfg = CostConfig(census=5, gradient_weight=0.5, aggregate_radius=1, guided_eps=0.0, sgm=SGMConfig(paths=0),
                     chunk=3, store=store)
    vol = cost_volume(left, right, 6, cfg)
    ref, maxc = _cost_np(left[0].double().numpy(), right[0].double().numpy(), 6, cfg)
    got = vol.as_float()[0].double().numpy()
    tol = maxc / 254 * 0.51 if store == "uint8" else 2e-3 * maxc
    valid = np.arange(14)[None, None, :] >= np.arange(7)[:, None, None]
    np.testing.assert_allclose(got[np.broadcast_to(valid, got.shape)], ref[np.broadcast_to(valid, ref.shape)],
                               atol=tol)
    assert np.all(got[~np.broadcast_to(valid, got.shape)] == pytest.approx(maxc))


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


def test_right_winner_matches_sheared_volume(pair):
    left, right = pair
    vol = cost_volume(left, right, 5, CostConfig(store="float16"))
    c = vol.as_float()[0].numpy()
    arg = right_winner(vol, chunk=2)[0].numpy()
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


def test_big_images_use_smaller_chunks_and_the_volume_does_not_change(monkeypatch):
    import gbp_torch.tasks.stereo.cost as cost_module

    left, right = torch.rand(2, 1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    cfg = CostConfig(chunk=16)
    assert cfg.chunk_for(left) == 16
    ref = cost_volume(left, right, 12, cfg).cost
    monkeypatch.setattr(cost_module, "CHUNK_VALUES", 20 * 30)  # one disparity per chunk at this size
    assert cfg.chunk_for(left) == 1
    assert torch.equal(cost_volume(left, right, 12, cfg).cost, ref)

"""Block matching against a brute-force numpy search over every pixel and offset."""

import numpy as np
import pytest
import torch

from gbp_torch.vision.block_matching import _k_smallest, block_match, window_cells


def brute_force(img: np.ndarray, k: int, patch: int, radius: int, cell: int, exclude: int) -> np.ndarray:
    """(B, K, H, W) distances: per pixel the best offset of each square, the k best squares (inf: missing)."""
    p = patch // 2
    pad = np.pad(img, ((0, 0), (0, 0), (p, p), (p, p)), mode="edge")
    bsz, _, h, w = img.shape
    out = np.full((bsz, k, h, w), np.inf)
    for b in range(bsz):
        for y in range(h):
            for x in range(w):
                best = {}
                for dy in range(-radius, radius + 1):
                    for dx in range(-radius, radius + 1):
                        yy, xx = y + dy, x + dx
                        if max(abs(dy), abs(dx)) <= exclude or not (0 <= yy < h and 0 <= xx < w):
                            continue
                        here, there = pad[b, :, y:y + patch, x:x + patch], pad[b, :, yy:yy + patch, xx:xx + patch]
                        d = ((here - there) ** 2).mean()
                        key = ((dy + radius) // cell, (dx + radius) // cell)
                        best[key] = min(best.get(key, np.inf), d)
                ds = np.sort(list(best.values()))[:k]
                out[b, : len(ds), y, x] = ds
    return out


@pytest.mark.parametrize("cell,exclude", [(1, 1), (3, 1), (2, 0)])
def test_distances_match_brute_force(cell, exclude):
    g = torch.Generator().manual_seed(cell)
    img = torch.rand(2, 2, 9, 11, generator=g, dtype=torch.float64)
    m = block_match(img, k=4, patch=3, radius=3, cell=cell, exclude=exclude)
    ref = brute_force(img.numpy(), 4, 3, 3, cell, exclude)
    assert np.array_equal(np.isinf(ref), np.isinf(m.dist.numpy()))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(m.dist.numpy()[fin], ref[fin], rtol=1e-10, atol=1e-14)


def test_float32_keys_round_distances_within_their_bound():
    """float32 keys keep 23 - bits mantissa bits (bits = 9 here: 176 offsets, numbered 0..351): distances are
    the exact ones to 2^-14 relative, and a chosen partner is never worse than the exact k-th best by more."""
    g = torch.Generator().manual_seed(4)
    img = torch.rand(1, 1, 30, 34, generator=g, dtype=torch.float64)
    ref = brute_force(img.numpy(), 8, 7, 9, 3, 1)
    m = block_match(img.float(), k=8, patch=7, radius=9, cell=3)
    fin = np.isfinite(ref)
    assert np.array_equal(fin, np.isfinite(m.dist.numpy()))
    np.testing.assert_allclose(m.dist.double().numpy()[fin], ref[fin], rtol=2.0 ** -14 + 1e-6, atol=1e-7)


def test_index_offset_and_distance_agree():
    """Every partner is inside the image, at the returned offset, with the returned patch distance."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(1, 1, 12, 10, generator=g, dtype=torch.float64)
    m = block_match(img, k=6, patch=5, radius=4)
    pad = np.pad(img.numpy()[0, 0], 2, mode="edge")
    h, w = 12, 10
    for y in range(h):
        for x in range(w):
            for k in range(6):
                yy, xx = divmod(int(m.index[0, k, y, x]), w)
                assert (yy - y, xx - x) == tuple(m.offset[0, k, :, y, x].tolist())
                if not torch.isfinite(m.dist[0, k, y, x]):  # fewer squares inside the image: no partner
                    assert (yy, xx) == (y, x)
                    continue
                d = ((pad[y:y + 5, x:x + 5] - pad[yy:yy + 5, xx:xx + 5]) ** 2).mean()
                assert d == pytest.approx(float(m.dist[0, k, y, x]), rel=1e-10, abs=1e-14)
    assert (m.dist[:, 1:] >= m.dist[:, :-1]).all()
    assert torch.isinf(m.dist[0, :, 0, 0]).any() and torch.isfinite(m.dist[0, :, 6, 5]).all()


def test_repeated_texture_finds_its_period():
    """A pattern of period 5 along x: the best partner of every pixel is at distance 0, 5 columns away."""
    row = torch.rand(5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).repeat(6)
    img = (row.view(1, -1) + torch.linspace(0, 1, 16, dtype=torch.float64).view(-1, 1)).view(1, 1, 16, 30)
    m = block_match(img, k=2, patch=3, radius=6, cell=1)
    inner = m.dist[0, 0, :, 6:-6]
    assert inner.abs().max() < 1e-12
    assert set(m.offset[0, 0, 1, :, 6:-6].abs().unique().tolist()) <= {5, 10}


@pytest.mark.parametrize("groups,k", [(1, 1), (5, 5), (48, 8), (9, 3)])
def test_insertion_network_gives_the_k_smallest_in_order(groups, k):
    g = torch.Generator().manual_seed(groups)
    keys = torch.randint(-50, 50, (2, groups, 6, 7), generator=g, dtype=torch.int32)  # with repeats
    assert torch.equal(_k_smallest(keys, k), keys.sort(1).values[:, :k])


def test_window_cells_pair_each_offset_with_its_mirror():
    off, cells = window_cells(radius=4, cell=3, exclude=1)
    assert len(off) == (9 * 9 - 9) // 2
    n = 3  # ceil(9 / 3)
    for (dy, dx), (c, cm) in zip(off.tolist(), cells.tolist()):
        assert c == (dy + 4) // 3 * n + (dx + 4) // 3 and cm == (-dy + 4) // 3 * n + (-dx + 4) // 3


@pytest.mark.parametrize("kwargs,match", [({"patch": 4}, "patch"), ({"k": 99}, "k must"),
                                          ({"radius": 2, "exclude": 2}, "exclude")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        block_match(torch.rand(1, 1, 8, 8), **kwargs)


def test_overflowing_distances_count_as_no_partner():
    """Squared differences of 1e20 overflow float32 to inf: such candidates read as missing (offset 0, the
    pixel itself), as the docstring promises, not as a partner at an infinite distance."""
    img = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    img[..., :8, :] *= 1e20
    m = block_match(img, k=4, patch=3, radius=3, cell=1)
    missing = torch.isinf(m.dist)
    assert missing.any()
    assert (m.offset.abs().sum(2)[missing] == 0).all()
    own = torch.arange(16 * 16).view(1, 1, 16, 16).expand_as(m.index)
    assert torch.equal(m.index[missing], own[missing])


def test_nan_image_is_refused():
    img = torch.rand(1, 1, 8, 8)
    img[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        block_match(img, k=2, radius=3)


def test_tiled_matching_equals_whole_image():
    g = torch.Generator().manual_seed(7)
    img = torch.rand(2, 1, 45, 38, generator=g, dtype=torch.float64)
    whole = block_match(img, k=5, patch=5, radius=4)
    tiled = block_match(img, k=5, patch=5, radius=4, tile=16)
    assert torch.equal(tiled.index, whole.index) and torch.equal(tiled.offset, whole.offset)
    torch.testing.assert_close(tiled.dist, whole.dist, rtol=1e-12, atol=1e-14)

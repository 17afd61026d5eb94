"""The right view's row offset (gbp_torch.tasks.stereo.rows): its costs against a loop, the offsets of pairs rendered
with known ones, and the stereo model on a pair whose rectification is a row off."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gbp_torch.tasks.stereo import SwappedViewsWarning, rows
from gbp_torch.tasks.stereo.cost import CostConfig
from gbp_torch.tasks.stereo.handset import HandsetStereo
from gbp_torch.vision.census import census_transform

from .stereo_helpers import texture

MARGIN = 8


def offset_pair(h: int, w: int, d: float, e: float, seed: int = 0, blur: float = 1.0, tilt: float = 0.0):
    """left = tex(x, y), right(x, y) = tex(x + d, y - e(x)), so that left(x, y) matches right(x - d, y + e(x)); e(x) =
    e + tilt (x / (W - 1) - 1/2) (a row offset that changes by ``tilt`` rows across the width); both sampled (bicubic)
    from one texture with a margin. (1, 1, H, W) float32 each."""
    tex = texture(h + 2 * MARGIN, w + 2 * MARGIN, seed, blur)
    hh, ww = tex.shape[-2:]
    change = tilt * (torch.arange(w, dtype=torch.float64) / (w - 1) - 0.5)

    def sample(dx: float, dy: float, rows: torch.Tensor) -> torch.Tensor:
        y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64) + MARGIN + dy,
                              torch.arange(w, dtype=torch.float64) + MARGIN + dx, indexing="ij")
        y = y + rows
        grid = torch.stack([2 * x / (ww - 1) - 1, 2 * y / (hh - 1) - 1], -1)[None]
        return F.grid_sample(tex, grid, mode="bicubic", padding_mode="border", align_corners=True).float()

    return sample(0.0, 0.0, torch.zeros(w, dtype=torch.float64)), sample(d, -e, -change)


def test_match_costs_equal_a_loop():
    g = torch.Generator().manual_seed(3)
    left, right = torch.rand(2, 1, 1, 14, 21, generator=g)
    max_disp, reach = 4, 2
    got = rows.match_costs(left, right, max_disp, reach)
    cl = census_transform(left, rows.CENSUS_WINDOW)[0, 0].numpy()
    cr = census_transform(right, rows.CENSUS_WINDOW)[0, 0].numpy()
    h, w = cl.shape

    def least(y, x, e, sign):
        return min(bin(int(cl[y, x]) ^ int(cr[min(max(y + e, 0), h - 1), x - sign * d])).count("1")
                   for d in range(max_disp + 1))

    expected = [np.mean([least(y, x, e, 1) for y in range(reach, h - reach) for x in range(max_disp, w)])
                for e in range(-reach, reach + 1)]
    mirrored = np.mean([least(y, x, 0, -1) for y in range(reach, h - reach) for x in range(w - max_disp)])
    np.testing.assert_allclose(got.offsets[0].numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(float(got.mirrored[0]), mirrored, rtol=1e-12)
    # the strips: the same means over each third of the columns x >= max_disp (17 columns: 6, 5, 6)
    thirds = [range(4, 10), range(10, 15), range(15, 21)]
    strips = [[np.mean([least(y, x, e, 1) for y in range(reach, h - reach) for x in cols]) for cols in thirds]
              for e in range(-reach, reach + 1)]
    np.testing.assert_allclose(got.strips[0].numpy(), strips, rtol=1e-12)
    np.testing.assert_allclose(got.strip_columns.numpy(), [6.5, 12.0, 17.5])


def _offset(left, right, max_disp, reach=3):
    return rows.row_offset(rows.match_costs(left, right, max_disp, reach))


@pytest.mark.parametrize("e", [0.0, 0.5, -1.0, 1.5, -2.0])
def test_row_offset_recovers_the_rendered_offset(e):
    left, right = offset_pair(96, 128, 5.0, e)
    got = float(_offset(left, right, 12)[0])
    assert abs(got - e) < (0.05 if e == int(e) else 0.12)


def test_a_rectified_pair_is_left_alone_and_a_batch_is_aligned_item_by_item():
    left0, right0 = offset_pair(64, 96, 4.0, 0.0, seed=1)
    same, offset, _ = rows.align_rows(right0, _offset(left0, right0, 10))
    assert same is right0 and offset.tolist() == [0.0]
    left1, right1 = offset_pair(64, 96, 4.0, 1.0, seed=2)
    offsets = _offset(torch.cat([left0, left1]), torch.cat([right0, right1]), 10)
    both, applied, _ = rows.align_rows(torch.cat([right0, right1]), offsets)
    alone, offset1, _ = rows.align_rows(right1, _offset(left1, right1, 10))
    assert applied[0] == 0 and applied[1] == offset1[0] and abs(float(offset1[0]) - 1.0) < 0.05
    assert torch.equal(both[0], right0[0]) and torch.allclose(both[1], alone[0], atol=1e-6)
    assert _offset(left1, right1, 10, reach=0).tolist() == [0.0]


def test_a_pair_a_row_off_is_matched_after_resampling():
    """Constant disparity 6 px with the right view a row off: found with the offset estimate, lost without it (a
    fine texture, whose rows a row apart do not look alike)."""
    left, right = offset_pair(96, 128, 6.0, 1.0, seed=4, blur=0.4)
    inner = (slice(None), slice(None), slice(8, -8), slice(24, -8))
    errors = {}
    for reach in (3, 0):
        out = HandsetStereo(cost=CostConfig(row_reach=reach))(left, right, 16)
        errors[reach] = (out.disparity - 6.0)[inner].abs()
        assert out.row_offset.shape == (1,)
    assert float(errors[3].median()) < 0.01 and float((errors[3] > 1).float().mean()) == 0
    assert float((errors[0] > 1).float().mean()) > 0.3


def test_a_negative_row_reach_is_refused():
    with pytest.raises(ValueError, match="row_reach"):
        CostConfig(row_reach=-1)


def test_swapped_views_are_recognised_item_by_item_and_the_model_warns():
    left, right = offset_pair(64, 96, 5.0, 0.0, seed=5)
    costs = rows.match_costs(torch.cat([left, right]), torch.cat([right, left]), 12, 0)
    assert rows.looks_swapped(costs).tolist() == [False, True]
    model = HandsetStereo()
    with pytest.warns(SwappedViewsWarning, match="swapped"):
        model(right, left, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SwappedViewsWarning)
        model(left, right, 12)


@pytest.mark.parametrize("shape", [(1, 64), (8, 8), (40, 64)])
def test_tiny_or_blank_pairs_are_left_as_they_are(shape):
    """Too few pixels to estimate from (a 1-row image crashed the row sampling; an 8 x 8 noise pair read 0.18 rows) or
    blank views (equal costs everywhere read -3 rows): no offset, no swapped-views verdict, and the model runs."""
    h, w = shape
    g = torch.Generator().manual_seed(7)
    left = torch.rand(1, 1, h, w, generator=g) if h < 40 else torch.zeros(1, 1, h, w)
    right = left.roll(-2, -1)
    costs = rows.match_costs(left, right, 4, 3)
    assert rows.row_offset(costs).tolist() == [0.0] and rows.looks_swapped(costs).tolist() == [False]
    out = HandsetStereo()(left, right, 4)
    assert out.row_offset.tolist() == [0.0] and torch.isfinite(out.disparity).all()


def test_swapped_views_are_not_resampled():
    """Swapped views do not match at the searched disparities whatever the offset: their least offset is noise (this
    pair read -3 rows) and was resampled by it."""
    left, right = offset_pair(64, 96, 5.0, 0.0, seed=8)
    costs = rows.match_costs(torch.cat([left, right]), torch.cat([right, left]), 12, 3)
    assert rows.looks_swapped(costs).tolist() == [False, True]
    offsets = rows.row_offset(costs)
    assert abs(float(offsets[0])) < 0.05 and float(offsets[1]) == 0.0 and float(rows.row_tilt(costs, 96)[1]) == 0.0
    assert abs(int(costs.offsets[1].argmin()) - 3) > 1  # what the offset was: the rule is needed here
    with pytest.warns(SwappedViewsWarning):
        assert HandsetStereo()(right, left, 12).row_offset.tolist() == [0.0]


@pytest.mark.parametrize("tilt", [1.5, -2.0])
def test_a_tilt_across_the_width_is_estimated_and_a_rectified_pair_reads_none(tilt):
    """Rows off by -tilt/2 at the left edge to +tilt/2 at the right (a small rotation of one view): the strip fit
    finds the change across the width, the offset at the middle is about 0; a rectified pair reads no tilt at all."""
    left, right = offset_pair(96, 192, 5.0, 0.0, seed=10, tilt=tilt)
    costs = rows.match_costs(left, right, 12, 3)
    assert abs(float(rows.row_tilt(costs, 192)[0]) * 192 - tilt) < 0.35
    assert abs(float(rows.row_offset(costs)[0])) < 0.2
    flat = rows.match_costs(*offset_pair(96, 192, 5.0, 0.5, seed=10), 12, 3)
    assert float(rows.row_tilt(flat, 192)[0]) == 0.0 and abs(float(rows.row_offset(flat)[0]) - 0.5) < 0.12


def test_a_tilted_pair_is_matched_after_resampling(monkeypatch):
    """Constant disparity 6 px, rows tilted by 3 across the width, a fine texture: with the tilt resampled away no
    pixel is off by 1 px; with the constant offset alone (the tilt fit off) the pixels toward both edges fail (19 %)."""
    left, right = offset_pair(96, 192, 6.0, 0.0, seed=11, blur=0.4, tilt=3.0)
    inner = (slice(None), slice(None), slice(8, -8), slice(24, -8))
    out = HandsetStereo()(left, right, 16)
    assert abs(float(out.row_tilt[0]) - 3.0) < 0.35
    assert float(((out.disparity - 6.0)[inner].abs() > 1).float().mean()) == 0
    monkeypatch.setattr(rows, "MIN_TILT", float("inf"))
    plain = HandsetStereo()(left, right, 16)
    assert float(plain.row_tilt[0]) == 0 and float(((plain.disparity - 6.0)[inner].abs() > 1).float().mean()) > 0.1

"""The flow's discrete displacement search: a numpy loop over the definition, the level it runs at, and a motion
beyond the coarse-to-fine loop's reach recovered with it (and lost without it)."""

import dataclasses

import numpy as np
import pytest
import torch

from gbp_torch.tasks.flow.handset import HandsetFlow, HandsetFlowConfig
from gbp_torch.tasks.flow.search import AGGREGATE_RADIUS, CENSUS_WINDOW, displacement_search, search_level
from gbp_torch.vision import gaussian_blur


def _census_np(img, window):
    """Census codes by a loop over the window (bit k: k-th neighbour, row-major without the centre, darker)."""
    r = window // 2
    pad = np.pad(img, r, mode="edge")
    h, w = img.shape
    codes = np.zeros((h, w), dtype=np.int64)
    k = 0
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == dx == 0:
                continue
            codes |= (pad[r + dy:r + dy + h, r + dx:r + dx + w] < img).astype(np.int64) << k
            k += 1
    return codes


def _box_np(x, r):
    """Means over (2r+1)^2 windows, borders replicated."""
    pad = np.pad(x, r, mode="edge")
    h, w = x.shape
    return sum(pad[dy:dy + h, dx:dx + w] for dy in range(2 * r + 1) for dx in range(2 * r + 1)) / (2 * r + 1) ** 2


def _search_np(img1, img2, flow, radius, margin):
    """The search by its definition: every displacement's aggregated Hamming cost, the least and the second least,
    the incoming flow field's cost, and the take rule."""
    h, w = img1.shape
    c1, c2 = _census_np(img1, CENSUS_WINDOW), _census_np(img2, CENSUS_WINDOW)
    ys, xs = np.mgrid[0:h, 0:w]

    def cost(dx, dy):
        y, x = np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)
        ham = np.vectorize(lambda v: bin(v).count("1"))(c1 ^ c2[y, x]).astype(np.float64)
        return _box_np(ham, AGGREGATE_RADIUS)

    costs, shifts = [], []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            c = cost(dx, dy)
            c[(xs + dx < 0) | (xs + dx >= w) | (ys + dy < 0) | (ys + dy >= h)] = np.inf
            costs.append(c)
            shifts.append((dx, dy))
    costs = np.stack(costs)
    order = np.sort(costs, axis=0)
    best, second = order[0], order[1]
    arg = np.array(shifts, dtype=np.float64)[np.argmin(costs, axis=0)]  # (h, w, 2)
    # the incoming flow field's cost: each pixel's Hamming distance at its own rounded displacement, window-averaged
    rounded = np.clip(np.round(flow), -radius, radius).astype(int)
    y, x = np.clip(ys + rounded[1], 0, h - 1), np.clip(xs + rounded[0], 0, w - 1)
    own = np.array([[bin(v).count("1") for v in row] for row in c1 ^ c2[y, x]], dtype=np.float64)
    current = _box_np(own, AGGREGATE_RADIUS)
    far = (np.abs(arg.transpose(2, 0, 1) - flow) > 1).any(0)
    take = (best < (1 - margin) * current) & (second > best) & far
    return np.where(take, arg.transpose(2, 0, 1), flow), take


def test_search_matches_a_loop_over_its_definition():
    """Every pixel's choice (taken or not, and the displacement) equals the numpy loop's, on a textured pair moved by
    (3, -2) px with an incoming flow that is right in one half and zero in the other."""
    g = torch.Generator().manual_seed(3)
    base = gaussian_blur(torch.rand(1, 1, 26, 34, generator=g, dtype=torch.float64), 1.0)
    img1 = base[..., 2:24, 4:32]
    # frame 2 shows frame 1's content moved by (3, -2), with a gain, a bias and noise
    noise = 0.01 * torch.rand(img1.shape, generator=g, dtype=torch.float64)
    img2 = torch.roll(img1, shifts=(-2, 3), dims=(-2, -1)) * 0.9 + 0.05 + noise
    flow = torch.zeros(1, 2, 22, 28, dtype=torch.float64)
    flow[:, 0, :, :14], flow[:, 1, :, :14] = 3.0, -2.0
    out, take = displacement_search(img1, img2, flow, radius=4, margin=0.25)
    ref, ref_take = _search_np(img1[0, 0].numpy(), img2[0, 0].numpy(), flow[0].numpy(), 4, 0.25)
    np.testing.assert_array_equal(take[0, 0].numpy(), ref_take)
    np.testing.assert_array_equal(out[0].numpy(), ref)
    assert ref_take[:, 14:].mean() > 0.5 and ref_take[:, :14].mean() < 0.05  # the zero half moved, the right one kept


def test_search_level_is_the_finest_that_covers_the_reach():
    widths = [584, 438, 328, 246, 185, 138, 104, 78]
    assert search_level(widths, 10, 56.0) == 6  # 104 / 584 = 0.178 <= 10 / 56
    assert search_level(widths, 10, 20.0) == 3  # 328 / 584 = 0.56 > 0.5; 246 / 584 = 0.42 <= 0.5
    assert search_level(widths, 10, 1000.0) is None  # no level is coarse enough
    assert search_level(widths, 10, 0.0) is None  # reach 0: no search


def _moved_pair(shift, size=(160, 200)):
    """A blurred-noise texture and the same texture moved by ``shift`` (dx, dy) px (integers), both (1, 1, H, W)."""
    g = torch.Generator().manual_seed(1)
    h, w = size
    pad = 40
    big = gaussian_blur(torch.rand(1, 1, h + 2 * pad, w + 2 * pad, generator=g), 1.5)
    big = (big - big.mean()) / big.std() * 0.15 + 0.5
    dx, dy = shift
    frame1 = big[..., pad:pad + h, pad:pad + w]
    frame2 = big[..., pad - dy:pad - dy + h, pad - dx:pad - dx + w]
    return frame1, frame2


def test_a_motion_beyond_the_pyramid_is_recovered_with_the_search_only():
    """A (34, -12) px translation (4.3 px at the coarsest level, beyond the linearisation's reach): the default model
    recovers it within 0.1 px on the interior; without the search (search_reach 0) the flow stays near 0."""
    frame1, frame2 = _moved_pair((34, -12))
    truth = torch.tensor([34.0, -12.0]).view(1, 2, 1, 1)
    with_search = HandsetFlow()(frame1, frame2).flow
    without = HandsetFlow(dataclasses.replace(HandsetFlowConfig(), search_reach=0.0))(frame1, frame2).flow
    inner = (slice(None), slice(None), slice(30, -30), slice(50, -50))
    err_with = (with_search - truth)[inner].norm(dim=1)
    err_without = (without - truth)[inner].norm(dim=1)
    assert err_with.median() < 0.1 and (err_with < 0.5).float().mean() > 0.95
    assert err_without.median() > 10.0


@pytest.mark.parametrize("field, value", [("search_radius", 0), ("search_margin", 1.0), ("search_reach", -1.0)])
def test_a_bad_search_setting_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        HandsetFlowConfig(**{field: value})


def test_a_batch_searches_each_pair_as_alone():
    """Two pairs in one batch give each pair's own result (decisions and flows), float32 as the models run it."""
    g = torch.Generator().manual_seed(7)
    img1 = gaussian_blur(torch.rand(2, 1, 30, 36, generator=g), 1.0)
    img2 = torch.stack([torch.roll(img1[0], (1, -3), (-2, -1)), torch.roll(img1[1], (-2, 2), (-2, -1))])
    flow = torch.zeros(2, 2, 30, 36)
    both, take = displacement_search(img1, img2, flow, radius=4, margin=0.25)
    for i in range(2):
        one, one_take = displacement_search(img1[i:i + 1], img2[i:i + 1], flow[i:i + 1], radius=4, margin=0.25)
        assert torch.equal(both[i:i + 1], one) and torch.equal(take[i:i + 1], one_take)
    assert take[0].float().mean() > 0.5 and take[1].float().mean() > 0.5  # both moved pairs found
    assert (both[0, :, 8:-8, 8:-8] == torch.tensor([-3.0, 1.0]).view(2, 1, 1)).all()

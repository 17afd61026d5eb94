"""Stereo metrics against numpy hand computations; the synthetic generator; the Middlebury reader."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import sparsification_loop

from gbp_torch.tasks.stereo.metrics import (
    bad_pixels,
    coverage,
    mean_abs_error,
    sparsification_error,
    stereo_metrics,
)
from gbp_torch.tasks.stereo.synthetic import SyntheticConfig, synthetic_pair
from gbp_torch.vision import warp_disparity


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    gt = 1 + 10 * torch.rand(2, 1, 7, 9, generator=g)
    gt[0, 0, 0, :3] = 0  # unknown
    disp = gt + 3 * torch.randn(2, 1, 7, 9, generator=g)
    var = 4 * torch.rand(2, 1, 7, 9, generator=g)
    mask = torch.rand(2, 1, 7, 9, generator=g) > 0.3
    return disp, gt, var, mask


def test_metrics_match_numpy(data):
    disp, gt, var, mask = (t.numpy() for t in data)
    for b in range(2):
        m = mask[b] & (gt[b] > 0)
        err = np.abs(disp[b] - gt[b])[m]
        for t in (1.0, 2.0):
            assert float(bad_pixels(*data[:2], data[3], t)[b]) == pytest.approx(100 * np.mean(err > t))
        assert float(mean_abs_error(data[0], data[1], data[3])[b]) == pytest.approx(err.mean(), rel=1e-6)
        cov = np.mean(err < 1.96 * np.sqrt(var[b][m]))
        assert float(coverage(data[0], data[2], data[1], data[3])[b]) == pytest.approx(cov)


def test_unknown_gt_excluded_without_mask(data):
    disp, gt, _, _ = data
    known = gt[0] > 0
    ref = 100 * ((disp[0] - gt[0]).abs() > 1)[known].float().mean()
    assert float(bad_pixels(disp, gt)[0]) == pytest.approx(float(ref))


def test_stereo_metrics_keys(data):
    disp, gt, var, mask = data
    out = stereo_metrics(disp[:1], gt[:1], {"nonocc": mask[:1], "all": mask[:1] | True}, var[:1])
    assert set(out) == {"bad1_nonocc", "bad2_nonocc", "bad1_all", "bad2_all", "mae", "coverage", "ause"}


def test_sparsification_error_matches_its_definition(data):
    """Against a numpy loop over the fractions on the evaluated pixels (known ground truth, in the mask); 0 when
    the variance orders the errors; larger for a random variance than for a noisy but informative one; NaN without
    evaluated pixels or errors."""
    disp, gt, var, mask = data
    for steps in (10, 7):
        got = sparsification_error(disp, var, gt, mask, steps)
        for b in range(2):
            m = (mask[b] & (gt[b] > 0)).numpy()
            err = np.abs((disp[b] - gt[b]).numpy())[m].astype(np.float64)
            assert float(got[b]) == pytest.approx(sparsification_loop(err, var[b].numpy()[m].astype(np.float64), steps),
                                                  rel=1e-9)
    err2 = (disp - gt).square()
    assert torch.allclose(sparsification_error(disp, err2, gt, mask), torch.zeros(2, dtype=torch.float64),
                          atol=1e-12)
    g = torch.Generator().manual_seed(1)
    noisy = err2 * torch.exp(0.5 * torch.randn(err2.shape, generator=g))
    assert bool((sparsification_error(disp, noisy, gt, mask) < sparsification_error(disp, var, gt, mask)).all())
    assert bool(sparsification_error(disp, var, gt, torch.zeros_like(mask)).isnan().all())
    assert bool(sparsification_error(gt, var, gt, mask).isnan().all())
    with pytest.raises(ValueError, match="var must have the shape"):
        sparsification_error(disp, var[..., :-1], gt, mask)


def test_metrics_bad_shapes():
    with pytest.raises(ValueError, match="shape|B, 1, H, W"):
        bad_pixels(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="mask"):
        bad_pixels(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="B, 1, H, W"):
        mean_abs_error(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))


def test_synthetic_pair_is_consistent_and_seeded():
    tex = torch.rand(64, 96, generator=torch.Generator().manual_seed(0))
    tex = torch.nn.functional.avg_pool2d(tex[None, None], 3, 1, 1)[0, 0]
    a = synthetic_pair(tex, torch.Generator().manual_seed(5), 20)
    b = synthetic_pair(tex, torch.Generator().manual_seed(5), 20)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    left, right, disp, nonocc = a
    assert left.shape == right.shape == (1, 64, 96) and disp.shape == nonocc.shape == (1, 64, 96)
    assert float(disp.min()) >= 0 and float(disp.max()) <= 20
    # warping the right view by the true disparity reproduces the left view on non-occluded pixels
    # (up to the photometric change and noise), much better than on occluded ones
    warped = warp_disparity(right[None], disp[None], mode="bicubic").image[0]
    gain_bias = np.polyfit(warped[nonocc].numpy(), left[nonocc].numpy(), 1)
    fitted = gain_bias[0] * warped + gain_bias[1]
    err = (fitted - left).abs()
    assert float(err[nonocc].mean()) < 0.03
    if (~nonocc).sum() > 20:
        assert float(err[~nonocc].mean()) > 2 * float(err[nonocc].mean())


def test_tinted_synthetic_pairs_are_colour_with_the_same_scene():
    """tint > 0: three channels, the layers in different colours, the same disparity (the scene is drawn
    before the textures) and, channel by channel, a consistent pair."""
    noise = torch.rand(1, 1, 64, 96, generator=torch.Generator().manual_seed(0))
    tex = torch.nn.functional.avg_pool2d(noise, 3, 1, 1)[0, 0]
    gray = synthetic_pair(tex, torch.Generator().manual_seed(7), 20, SyntheticConfig(layers=(2, 2)))
    colour = synthetic_pair(tex, torch.Generator().manual_seed(7), 20, SyntheticConfig(layers=(2, 2), tint=0.3))
    assert gray[0].shape == (1, 64, 96) and colour[0].shape == colour[1].shape == (3, 64, 96)
    assert torch.equal(gray[2], colour[2]) and torch.equal(gray[3], colour[3])
    left = colour[0]
    ratio = left / left.mean(0, keepdim=True).clamp_min(1e-3)  # a pixel's colour, brightness divided out
    spread = ratio.flatten(1).std(1)
    assert float(spread.max()) > 0.05  # not gray: the channels' ratios vary over the layers
    warped = warp_disparity(colour[1][None], colour[2][None], mode="bicubic").image[0]
    nonocc = colour[3][0]
    for c in range(3):
        gb = np.polyfit(warped[c][nonocc].numpy(), left[c][nonocc].numpy(), 1)
        assert float((gb[0] * warped[c] + gb[1] - left[c])[nonocc].abs().mean()) < 0.03


def test_a_floor_rises_row_by_row_below_a_horizon_and_the_pair_stays_consistent():
    """floor = 1: below some row the background gives way to a plane whose disparity grows by the same step in
    [0.3, 1.0] px on every row (no layers in front here), up to at most max_disp; the pair stays consistent."""
    tex = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 80, 96, generator=torch.Generator().manual_seed(2)),
                                         3, 1, 1)[0, 0]
    for seed in range(4):
        left, right, disp, nonocc = synthetic_pair(tex, torch.Generator().manual_seed(seed), 40,
                                                   SyntheticConfig(layers=(0, 0), floor=1.0))
        steps = disp[0, 1:, 48] - disp[0, :-1, 48]  # middle column, row to row
        floor = steps[-1]
        assert 0.3 - 1e-4 <= float(floor) <= 1.0 + 1e-4
        rows = int(((steps - floor).abs() < 1e-3).sum())
        assert rows >= 2 and float(disp.max()) <= 40 + 1e-3
        assert torch.allclose(steps[-rows:], floor.expand(rows), atol=1e-3)
        warped = warp_disparity(right[None], disp[None], mode="bicubic").image[0]
        gb = np.polyfit(warped[nonocc].numpy(), left[nonocc].numpy(), 1)
        assert float((gb[0] * warped + gb[1] - left)[nonocc].abs().mean()) < 0.03


def test_supersampled_views_mix_the_surfaces_on_depth_edges_only():
    """supersample = 3: the same scene, disparity and mask (drawn before, read at the pixel centres); with flat
    layer colours (a constant texture, tinted) a point-sampled view holds one layer colour per pixel, while a
    supersampled pixel is the mean of 9 samples: a layer colour inside a layer, and on a layer boundary a mix, i.e.
    k/9 of one colour plus (9 - k)/9 of another, which a numpy loop over the pixels and colour pairs finds."""
    tex = torch.full((48, 64), 0.5)
    config = SyntheticConfig(layers=(1, 1), tint=0.6, noise=(0.0, 0.0), bias=0.0, gain=(1.0, 1.0))
    point = synthetic_pair(tex, torch.Generator().manual_seed(3), 20, config)
    area = synthetic_pair(tex, torch.Generator().manual_seed(3), 20, replace(config, supersample=3))
    assert torch.equal(point[2], area[2]) and torch.equal(point[3], area[3])
    colours = np.unique(point[0].flatten(1).T.numpy().round(4), axis=0)  # the layers' flat colours (bicubic: 1e-7)
    assert len(colours) == 2  # background and one foreground layer
    pixels = area[0].flatten(1).T.numpy()
    pure = np.abs(pixels[:, None] - colours[None]).max(-1).min(-1) < 1e-4
    mixes = [(k * a + (9 - k) * b) / 9 for a in colours for b in colours for k in range(1, 9)]
    mixed = np.array([min(np.abs(p - m).max() for m in mixes) < 1e-4 for p in pixels[~pure]])
    assert 0 < (~pure).sum() < 0.1 * len(pixels) and mixed.all()  # few (edges only), all two-colour mixes
    # a mixed pixel lies on a boundary of the point-sampled view: its 3x3 neighbourhood there holds two colours
    labels = torch.from_numpy(np.abs(point[0].flatten(1).T.numpy()[:, None] - colours[None]).max(-1).argmin(-1))
    grid = labels.view(48, 64).float()[None, None]
    spread = torch.nn.functional.max_pool2d(grid, 3, 1, 1) + torch.nn.functional.max_pool2d(-grid, 3, 1, 1)
    assert bool((spread.flatten()[torch.from_numpy(~pure)] > 0).all())
    with pytest.raises(ValueError, match="supersample"):
        SyntheticConfig(supersample=2)


def test_camouflaged_layers_look_like_the_background_and_thin_shapes_are_bars():
    """camouflage = 1: every foreground layer takes the background's contrast and tint, so a flat tinted texture gives
    one colour everywhere (two without it); thin = 1: the foreground shape is a 1-3 px wide axis-aligned bar in the left
    view (wider than 3 px both ways without it). Both draw after the scene: without thin bars the disparity is the
    same."""
    tex = torch.full((48, 64), 0.5)
    base = SyntheticConfig(layers=(1, 1), tint=0.6, noise=(0.0, 0.0), bias=0.0, gain=(1.0, 1.0))

    def colours(config, seed=3):
        left, _, disp, _ = synthetic_pair(tex, torch.Generator().manual_seed(seed), 20, config)
        pixels = left.flatten(1).T.numpy().round(4)
        return left, disp, np.unique(pixels, axis=0, return_inverse=True)

    _, disp, (plain, _) = colours(base)
    _, disp_camo, (camo, _) = colours(replace(base, camouflage=1.0))
    assert len(plain) == 2 and len(camo) == 1 and torch.equal(disp, disp_camo)
    for seed in range(4):
        widths = []
        for config in (base, replace(base, thin=1.0)):
            _, _, (found, index) = colours(config, seed)
            counts = np.bincount(index.ravel())
            fore = torch.from_numpy(index.reshape(48, 64) != counts.argmax())  # the background is the commonest colour
            widths.append(min(int(fore.any(0).sum()), int(fore.any(1).sum())))
        assert widths[0] > 3 and 1 <= widths[1] <= 3, (seed, widths)
    with pytest.raises(ValueError, match="camouflage"):
        SyntheticConfig(camouflage=1.5)


def test_synthetic_bad_input():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="texture"):
        synthetic_pair(torch.rand(2, 3, 8, 8), g, 4)
    with pytest.raises(ValueError, match="max_disp"):
        synthetic_pair(torch.rand(8, 8), g, 8)


def test_near_depth_edge_matches_a_pixel_loop():
    from gbp_torch.tasks.stereo.metrics import near_depth_edge

    g = torch.Generator().manual_seed(0)
    gt = torch.where(torch.rand(2, 1, 9, 12, generator=g) < 0.15, 8.0, 2.0) + 0.5 * torch.rand(2, 1, 9, 12, generator=g)
    got = near_depth_edge(gt, radius=1, jump=1.0)
    a = gt[:, 0].numpy()
    edge = np.zeros(a.shape, bool)
    for b in range(2):
        for y in range(9):
            for x in range(12):
                for yy, xx in ((y, x + 1), (y + 1, x)):
                    if yy < 9 and xx < 12 and abs(a[b, y, x] - a[b, yy, xx]) > 1.0:
                        edge[b, y, x] = edge[b, yy, xx] = True
    ref = np.zeros_like(edge)
    for b in range(2):
        for y in range(9):
            for x in range(12):
                ref[b, y, x] = edge[b, max(0, y - 1):y + 2, max(0, x - 1):x + 2].any()
    assert np.array_equal(got[:, 0].numpy(), ref) and ref.any() and not ref.all()
    assert torch.equal(near_depth_edge(gt[:, 0], 1), got[:, 0])  # (B, H, W) in, (B, H, W) out

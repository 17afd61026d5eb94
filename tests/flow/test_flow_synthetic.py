"""The synthetic pair generator: exact flow, exact occlusions, determinism, shape errors."""

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from gbp_torch.tasks.flow.synthetic import (
    Layers,
    SyntheticFlowConfig,
    random_layers,
    render_layers,
    synthetic_flow_pair,
)
from gbp_torch.vision import gaussian_blur, warp

CLEAN = SyntheticFlowConfig(gain=(1.0, 1.0), bias=0.0, shading=0.0, noise=(0.0, 0.0))


def _texture(h=64, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 1, h // 4, w // 4, generator=g, dtype=torch.float64)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def _near_edges(flow, invalid, radius=3):
    """Pixels within ``radius`` of an invalid pixel or of a flow jump (> 0.3 px between neighbours)."""
    jump = torch.zeros_like(invalid)
    dx = (flow[:, :, 1:] - flow[:, :, :-1]).abs().amax(0) > 0.3
    dy = (flow[:, 1:] - flow[:, :-1]).abs().amax(0) > 0.3
    jump[:, 1:] |= dx
    jump[:, :-1] |= dx
    jump[1:] |= dy
    jump[:-1] |= dy
    bad = (invalid | jump).double()[None, None]
    return F.max_pool2d(bad, 2 * radius + 1, 1, radius)[0, 0] > 0


def test_warping_frame2_by_the_flow_reproduces_frame1():
    image = _texture(72, 80)
    pair = synthetic_flow_pair(image, torch.Generator().manual_seed(3), CLEAN)
    assert pair.frame1.shape == (1, 72, 80) and pair.flow.shape == (2, 72, 80) and pair.valid.shape == (72, 80)
    warped, inside = warp(pair.frame2[None], pair.flow[None], "bicubic")
    err = (warped[0, 0] - pair.frame1[0]).abs()
    interior = pair.valid & ~_near_edges(pair.flow, ~pair.valid)
    assert interior.float().mean() > 0.4
    # two bicubic interpolations of a smooth texture (rendering, then warping back) stay this close (the
    # bound on the max allows for a layer's contrast, up to e^0.4 times the texture's)
    assert err[interior].max() < 0.03 and err[interior].quantile(0.99) < 0.01 and err[interior].median() < 1e-3
    # zero flow does not reproduce it: the motion is real
    assert (pair.frame2[0] - pair.frame1[0]).abs()[interior].mean() > 10 * err[interior].mean()


def _disk_layers(**appearance) -> Layers:
    """A static background and a disk of radius 12 at (25, 22) translated by (5, 3), on a 48 x 56 frame."""
    d = torch.float64
    return Layers(affine=torch.eye(2, dtype=d).expand(2, 2, 2).clone(),
                  centre=torch.tensor([[28.0, 24.0], [25.0, 22.0]], dtype=d),
                  translation=torch.tensor([[0.0, 0.0], [5.0, 3.0]], dtype=d),
                  elastic=None, wavevector=None, phase=None,
                  radii=torch.tensor([[1.0, 1.0], [12.0, 12.0]], dtype=d), angle=torch.zeros(2, dtype=d),
                  wobble=torch.zeros(2, 4, dtype=d), texture_op=torch.tensor([0, 3]), **appearance)


def test_occluded_pixels_are_those_covered_by_a_nearer_layer():
    # static background, a disk of radius 12 translated by (5, 3): the oracle is a disk test
    image = _texture(48, 56)
    d = torch.float64
    frame1, frame2, flow, occluded, outside = render_layers(image, _disk_layers())
    y, x = torch.meshgrid(torch.arange(48.0, dtype=d), torch.arange(56.0, dtype=d), indexing="ij")
    in_disk1 = (x - 25) ** 2 + (y - 22) ** 2 < 144
    in_disk2 = (x - 30) ** 2 + (y - 25) ** 2 < 144  # the disk's frame-2 position
    assert torch.equal(occluded, ~in_disk1 & in_disk2)
    assert torch.equal(flow[0], torch.where(in_disk1, 5.0, 0.0).to(d))
    expected_outside = in_disk1 & ((x + 5 > 55) | (y + 3 > 47))
    assert torch.equal(outside, expected_outside)
    # integer motion: frame 2 is frame 1 moved exactly, wherever the pixel stays visible
    visible = ~occluded & ~outside
    target_x, target_y = (x + flow[0]).long(), (y + flow[1]).long()
    moved = frame2[0][target_y.clamp(0, 47), target_x.clamp(0, 55)]
    assert torch.allclose(moved[visible], frame1[0][visible], atol=1e-12)


def test_each_layer_keeps_its_own_contrast_and_brightness():
    # layer 1 (the disk) at contrast 0.5 and offset +0.2 about its texture's mean; the background untouched
    image = _texture(48, 56)
    d = torch.float64
    plain = render_layers(image, _disk_layers())
    styled = render_layers(image, _disk_layers(contrast=torch.tensor([1.0, 0.5], dtype=d),
                                               offset=torch.tensor([0.0, 0.2], dtype=d)))
    disk_texture = gaussian_blur(image.flip(-1).flip(-2)[None], 0.6)[0]  # texture_op 3, the default blur
    mean = disk_texture.mean()
    y, x = torch.meshgrid(torch.arange(48.0, dtype=d), torch.arange(56.0, dtype=d), indexing="ij")
    in_disk1 = (x - 25) ** 2 + (y - 22) ** 2 < 144
    expected = torch.where(in_disk1, mean + 0.5 * (plain[0][0] - mean) + 0.2, plain[0][0])
    assert torch.allclose(styled[0][0], expected, atol=1e-12)
    offset_only = render_layers(image, _disk_layers(offset=torch.tensor([0.0, 0.2], dtype=d)))
    assert torch.allclose(offset_only[0][0], torch.where(in_disk1, plain[0][0] + 0.2, plain[0][0]), atol=1e-12)
    assert torch.equal(styled[2], plain[2]) and torch.equal(styled[3], plain[3])  # same flow, same occlusions
    # drawn pairs: the background's texture is never restyled, and contrast stays in its range
    layers = random_layers(40, 40, torch.Generator().manual_seed(4), SyntheticFlowConfig(layer_contrast=0.3))
    assert float(layers.contrast[0]) == 1.0 and float(layers.offset[0]) == 0.0
    assert bool((layers.contrast.log().abs() <= 0.3 + 1e-12).all())


def test_tinted_layers_give_colour_frames_with_each_layer_in_its_own_colour():
    image = _texture(48, 56)
    d = torch.float64
    plain = render_layers(image, _disk_layers())
    tint = torch.tensor([[1.0, 1.0, 1.0], [1.2, 0.8, 1.0]], dtype=d)
    tinted = render_layers(image, _disk_layers(tint=tint))
    assert tinted[0].shape == tinted[1].shape == (3, 48, 56)
    for c in range(3):  # each channel is the gray frame times its layer's gain
        y, x = torch.meshgrid(torch.arange(48.0, dtype=d), torch.arange(56.0, dtype=d), indexing="ij")
        gain = torch.where((x - 25) ** 2 + (y - 22) ** 2 < 144, tint[1, c], tint[0, c])
        assert torch.allclose(tinted[0][c], plain[0][0] * gain, atol=1e-12)
    assert torch.equal(tinted[2], plain[2]) and torch.equal(tinted[3], plain[3])
    # drawn pairs: the same scene as without tint (the tint is drawn last), three channels
    gray = synthetic_flow_pair(image.float(), torch.Generator().manual_seed(3), CLEAN)
    colour = synthetic_flow_pair(image.float(), torch.Generator().manual_seed(3),
                                 SyntheticFlowConfig(**{**CLEAN.__dict__, "tint": 0.3}))
    assert gray.frame1.shape[0] == 1 and colour.frame1.shape[0] == 3
    assert torch.equal(gray.flow, colour.flow) and torch.equal(gray.valid, colour.valid)


def test_seeded_and_deterministic_with_photometric_change():
    image = _texture(40, 40).float()
    a = synthetic_flow_pair(image, torch.Generator().manual_seed(7))
    b = synthetic_flow_pair(image, torch.Generator().manual_seed(7))
    c = synthetic_flow_pair(image, torch.Generator().manual_seed(8))
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert not torch.equal(a.flow, c.flow)
    assert a.frame1.dtype == torch.float32 and 0 <= a.frame2.min() and a.frame2.max() <= 1
    assert not (a.occluded & a.valid).any()


def test_defocus_blurs_both_frames_by_one_drawn_sigma_and_keeps_the_motion():
    """defocus > 0: the same scene (flow, masks), both frames the sharp ones blurred by one Gaussian whose sigma in
    [0, defocus] a grid search recovers to float64 rounding (clean photometry, no noise); defocus 0 draws nothing."""
    image = 0.2 + 0.6 * _texture(48, 56, seed=3)  # with the layers' own contrast off, nothing reaches the clamp
    clean = replace(CLEAN, layer_contrast=0.0, layer_offset=0.0)
    sharp = synthetic_flow_pair(image, torch.Generator().manual_seed(11), clean)
    assert all(torch.equal(x, y) for x, y in
               zip(sharp, synthetic_flow_pair(image, torch.Generator().manual_seed(11), replace(clean, defocus=0.0))))
    soft = synthetic_flow_pair(image, torch.Generator().manual_seed(11), replace(clean, defocus=1.5))
    for name in ("flow", "valid", "occluded"):
        assert torch.equal(getattr(sharp, name), getattr(soft, name)), name

    def misfit(sigma: float) -> float:
        return max(float((gaussian_blur(getattr(sharp, f)[None], sigma)[0] - getattr(soft, f)).abs().max())
                   for f in ("frame1", "frame2"))

    sigmas = [0.05 + 0.001 * i for i in range(1451)]
    best = min(sigmas, key=misfit)
    assert misfit(best) < 1e-3 and 0.05 < best <= 1.5  # a blur of the grid's resolution fits both frames
    assert float((sharp.frame1 - soft.frame1).abs().max()) > 0.01  # and it is not the identity


def test_elastic_motion_is_inverted_exactly():
    # frame 2 is rendered through the fixed-point inverse; a single background layer with rotation,
    # scale and elastic waves reproduces frame 1 after warping back
    cfg = SyntheticFlowConfig(layers=(0, 0), max_rotation=6.0, max_scale=0.06, elastic=1.0, gain=(1.0, 1.0),
                              bias=0.0, shading=0.0, noise=(0.0, 0.0))
    pair = synthetic_flow_pair(_texture(64, 64, seed=2), torch.Generator().manual_seed(1), cfg)
    assert not pair.occluded.any()
    warped, _ = warp(pair.frame2[None], pair.flow[None], "bicubic")
    interior = pair.valid & ~_near_edges(pair.flow, ~pair.valid, radius=2)
    err = (warped[0, 0] - pair.frame1[0]).abs()[interior]
    assert err.max() < 0.02 and err.quantile(0.99) < 0.01 and err.median() < 1e-3
    assert pair.flow.abs().max() > 1.0 and math.isfinite(float(pair.flow.sum()))


def test_bad_input_raises():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
        synthetic_flow_pair(torch.zeros(1, 1, 8, 8), g)
    with pytest.raises(ValueError, match="at least 8"):
        synthetic_flow_pair(torch.zeros(4, 4), g)

"""vision.pyramid: level sizes, anti-aliasing, and value scaling of resized flow / disparity."""

import math

import pytest
import torch
import torch.nn.functional as F

from gbp_torch.vision import gaussian_blur, gaussian_pyramid, pyramid_sizes, upsample_disparity, upsample_flow

DT = torch.float64


@pytest.mark.parametrize("shape, ratio, min_size, expected", [
    ((48, 64), 0.5, 16, [(48, 64), (24, 32)]),
    ((48, 64), 0.5, 8, [(48, 64), (24, 32), (12, 16)]),
    ((100, 80), 0.75, 16, [(100, 80), (75, 60), (56, 45), (42, 34), (32, 25), (24, 19)]),
    ((10, 12), 0.5, 16, [(10, 12)]),
])
def test_level_sizes(shape, ratio, min_size, expected):
    assert pyramid_sizes(*shape, ratio=ratio, min_size=min_size) == expected
    pyramid = gaussian_pyramid(torch.zeros(2, 3, *shape), ratio=ratio, min_size=min_size)
    assert [tuple(level.shape) for level in pyramid] == [(2, 3, *size) for size in expected]


def test_levels_caps_the_count_and_level_zero_is_the_input():
    image = torch.rand(1, 1, 100, 80)
    pyramid = gaussian_pyramid(image, levels=3, ratio=0.75)
    assert len(pyramid) == 3 and pyramid[0] is image
    # 10 * 0.97 rounds back to 10: that size is skipped, not repeated
    assert pyramid_sizes(10, 10, levels=3, ratio=0.97, min_size=1) == [(10, 10), (9, 9), (8, 8)]


@pytest.mark.parametrize("ratio", [0.5, 0.75])
def test_constant_image_stays_constant(ratio):
    image = torch.full((1, 2, 40, 50), 0.37, dtype=DT)
    for level in gaussian_pyramid(image, ratio=ratio, min_size=8):
        torch.testing.assert_close(level, torch.full_like(level, 0.37), rtol=0, atol=1e-14)


def checkerboard(height, width):
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return (1 - 2 * ((x + y) % 2)).to(DT)[None, None]


@pytest.mark.parametrize("ratio", [0.5, 0.75])
def test_nyquist_checkerboard_is_removed_unlike_plain_bilinear(ratio):
    image = checkerboard(64, 64)
    coarse = gaussian_pyramid(image, levels=2, ratio=ratio)[1]
    assert coarse.square().mean() < 0.01  # energy relative to the input's 1.0
    if ratio == 0.75:  # a plain bilinear resize aliases it (at 0.5 it happens to average 2x2 blocks)
        plain = F.interpolate(image, size=coarse.shape[-2:], mode="bilinear", align_corners=False)
        assert plain.square().mean() > 0.05


@pytest.mark.parametrize("ratio", [0.5, 0.75])
def test_low_frequencies_survive(ratio):
    x = torch.arange(64, dtype=DT)
    image = torch.sin(2 * math.pi * x / 32).expand(1, 1, 64, 64)
    coarse = gaussian_pyramid(image, levels=2, ratio=ratio)[1]
    amplitude = coarse[0, 0, 10, 8:-8].abs().max()
    assert amplitude > 0.85


def test_blur_of_an_impulse_is_the_normalised_sampled_gaussian():
    sigma = 1.3
    image = torch.zeros(1, 1, 15, 15, dtype=DT)
    image[..., 7, 7] = 1
    taps = torch.arange(-7, 8, dtype=DT)
    ref = torch.exp(-(taps[:, None] ** 2 + taps[None] ** 2) / (2 * sigma**2)) * (taps.abs()[:, None] <= 4) * (
        taps.abs()[None] <= 4)  # radius ceil(3 sigma) = 4
    torch.testing.assert_close(gaussian_blur(image, sigma)[0, 0], ref / ref.sum(), rtol=0, atol=1e-15)
    assert gaussian_blur(image, 0) is image


def test_upsample_flow_scales_constant_flow_exactly():
    flow = torch.empty(2, 2, 6, 8, dtype=DT)
    flow[:, 0], flow[:, 1] = 1.5, -0.5
    up = upsample_flow(flow, (15, 20))
    assert up.shape == (2, 2, 15, 20)
    torch.testing.assert_close(up[:, 0], torch.full((2, 15, 20), 1.5 * 20 / 8, dtype=DT), rtol=0, atol=1e-14)
    torch.testing.assert_close(up[:, 1], torch.full((2, 15, 20), -0.5 * 15 / 6, dtype=DT), rtol=0, atol=1e-14)
    down = upsample_flow(flow, (3, 5))  # shrinking works too (anti-aliased; constants kept)
    torch.testing.assert_close(down[:, 0], torch.full((2, 3, 5), 1.5 * 5 / 8, dtype=DT), rtol=0, atol=1e-14)


@pytest.mark.parametrize("coarse, fine", [((6, 8), (12, 16)), ((6, 8), (15, 20)), ((7, 5), (20, 9))])
def test_affine_flow_upsampled_matches_the_analytic_field_inside(coarse, fine):
    (h, w), (H, W) = coarse, fine
    sy, sx = H / h, W / w
    A = torch.tensor([[0.05, -0.02], [0.03, 0.04]], dtype=DT)
    b = torch.tensor([1.2, -0.7], dtype=DT)

    def field(x, y):  # the motion in fine pixels at fine position (x, y)
        return torch.einsum("ij,jhw->ihw", A, torch.stack((x, y))) + b[:, None, None]

    yc, xc = torch.meshgrid(torch.arange(h, dtype=DT), torch.arange(w, dtype=DT), indexing="ij")
    # coarse pixel centre x_c sits at fine x = (x_c + 0.5) s - 0.5; values in coarse pixels
    coarse_flow = field((xc + 0.5) * sx - 0.5, (yc + 0.5) * sy - 0.5) / torch.tensor([sx, sy], dtype=DT)[:, None, None]
    up = upsample_flow(coarse_flow[None], (H, W))[0]

    yf, xf = torch.meshgrid(torch.arange(H, dtype=DT), torch.arange(W, dtype=DT), indexing="ij")
    x_c, y_c = (xf + 0.5) / sx - 0.5, (yf + 0.5) / sy - 0.5  # where bilinear interpolation reads
    inside = (x_c >= 0) & (x_c <= w - 1) & (y_c >= 0) & (y_c <= h - 1)
    assert inside.float().mean() > 0.5
    torch.testing.assert_close(up[:, inside], field(xf, yf)[:, inside], rtol=0, atol=1e-12)


@pytest.mark.parametrize("layout", ["B1HW", "BHW"])
def test_upsample_disparity_scales_by_width_ratio_and_keeps_layout(layout):
    disparity = torch.full((2, 1, 6, 8), 3.0, dtype=DT)
    given = disparity if layout == "B1HW" else disparity[:, 0]
    up = upsample_disparity(given, (9, 20))
    assert up.shape == ((2, 1, 9, 20) if layout == "B1HW" else (2, 9, 20))
    torch.testing.assert_close(up, torch.full_like(up, 3.0 * 20 / 8), rtol=0, atol=1e-14)


@pytest.mark.parametrize("call, match", [
    (lambda: gaussian_pyramid(torch.zeros(3, 16, 16)), "image"),
    (lambda: gaussian_pyramid(torch.zeros(1, 1, 16, 16), ratio=1.0), "ratio"),
    (lambda: gaussian_pyramid(torch.zeros(1, 1, 16, 16), levels=0), "levels"),
    (lambda: gaussian_pyramid(torch.zeros(1, 1, 16, 16), min_size=0), "min_size"),
    (lambda: upsample_flow(torch.zeros(1, 1, 4, 4), (8, 8)), r"flow must be a \(B, 2, h, w\)"),
    (lambda: upsample_flow(torch.zeros(1, 2, 4, 4), (8,)), "size"),
    (lambda: upsample_flow(torch.zeros(1, 2, 4, 4), (8.0, 8)), "size"),
    (lambda: upsample_disparity(torch.zeros(1, 2, 4, 4), (8, 8)), "disparity"),
    (lambda: gaussian_blur(torch.zeros(4, 4), 1.0), "image"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()

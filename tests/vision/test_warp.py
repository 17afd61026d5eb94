"""vision.warp: backward warping against slicing, a numpy bilinear formula and analytic fields."""

import numpy as np
import pytest
import torch

from gbp_torch.vision import pixel_grid, warp, warp_disparity

DT = torch.float64


def constant_flow(batch, height, width, u, v, dtype=DT):
    flow = torch.empty(batch, 2, height, width, dtype=dtype)
    flow[:, 0], flow[:, 1] = u, v
    return flow


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "bspline", "nearest"])
@pytest.mark.parametrize("shift", [(0, 0), (2, -1), (-3, 2), (1, 4), (9, 0)])
def test_integer_shift_is_roll_inside_and_border_clamp_outside(shift, mode):
    du, dv = shift
    height, width = 7, 9
    image = torch.randn(2, 3, height, width, dtype=DT, generator=torch.Generator().manual_seed(0))
    out, valid = warp(image, constant_flow(2, height, width, du, dv), mode=mode)

    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    inside = (x + du >= 0) & (x + du < width) & (y + dv >= 0) & (y + dv < height)
    assert valid.shape == (2, 1, height, width) and valid.dtype == torch.bool
    assert torch.equal(valid, inside.expand(2, 1, height, width))
    rolled = torch.roll(image, shifts=(-dv, -du), dims=(-2, -1))  # rolled[y, x] = image[y + dv, x + du]
    torch.testing.assert_close(out[..., inside], rolled[..., inside], rtol=0, atol=1e-12)
    clamped = image[..., (y + dv).clamp(0, height - 1), (x + du).clamp(0, width - 1)]
    torch.testing.assert_close(out, clamped, rtol=0, atol=1e-12)


def bilinear_numpy(image, flow):
    """Slow reference: bilinear sampling with border clamping, per pixel in numpy."""
    _, _, height, width = image.shape
    y, x = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    sx = np.clip(x + flow[:, 0], 0, width - 1)
    sy = np.clip(y + flow[:, 1], 0, height - 1)
    x0 = np.floor(sx).astype(int)
    y0 = np.floor(sy).astype(int)
    x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
    fx, fy = (sx - x0)[:, None], (sy - y0)[:, None]
    out = np.empty_like(image)
    for b in range(image.shape[0]):
        img = image[b]
        out[b] = ((1 - fy[b]) * ((1 - fx[b]) * img[:, y0[b], x0[b]] + fx[b] * img[:, y0[b], x1[b]])
                  + fy[b] * ((1 - fx[b]) * img[:, y1[b], x0[b]] + fx[b] * img[:, y1[b], x1[b]]))
    px, py = x + flow[:, 0], y + flow[:, 1]
    valid = (px >= 0) & (px <= width - 1) & (py >= 0) & (py <= height - 1)
    return out, valid[:, None]


def test_subpixel_field_matches_numpy_bilinear():
    gen = torch.Generator().manual_seed(1)
    image = torch.randn(2, 2, 6, 8, dtype=DT, generator=gen)
    flow = 2.5 * torch.randn(2, 2, 6, 8, dtype=DT, generator=gen)
    out, valid = warp(image, flow)
    ref, ref_valid = bilinear_numpy(image.numpy(), flow.numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(valid.numpy(), ref_valid)
    assert 0 < valid.sum() < valid.numel()


def smooth(x, y):
    return torch.sin(0.3 * x + 0.2 * y) + torch.cos(0.25 * y - 0.1 * x)


@pytest.mark.parametrize("mode, margin, tol", [("bilinear", 0, 0.025), ("bicubic", 3, 2e-3)])
def test_smooth_function_warped_by_smooth_flow_matches_analytic(mode, margin, tol):
    height, width = 24, 32
    grid = pixel_grid(height, width, torch.empty(0, dtype=DT))
    x, y = grid[0, 0], grid[0, 1]
    flow = torch.stack((0.7 + 0.3 * torch.sin(0.1 * y), -0.4 + 0.2 * torch.cos(0.13 * x)))[None]
    out, valid = warp(smooth(x, y)[None, None], flow, mode=mode)
    expected = smooth(x + flow[0, 0], y + flow[0, 1])
    inner = valid[0, 0, margin:height - margin, margin:width - margin]
    error = (out[0, 0] - expected)[margin:height - margin, margin:width - margin].abs()[inner]
    assert valid.float().mean() > 0.85
    # bilinear: error <= max|second derivative| / 8 per axis, about 0.02 here; bicubic is O(h^3)
    assert error.max() < tol


def test_bicubic_reproduces_quadratics_where_bilinear_does_not():
    """Keys' a = -0.5 kernel; torch's grid_sample bicubic (a = -0.75) would even shift a ramp."""
    x, y = pixel_grid(10, 12, torch.empty(0, dtype=DT))[0]

    def quadratic(x, y):
        return 0.1 * x**2 - 0.05 * x * y + 0.2 * y**2 + x - y

    flow = constant_flow(1, 10, 12, 0.3, -0.45)
    expected = quadratic(x + 0.3, y - 0.45)[2:-2, 2:-2]
    cubic = warp(quadratic(x, y)[None, None], flow, mode="bicubic").image[0, 0, 2:-2, 2:-2]
    linear = warp(quadratic(x, y)[None, None], flow).image[0, 0, 2:-2, 2:-2]
    torch.testing.assert_close(cubic, expected, rtol=0, atol=1e-12)
    assert (linear - expected).abs().max() > 0.01


def test_pixel_grid_coordinates_dtype_and_device():
    like = torch.empty(0, dtype=torch.float32)
    grid = pixel_grid(3, 4, like)
    assert grid.shape == (1, 2, 3, 4) and grid.dtype == torch.float32
    assert torch.equal(grid[0, 0, 2], torch.arange(4.0)) and torch.equal(grid[0, 1, :, 3], torch.arange(3.0))


@pytest.mark.parametrize("layout", ["B1HW", "BHW"])
def test_warp_disparity_is_warp_with_negated_horizontal_flow(layout):
    gen = torch.Generator().manual_seed(2)
    image = torch.randn(2, 3, 5, 11, dtype=DT, generator=gen)
    disparity = 4 * torch.rand(2, 1, 5, 11, dtype=DT, generator=gen)
    out, valid = warp_disparity(image, disparity if layout == "B1HW" else disparity[:, 0])
    ref, ref_valid = warp(image, torch.cat((-disparity, torch.zeros_like(disparity)), dim=1))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert torch.equal(valid, ref_valid)
    assert not valid[..., :3].all() and valid[..., 4:].all()  # d <= 4: only x < 4 can leave the image


def test_float32_gives_float32():
    image = torch.rand(1, 1, 4, 5)
    out, valid = warp(image, torch.zeros(1, 2, 4, 5))
    assert out.dtype == torch.float32 and valid.all()
    torch.testing.assert_close(out, image)


def test_gradcheck_wrt_image_and_flow():
    gen = torch.Generator().manual_seed(3)
    image = torch.randn(1, 2, 4, 5, dtype=DT, generator=gen, requires_grad=True)
    # integer part in {-1, 0, 1}, fractional part in [0.2, 0.8]: away from the kinks of bilinear sampling
    whole = torch.randint(-1, 2, (1, 2, 4, 5), generator=gen).to(DT)
    flow = (whole + 0.2 + 0.6 * torch.rand(1, 2, 4, 5, dtype=DT, generator=gen)).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, f: warp(i, f).image, (image, flow))
    assert torch.autograd.gradcheck(lambda i, f: warp(i, f, mode="bicubic").image, (image, flow))
    d = (1.2 + 0.6 * torch.rand(1, 1, 4, 5, dtype=DT, generator=gen)).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, d: warp_disparity(i, d).image, (image, d))


@pytest.mark.parametrize("call, match", [
    (lambda: warp(torch.zeros(2, 3, 5), torch.zeros(2, 2, 3, 5)), "image"),
    (lambda: warp(torch.zeros(1, 3, 4, 5), torch.zeros(1, 3, 4, 5)), r"flow must have shape \(B, 2, H, W\)"),
    (lambda: warp(torch.zeros(1, 3, 4, 5), torch.zeros(2, 2, 4, 5)), "flow"),
    (lambda: warp(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 5, dtype=DT)), "flow must have the image's dtype"),
    (lambda: warp(torch.zeros(1, 3, 4, 5, dtype=torch.int64), torch.zeros(1, 2, 4, 5)), "image must be floating"),
    (lambda: warp(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 5), mode="area"), "mode"),
    (lambda: warp_disparity(torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 5)), "disparity"),
    (lambda: warp_disparity(torch.zeros(1, 3, 4, 5), torch.zeros(1, 4, 6)), "disparity"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.cuda
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(4)
    image = torch.randn(1, 2, 6, 7, generator=gen)
    flow = 2 * torch.randn(1, 2, 6, 7, generator=gen)
    out, valid = warp(image.cuda(), flow.cuda())
    ref, ref_valid = warp(image, flow)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-5, atol=1e-5)
    assert torch.equal(valid.cpu(), ref_valid)


def test_bicubic_in_row_bands_equals_one_pass_with_the_same_gradients():
    """The sampler works on bands of output rows; the bands join seamlessly, values and gradients."""
    from gbp_torch.vision.sampling import _cubic

    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 40, 23, generator=g, dtype=torch.float64, requires_grad=True)
    x = (torch.rand(2, 37, 23, generator=g, dtype=torch.float64) * 22).requires_grad_()
    y = (torch.rand(2, 37, 23, generator=g, dtype=torch.float64) * 39).requires_grad_()
    whole, banded = _cubic(image, x, y, "bicubic", rows=10**6), _cubic(image, x, y, "bicubic", rows=5)
    torch.testing.assert_close(banded, whole, rtol=0, atol=1e-14)
    w = torch.randn(whole.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((whole * w).sum(), (image, x, y)),
                    torch.autograd.grad((banded * w).sum(), (image, x, y))):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


@pytest.mark.parametrize("height, width", [(40, 23), (5, 3), (2, 7), (1, 9)])
def test_bspline_equals_scipy_cubic_spline_interpolation(height, width):
    """``"bspline"`` is cubic B-spline interpolation with mirrored borders: scipy's map_coordinates (order 3, mode
    "mirror", exact recursive prefilter) at random positions, tiny sizes included (the mirror-periodic extension
    folds more than once there); the image comes back at the pixel centres."""
    from scipy import ndimage

    from gbp_torch.vision.sampling import sample

    g = torch.Generator().manual_seed(height * width)
    image = torch.rand(2, 1, height, width, generator=g, dtype=DT)
    x = torch.rand(2, 17, 13, generator=g, dtype=DT) * (width - 1)
    y = torch.rand(2, 17, 13, generator=g, dtype=DT) * (height - 1)
    out, valid = sample(image, torch.stack((x, y), 1), "bspline")
    assert bool(valid.all())
    for b in range(2):
        ref = ndimage.map_coordinates(image[b, 0].numpy(), [y[b].numpy(), x[b].numpy()], order=3, mode="mirror")
        np.testing.assert_allclose(out[b, 0].numpy(), ref, rtol=0, atol=2e-6)
    at_pixels = warp(image, constant_flow(2, height, width, 0.0, 0.0), mode="bspline").image
    torch.testing.assert_close(at_pixels, image, rtol=0, atol=2e-6)


def test_bspline_gradients_pass_gradcheck():
    """The B-spline warp is differentiable in the image and the flow (float64 finite differences)."""
    g = torch.Generator().manual_seed(3)
    image = torch.rand(1, 2, 6, 7, generator=g, dtype=DT, requires_grad=True)
    flow = (0.6 * torch.randn(1, 2, 6, 7, generator=g, dtype=DT)).requires_grad_()
    assert torch.autograd.gradcheck(lambda i, f: warp(i, f, mode="bspline").image, (image, flow))

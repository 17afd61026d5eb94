"""vision.constancy and vision.gradients against analytic images and Gauss-Newton on translations."""

import math

import pytest
import torch

from gbp_torch.vision import disparity_data_term, flow_data_term, image_gradients, pixel_grid

DT = torch.float64
TAU = 2 * math.pi
# (amplitude, kx, ky, phase): a smooth texture of wavelengths 17-31 px
WAVES = [(0.20, TAU / 17, 0.0, 0.3), (0.15, 0.0, TAU / 23, 0.0), (0.10, TAU / 29, TAU / 29, 1.0),
         (0.10, TAU / 31, -2 * TAU / 31, 2.0)]


def texture(x, y, waves=WAVES):
    """Analytic image, its gradient (fx, fy) and Hessian (fxx, fxy, fyy)."""
    f = 0.5 + sum(a * torch.sin(kx * x + ky * y + p) for a, kx, ky, p in waves)
    c = [a * torch.cos(kx * x + ky * y + p) for a, kx, ky, p in waves]
    s = [-a * torch.sin(kx * x + ky * y + p) for a, kx, ky, p in waves]
    grad = (sum(ci * kx for ci, (_, kx, _, _) in zip(c, waves)), sum(ci * ky for ci, (_, _, ky, _) in zip(c, waves)))
    hess = tuple(sum(si * k1 * k2 for si, k1, k2 in zip(s, [w[i] for w in waves], [w[j] for w in waves]))
                 for i, j in ((1, 1), (1, 2), (2, 2)))
    return f, grad, hess


def coords(height, width):
    grid = pixel_grid(height, width, torch.empty(0, dtype=DT))
    return grid[0, 0], grid[0, 1]


def constant(value, height, width):
    return torch.tensor(value, dtype=DT).view(1, -1, 1, 1).expand(1, len(value), height, width).clone()


def test_image_gradients_are_exact_on_quartics_inside():
    x, y = coords(12, 13)
    f = x**4 / 100 - 2 * x**2 * y + y**3 / 3 + 5 * x * y
    grad = image_gradients(f[None, None])[0, 0]
    expected = torch.stack((x**3 / 25 - 4 * x * y + 5 * y, -2 * x**2 + y**2 + 5 * x))
    torch.testing.assert_close(grad[:, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], rtol=0, atol=1e-10)


@pytest.mark.parametrize("u0", [(0.0, 0.0), (1.0, -1.0)])
def test_linearised_residual_is_second_order_accurate(u0):
    """It + g.du against the analytic I2(x + u0 + du) - I1(x): the error shrinks like du^2."""
    height, width = 32, 40
    x, y = coords(height, width)
    t = (0.35, -0.6)  # true flow: I2(x + t) = I1(x) + 1
    image2 = texture(x - t[0], y - t[1])[0]
    image1 = texture(x, y)[0] - 1.0  # offset keeps It > 0, so residual == It and g = (a u0 - eta) / It
    term = flow_data_term(image1[None, None], image2[None, None], constant(u0, height, width))
    assert term.valid[0, 3:-3, 3:-3].all()
    it = term.residual[0]
    g = (torch.einsum("dehw,ehw->dhw", term.a[0], constant(u0, height, width)[0]) - term.eta[0]) / it
    inner = (..., slice(3, -3), slice(3, -3))

    _, grad2, _ = texture(x + u0[0] - t[0], y + u0[1] - t[1])
    torch.testing.assert_close(g[inner], torch.stack(grad2)[inner], rtol=0, atol=2e-4)
    a_outer = g[:, None] * g[None]  # a = g g^T
    torch.testing.assert_close(term.a[0][inner], a_outer[inner], rtol=1e-12, atol=1e-14)

    angle = torch.rand(height, width, dtype=DT, generator=torch.Generator().manual_seed(0)) * TAU
    errors = []
    for step in (0.4, 0.2, 0.1, 0.05):
        du, dv = step * torch.cos(angle), step * torch.sin(angle)
        exact = texture(x + u0[0] + du - t[0], y + u0[1] + dv - t[1])[0] - image1
        linear = it + g[0] * du + g[1] * dv
        errors.append((exact - linear)[inner].abs().max().item())
    ratios = [errors[i] / errors[i + 1] for i in range(3)]
    assert all(3.3 < r < 4.7 for r in ratios), (errors, ratios)


def test_one_channel_precision_is_symmetric_psd_rank_one_and_channels_add():
    gen = torch.Generator().manual_seed(1)
    image1, image2 = torch.rand(2, 1, 3, 10, 12, dtype=DT, generator=gen)
    flow0 = torch.randn(1, 2, 10, 12, dtype=DT, generator=gen)
    term = flow_data_term(image1[:, :1], image2[:, :1], flow0)
    a = term.a[0].permute(2, 3, 0, 1)  # (H, W, 2, 2)
    torch.testing.assert_close(a, a.transpose(-1, -2), rtol=0, atol=0)
    eig = torch.linalg.eigvalsh(a)
    scale = a.diagonal(dim1=-2, dim2=-1).sum(-1).max()
    assert eig[..., 0].abs().max() < 1e-12 * scale and eig[..., 1].max() > 0
    singles = [flow_data_term(image1[:, c:c + 1], image2[:, c:c + 1], flow0) for c in range(3)]
    multi = flow_data_term(image1, image2, flow0)
    torch.testing.assert_close(multi.a, sum(s.a for s in singles), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(multi.eta, sum(s.eta for s in singles), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(multi.residual, sum(s.residual**2 for s in singles).sqrt(), rtol=1e-12, atol=1e-14)
    det = torch.linalg.det(multi.a[0].permute(2, 3, 0, 1))[multi.valid[0]]
    assert (det > 0).float().mean() > 0.9  # three channels: rank 2


def test_gradient_constancy_adds_the_squared_hessian():
    height, width = 24, 28
    x, y = coords(height, width)
    f, _, (fxx, fxy, fyy) = texture(x, y)
    image = f[None, None]
    zero = torch.zeros(1, 2, height, width, dtype=DT)
    extra = flow_data_term(image, image, zero, gradient_weight=2.0).a - flow_data_term(image, image, zero).a
    hess = torch.stack((torch.stack((fxx, fxy)), torch.stack((fxy, fyy))))
    expected = 2.0 * torch.einsum("ikhw,jkhw->ijhw", hess, hess)
    inner = (..., slice(4, -4), slice(4, -4))
    torch.testing.assert_close(extra[0][inner], expected[inner], rtol=0, atol=2e-3 * expected.abs().max())


def test_normalised_brightness_constancy_divides_by_the_gradient_norm():
    """Oracle: with blend 0 at flow 0 the Jacobian is image2's stencil gradient g and It = I2 - I1, so the
    normalised term is a = g g^T / (|g|^2 + zeta^2), eta = -g It / (|g|^2 + zeta^2), residual |It| / sqrt(...)."""
    gen = torch.Generator().manual_seed(3)
    image1, image2 = torch.rand(2, 1, 1, 9, 11, dtype=DT, generator=gen)
    zeta = 0.05
    term = flow_data_term(image1, image2, torch.zeros(1, 2, 9, 11, dtype=DT), normalise=zeta)
    g = image_gradients(image2)[:, 0]  # (1, 2, H, W)
    norm = g.square().sum(1) + zeta**2
    it = image2[:, 0] - image1[:, 0]
    torch.testing.assert_close(term.a, torch.einsum("bdhw,behw->bdehw", g, g) / norm[:, None, None], rtol=1e-12,
                               atol=1e-14)
    torch.testing.assert_close(term.eta, -g * (it / norm)[:, None], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(term.residual, it.abs() / norm.sqrt(), rtol=1e-12, atol=1e-14)


def test_normalised_channels_weigh_one_each_and_gradient_channels_gamma():
    """With zeta -> 0 every textured channel's precision has trace 1 (unit direction), gradient channels gamma:
    trace(a) = 1 + 2 gamma for one gray channel, wherever the gradient and the Hessian's rows are non-zero."""
    x, y = coords(24, 28)
    image = texture(x, y)[0][None, None]
    shifted = texture(x - 0.4, y + 0.3)[0][None, None]
    zero = torch.zeros(1, 2, 24, 28, dtype=DT)
    gamma = 7.0
    bright = flow_data_term(image, shifted, zero, normalise=1e-9)
    both = flow_data_term(image, shifted, zero, gradient_weight=gamma, normalise=1e-9)
    grad = image_gradients(shifted)[0, 0]
    hess = image_gradients(image_gradients(shifted)[:, 0])[0]  # (2, 2, H, W)
    textured = (grad.norm(dim=0) > 1e-3) & (hess.norm(dim=1) > 1e-3).all(0)
    trace1 = bright.a[0, 0, 0] + bright.a[0, 1, 1]
    trace2 = both.a[0, 0, 0] + both.a[0, 1, 1]
    torch.testing.assert_close(trace1[textured], torch.ones_like(trace1[textured]), rtol=0, atol=1e-9)
    torch.testing.assert_close(trace2[textured], torch.full_like(trace2[textured], 1 + 2 * gamma), rtol=0, atol=1e-7)
    assert textured.float().mean() > 0.9


def gauss_newton_translation(image1, image2, start, steps, **kwargs):
    """Re-linearise at a constant flow; each step solves sum(a) u = sum(eta) over the valid interior."""
    _, _, height, width = image1.shape
    u = torch.tensor(start, dtype=DT)
    for _ in range(steps):
        term = flow_data_term(image1, image2, u.view(1, 2, 1, 1).expand(1, 2, height, width), **kwargs)
        u = torch.linalg.solve(term.a[0, ..., 4:-4, 4:-4].sum((-1, -2)), term.eta[0, :, 4:-4, 4:-4].sum((-1, -2)))
    return u


@pytest.mark.parametrize("kwargs", [{}, {"gradient_weight": 1.0}, {"blend": 0.5}, {"mode": "bicubic"},
                                    {"normalise": 0.01, "mode": "bicubic"},
                                    {"normalise": 0.01, "gradient_weight": 100.0, "mode": "bicubic"}])
def test_gauss_newton_recovers_a_subpixel_translation(kwargs):
    x, y = coords(40, 48)
    t = (1.3, -0.7)
    image1, image2 = texture(x, y)[0][None, None], texture(x - t[0], y - t[1])[0][None, None]
    u = gauss_newton_translation(image1, image2, (0.0, 0.0), steps=6, **kwargs)
    assert (u - torch.tensor(t, dtype=DT)).abs().max() < 0.005, u


@pytest.mark.parametrize("layout", ["B1HW", "BHW"])
def test_disparity_gauss_newton_recovers_a_constant_disparity(layout):
    height, width, d = 24, 48, 1.7
    x, y = coords(height, width)
    left, right = texture(x, y)[0][None, None], texture(x + d, y)[0][None, None]  # left(x) = right(x - d)
    dis = 0.0
    for _ in range(6):
        d0 = torch.full((1, 1, height, width), dis, dtype=DT)
        term = disparity_data_term(left, right, d0 if layout == "B1HW" else d0[:, 0])
        shapes = {term.z.shape, term.a.shape, term.eta.shape, term.residual.shape, term.valid.shape}
        assert shapes == {(1, height, width)}
        dis = (term.eta[0, :, 4:-4].sum() / term.a[0, :, 4:-4].sum()).item()
    assert abs(dis - d) < 0.01


def test_disparity_term_is_the_flow_term_along_minus_x():
    gen = torch.Generator().manual_seed(2)
    left, right = torch.rand(2, 2, 3, 9, 11, dtype=DT, generator=gen)
    d0 = 3 * torch.rand(2, 1, 9, 11, dtype=DT, generator=gen)
    disp = disparity_data_term(left, right, d0, gradient_weight=0.5)
    flow = flow_data_term(left, right, torch.cat((-d0, torch.zeros_like(d0)), dim=1), gradient_weight=0.5)
    torch.testing.assert_close(disp.a, flow.a[:, 0, 0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(disp.eta, -flow.eta[:, 0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(disp.residual, flow.residual, rtol=0, atol=0)
    assert torch.equal(disp.valid, flow.valid)


def test_invalid_pixels_get_zero_precision_and_z_falls_back_to_the_estimate():
    gen = torch.Generator().manual_seed(3)
    image1, image2 = torch.rand(2, 1, 2, 8, 16, dtype=DT, generator=gen)
    flow0 = constant((5.0, 0.0), 8, 16)
    term = flow_data_term(image1, image2, flow0)
    invalid = ~term.valid[0]
    assert invalid[:, -5:].all() and not invalid[:, :-5].any()
    assert (term.a[0][..., invalid] == 0).all() and (term.eta[0][:, invalid] == 0).all()
    assert (term.residual[0][invalid] == 0).all()
    torch.testing.assert_close(term.z[0][:, invalid], flow0[0][:, invalid], rtol=1e-12, atol=1e-12)
    assert (term.a[0, 0, 0][~invalid] > 0).any()


def test_z_is_finite_on_a_flat_image_and_solves_well_conditioned_blocks():
    flat = torch.full((1, 1, 6, 7), 0.5, dtype=DT)
    flow0 = torch.randn(1, 2, 6, 7, dtype=DT, generator=torch.Generator().manual_seed(4))
    term = flow_data_term(flat, flat, flow0)
    assert (term.a == 0).all()
    torch.testing.assert_close(term.z, flow0, rtol=0, atol=0)

    x, y = coords(20, 24)
    waves2 = [(0.3, TAU / 19, TAU / 41, 0.0), (0.2, -TAU / 37, TAU / 21, 1.0)]
    image1 = torch.stack((texture(x, y)[0], texture(x, y, waves2)[0]))[None]
    image2 = torch.stack((texture(x - 0.4, y)[0], texture(x - 0.4, y, waves2)[0]))[None]
    term = flow_data_term(image1, image2, torch.zeros(1, 2, 20, 24, dtype=DT), eps=1e-10)
    a, eta = term.a[0].permute(2, 3, 0, 1), term.eta[0].permute(1, 2, 0)
    good = torch.linalg.eigvalsh(a)[..., 0] > 1e-3 * a.diagonal(dim1=-2, dim2=-1).sum(-1).mean()
    assert good.float().mean() > 0.5
    exact = torch.linalg.solve(a[good], eta[good])
    torch.testing.assert_close(term.z[0].permute(1, 2, 0)[good], exact, rtol=1e-5, atol=1e-8)


def test_float32_and_gradcheck_of_the_information_form():
    gen = torch.Generator().manual_seed(5)
    image1, image2 = torch.rand(2, 1, 2, 5, 6, generator=gen)
    term = flow_data_term(image1, image2, torch.randn(1, 2, 5, 6, generator=gen), gradient_weight=1.0)
    assert term.z.dtype == torch.float32 and torch.isfinite(term.z).all()

    i1 = torch.rand(1, 1, 4, 5, dtype=DT, generator=gen, requires_grad=True)
    i2 = torch.rand(1, 1, 4, 5, dtype=DT, generator=gen, requires_grad=True)
    flow0 = 0.2 + 0.5 * torch.rand(1, 2, 4, 5, dtype=DT, generator=gen)  # samples away from pixel centres

    def outputs(i1, i2):
        term = flow_data_term(i1, i2, flow0, gradient_weight=0.5)
        return term.z, term.a, term.eta, term.residual

    assert torch.autograd.gradcheck(outputs, (i1, i2))


@pytest.mark.parametrize("call, match", [
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 6), torch.zeros(1, 2, 4, 5)), "image2"),
    (lambda: flow_data_term(torch.zeros(1, 4, 5), torch.zeros(1, 4, 5), torch.zeros(1, 2, 4, 5)), "image1"),
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 5, 4)), "flow0"),
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5),
                            gradient_weight=-1.0), "gradient_weight"),
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5), blend=2.0),
     "blend"),
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5),
                            normalise=-0.1), "normalise"),
    (lambda: flow_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5),
                            normalise=float("nan")), "normalise"),
    (lambda: disparity_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5), torch.zeros(1, 2, 4, 5)),
     "disparity0"),
    (lambda: disparity_data_term(torch.zeros(1, 1, 4, 5), torch.zeros(1, 1, 4, 5, dtype=DT), torch.zeros(1, 4, 5)),
     "right"),
    (lambda: image_gradients(torch.zeros(4, 5)), "image"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.cuda
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(6)
    image1, image2 = torch.rand(2, 1, 3, 12, 14, generator=gen)
    flow0 = torch.randn(1, 2, 12, 14, generator=gen)
    ref = flow_data_term(image1, image2, flow0, gradient_weight=0.5)
    out = flow_data_term(image1.cuda(), image2.cuda(), flow0.cuda(), gradient_weight=0.5)
    for name in ("z", "a", "eta", "residual"):
        torch.testing.assert_close(getattr(out, name).cpu(), getattr(ref, name), rtol=1e-4, atol=1e-4)
    assert torch.equal(out.valid.cpu(), ref.valid)

"""The learned stereo factor source and model: hand-set at init, gradients through the implicit solve."""

import pytest
import torch
import torch.nn.functional as F
from stereo_helpers import planar_pair

from gbp_torch.grid import MULTIGRID, GridRobust, solve
from gbp_torch.modes import BackwardConfig
from gbp_torch.nets import count_parameters
from gbp_torch.robust import RobustKernel
from gbp_torch.tasks.stereo import HandsetFactors, HandsetStereo, LearnedFactors, LearnedStereo, StereoCues
from gbp_torch.tasks.stereo.factors import mahalanobis_threshold
from gbp_torch.tasks.stereo.learned import weighted_solve


def _cues(b, h, w, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    conf = torch.rand(b, h, w, generator=g, dtype=dtype)
    occ = torch.rand(b, h, w, generator=g) < 0.1
    cost = torch.rand(b, h, w, generator=g, dtype=dtype)
    extra = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    left = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    return left, StereoCues(conf, occ, cost, extra)


def _perturb(net: LearnedFactors, std=0.05, seed=1):
    """Move the zero-initialised last layers and the gate off zero (so every parameter gets gradients)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in (net.body[-1], net.context.body[-1]):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=m.weight.dtype) * std)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g, dtype=m.bias.dtype) * std)
        net.gate.fill_(0.1)


def test_untrained_source_is_the_handset_source():
    left, cues = _cues(2, 13, 17)
    learned, hand = LearnedFactors()(left, cues), HandsetFactors()(left, cues)
    for f in ("data_scale", "data_k_px", "wh", "wv"):
        torch.testing.assert_close(getattr(learned, f), getattr(hand, f), rtol=0, atol=0)
    kh, kv = learned.smooth_k_px
    assert kh.shape == hand.wh.shape and kv.shape == hand.wv.shape
    assert (kh == hand.smooth_k_px).all() and (kv == hand.smooth_k_px).all()
    # the per-edge pair gives the solver the same thresholds as the scalar
    torch.testing.assert_close(mahalanobis_threshold(hand.wh, learned.smooth_k_px),
                               mahalanobis_threshold(hand.wh, hand.smooth_k_px), rtol=0, atol=0)


def test_mahalanobis_threshold_is_sqrt_precision_times_k_with_finite_gradients_at_zero_precision():
    """A zero or negative precision (a pixel without data) is floored, and its gradient is 0, not NaN: the sqrt's
    infinite slope at 0 times the floor's zero gradient made the learned stereo model skip training steps."""
    precision = torch.tensor([0.0, -1.0, 1e-12, 4.0, 100.0], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([1.0, 2.0, 3.0, 0.5, 2.0], dtype=torch.float64)
    t = mahalanobis_threshold(precision, k)
    expected = torch.tensor([1e-4, 1e-4, 1e-4, 1.0, 20.0], dtype=torch.float64)
    torch.testing.assert_close(t, expected, rtol=1e-12, atol=0)
    t.sum().backward()
    torch.testing.assert_close(precision.grad, torch.tensor([0.0, 0.0, 0.0, 0.125, 0.1], dtype=torch.float64))


def test_source_is_small_and_handles_gray_and_missing_extra():
    net = LearnedFactors()
    assert count_parameters(net) < 100_000
    left, cues = _cues(1, 9, 11)
    cues.extra = None
    f = net(left[:, :1], cues)
    assert f.data_scale.shape == (1, 9, 11) and f.wh.shape == (1, 9, 10)


def test_untrained_model_equals_handset_stereo():
    """The untrained learned model is the hand-set model (same schedule: slope offsets, two IRLS solves a round)."""
    left, right, _ = planar_pair(40, 64, 6.0, 0.05, 0.0)
    with torch.no_grad():
        learned = LearnedStereo()
        a, b = learned(left, right, 16), HandsetStereo()(left, right, 16)
    assert learned.schedule == HandsetStereo().schedule
    torch.testing.assert_close(a.disparity, b.disparity, rtol=0, atol=0)
    torch.testing.assert_close(a.var, b.var, rtol=0, atol=0)
    assert torch.equal(a.occluded, b.occluded)


def test_gradients_reach_every_parameter_through_the_implicit_solve():
    torch.manual_seed(0)
    left, right, gt = planar_pair(32, 56, 5.0, 0.08, 0.02, seed=3)
    model = LearnedStereo()
    _perturb(model.factors)
    out = model(left, right, 14)
    assert out.disparity.requires_grad and not out.var.requires_grad  # the variance builds no graph
    F.smooth_l1_loss(out.disparity, gt).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    # without gradients nothing is recorded
    with torch.no_grad():
        assert not model(left, right, 14).disparity.requires_grad


def test_at_init_the_last_layers_receive_gradients():
    left, right, gt = planar_pair(32, 56, 5.0, 0.08, 0.02, seed=3)
    model = LearnedStereo()
    F.smooth_l1_loss(model(left, right, 14).disparity, gt).backward()
    assert model.factors.body[-1].weight.grad.abs().sum() > 0 and model.factors.gate.grad.abs() > 0


def _tiny_problem(seed):
    h, w = 7, 9
    left, cues = _cues(1, h, w, seed, torch.float64)
    g = torch.Generator().manual_seed(10 + seed)
    z = torch.rand(1, h, w, generator=g, dtype=torch.float64) * 4
    x0 = z + torch.randn(1, h, w, generator=g, dtype=torch.float64)  # some residuals beyond the thresholds
    curv = 0.2 + torch.rand(1, h, w, generator=g, dtype=torch.float64)
    weights = torch.linspace(-1, 1, h * w, dtype=torch.float64).view(1, h, w)
    net = LearnedFactors(width=8, depth=3, context_width=8, context_depth=2).double()
    _perturb(net, std=0.2, seed=seed)
    return net, left, cues, z, x0, curv, weights


TIGHT = BackwardConfig("implicit", adjoint_iters=200, adjoint_tol=1e-13)


@pytest.mark.parametrize("with_offsets", [False, True])
def test_weighted_solve_is_the_handset_robust_solve(with_offsets):
    """weighted_solve (recorded) = one IRLS step of the engine's robust solve (grid.irls: Tukey data, Cauchy
    smoothness reweighted at x0), also with slope offsets in the smoothness residuals and the solve."""
    net, left, cues, z, x0, curv, _ = _tiny_problem(0)
    h, w = z.shape[-2:]
    g = torch.Generator().manual_seed(4)
    offsets = (0.3 * torch.randn(z.shape[0], h, w - 1, generator=g, dtype=z.dtype),
               0.3 * torch.randn(z.shape[0], h - 1, w, generator=g, dtype=z.dtype)) if with_offsets else None
    with torch.no_grad():
        f = net(left, cues)
        a = 3.0 * f.data_scale * curv
        robust = GridRobust(data=RobustKernel("tukey", mahalanobis_threshold(a, f.data_k_px)),
                            smooth=RobustKernel("cauchy", (mahalanobis_threshold(f.wh, f.smooth_k_px),
                                                           mahalanobis_threshold(f.wv, f.smooth_k_px))),
                            outer_iters=1)
        ref = solve(z, a, (f.wh, f.wv), iters=6, x0=x0, robust=robust, config=MULTIGRID, validate=False,
                    offsets=offsets)
        res = weighted_solve(z, a, f, x0, 6, MULTIGRID, offsets=offsets)
    torch.testing.assert_close(res.mean, ref.mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(res.var, ref.var, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_implicit_equals_unrolled_gradients_of_the_recorded_solve(seed):
    """The recorded solve (robust weights at the warm start, thresholds and factors from the net), float64,
    converged: implicit and unrolled gradients of every factor-net parameter agree."""
    net, left, cues, z, x0, curv, weights = _tiny_problem(seed)
    grads = {}
    for mode, back in (("unroll", "unroll"), ("implicit", TIGHT)):
        net.zero_grad()
        f = net(left, cues)
        x = weighted_solve(z, 3.0 * f.data_scale * curv, f, x0, 80, MULTIGRID, back).mean
        (x * weights).sum().backward()
        grads[mode] = torch.cat([p.grad.flatten() for p in net.parameters()])
    assert grads["implicit"].abs().max() > 1e-6 and (grads["implicit"] != 0).float().mean() > 0.5
    torch.testing.assert_close(grads["implicit"], grads["unroll"], rtol=1e-6, atol=1e-9)


def test_recorded_solve_gradient_equals_finite_differences():
    """Independent oracle: the implicit gradient along a random parameter direction equals a central
    difference of the converged solution (float64)."""
    net, left, cues, z, x0, curv, weights = _tiny_problem(2)

    def value(back):
        f = net(left, cues)
        return (weighted_solve(z, 3.0 * f.data_scale * curv, f, x0, 80, MULTIGRID, back).mean * weights).sum()

    value(TIGHT).backward()
    params = list(net.parameters())
    g = torch.Generator().manual_seed(99)
    direction = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]
    analytic = float(sum((p.grad * d).sum() for p, d in zip(params, direction)))
    eps, values = 1e-6, []
    with torch.no_grad():
        for sign in (1, -1):
            for p, d in zip(params, direction):
                p.add_(sign * eps * d)
            values.append(float(value("unroll")))
            for p, d in zip(params, direction):
                p.sub_(sign * eps * d)
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(analytic) > 1e-4
    assert abs(analytic - numeric) <= 1e-5 * abs(numeric) + 1e-8


def test_pretrained_stereo_is_the_shipped_learned_model():
    from gbp_torch.pretrained import manifest, stereo
    from gbp_torch.tasks.stereo.handset import HandsetStereo

    entry = manifest()["gbp_stereo"]
    assert entry["task"] == "stereo" and entry["class"].endswith("LearnedStereo")
    default = stereo()  # the hand-set model stays the default (fewer bad pixels on Middlebury)
    assert type(default) is HandsetStereo and not default.training
    model = stereo("gbp_stereo")
    assert isinstance(model, LearnedStereo) and not model.training
    assert model.var_scale == entry["kwargs"]["var_scale"]
    left, right, gt = planar_pair(40, 64, 6.0, 0.05, 0.0)
    with torch.no_grad():
        out = model(left, right, 16)
    inner = (slice(None), slice(None), slice(4, -4), slice(20, -4))
    assert (out.disparity - gt)[inner].abs().median() < 0.25 and (out.var > 0).all()


def test_factor_cnn_tiled_equals_whole_frame():
    left, cues = _cues(1, 37, 52, 4, torch.float64)
    net = LearnedFactors(width=8, depth=3, context_width=8, context_depth=2, tile=None).double()
    _perturb(net, std=0.2, seed=4)
    whole = net(left, cues)
    net.tile = 12
    tiled = net(left, cues)
    for a, b in zip((whole.data_scale, whole.wh, whole.wv, whole.data_k_px), (tiled.data_scale, tiled.wh,
                                                                            tiled.wv, tiled.data_k_px)):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)

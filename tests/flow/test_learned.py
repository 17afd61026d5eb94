"""The learned flow factor source: hand-set at initialisation, gradients through the implicit solve."""

from dataclasses import replace

import pytest
import torch

from gbp_torch.nets import count_parameters
from gbp_torch.tasks.flow import HandsetFlow, HandsetFlowConfig, LearnedFactors, LearnedFlow, synthetic_flow_pair
from gbp_torch.tasks.flow.factors import HandsetFactors
from gbp_torch.tasks.flow.synthetic import SyntheticFlowConfig
from gbp_torch.vision import flow_data_term


def _pair(size=40, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    tex = torch.rand(size // 4, size // 4, generator=g, dtype=torch.float64)
    tex = torch.nn.functional.interpolate(tex[None, None], size=(size, size), mode="bicubic", align_corners=False)[0, 0]
    p = synthetic_flow_pair(tex.clamp(0, 1).to(dtype), g, SyntheticFlowConfig(max_translation=2.0, layers=(1, 1)))
    return p.frame1[None], p.frame2[None], p.flow[None], p.valid[None]


def _perturb(model, std=0.05, seed=1):
    """Give the zero-initialised last layers small random weights (a 'trained' net)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.copy_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))


def test_untrained_source_equals_handset_factors():
    f1, f2, _, _ = _pair()
    flow = 0.3 * torch.randn(1, 2, 40, 40, generator=torch.Generator().manual_seed(3))
    data = flow_data_term(f1, f2, flow, gradient_weight=100.0)
    learned, hand = LearnedFactors()(f1, data, flow, 1), HandsetFactors()(f1, data, flow, 1)
    torch.testing.assert_close(learned.data_scale, hand.data_scale, rtol=0, atol=0)
    torch.testing.assert_close(learned.wh, hand.wh, rtol=0, atol=0)
    torch.testing.assert_close(learned.wv, hand.wv, rtol=0, atol=0)
    assert torch.all(learned.k_data == hand.k_data)
    assert all(torch.all(k == hand.k_smooth) for k in learned.k_smooth)


def test_untrained_learned_flow_equals_handset_flow():
    f1, f2, _, _ = _pair(48)
    with torch.no_grad():
        a, b = LearnedFlow().eval()(f1, f2), HandsetFlow().eval()(f1, f2)
    torch.testing.assert_close(a.flow, b.flow, rtol=0, atol=0)
    torch.testing.assert_close(a.cov, b.cov, rtol=0, atol=0)
    assert torch.equal(a.occluded, b.occluded)


def test_small_and_configurable():
    model = LearnedFlow()
    assert count_parameters(model) < 100_000
    model = LearnedFlow(factors={"width": 8, "context_depth": 0}, config={"warps": 1, "var_scale": 2.0})
    assert model.config.warps == 1 and model.config.var_scale == 2.0 and model.factors.context is None


def test_gradients_reach_every_parameter_through_the_implicit_solve():
    torch.manual_seed(0)
    f1, f2, gt, valid = _pair(40)
    model = LearnedFlow(factors={"width": 8, "context_width": 8})
    _perturb(model)
    out = model(f1, f2)
    loss = ((out.flow - gt).square().sum(1) + 1e-4).sqrt()[valid].mean() + out.cov.mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("median", [1, 3])
def test_implicit_matches_unrolled_gradients_float64(median):
    f1, f2, gt, valid = _pair(24, seed=2, dtype=torch.float64)
    # unroll differentiates the FCG iterates, which match the implicit gradient only at convergence: with
    # three IRLS solves per warp, 40 steps left differences near 1e-9
    config = replace(HandsetFlowConfig(), solve_iters=80, min_size=12, median=median)
    grads = {}
    for mode in ("implicit", "unroll"):
        backward = {"mode": mode, "adjoint_iters": 200, "adjoint_tol": 1e-13} if mode == "implicit" else mode
        torch.manual_seed(0)
        model = LearnedFlow(factors={"width": 6, "context_width": 6}, config=config, backward=backward).double()
        _perturb(model)
        out = model(f1, f2)
        loss = ((out.flow - gt).square().sum(1) + 1e-4).sqrt()[valid].mean()
        loss.backward()
        grads[mode] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert grads["unroll"].abs().max() > 0
    torch.testing.assert_close(grads["implicit"], grads["unroll"], rtol=1e-5, atol=1e-9)


def test_eval_mode_records_nothing():
    f1, f2, _, _ = _pair(32)
    with torch.no_grad():
        out = LearnedFlow().eval()(f1, f2)
    assert not out.flow.requires_grad and out.cov.shape == (1, 2, 2, 32, 32)


def test_forward_sequence_records_every_warp():
    f1, f2, gt, valid = _pair(40)
    torch.manual_seed(0)
    model = LearnedFlow(factors={"width": 8, "context_width": 8})
    _perturb(model)
    out, seq = model.forward_sequence(f1, f2)
    with torch.no_grad():
        ref = model(f1, f2)
    torch.testing.assert_close(out.flow, ref.flow)
    assert seq[-1] is out.flow and all(s.requires_grad for s in seq) and len(seq) >= 2 * 3
    seq[0].sum().backward()  # the coarsest warp alone reaches the net
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.factors.body.parameters())
    with pytest.raises(ValueError, match="record"):
        model.forward_sequence(f1, f2, record="some")


def test_shipped_learned_flow_loads_in_eval_mode():
    from gbp_torch import pretrained

    model = pretrained.flow()
    entry = pretrained.manifest()[pretrained.DEFAULT_FLOW]
    assert isinstance(model, LearnedFlow) and not model.training and entry["task"] == "flow"
    assert model.config.var_scale == entry["calibration"]["var_scale"]
    assert model.config.boundary_var == entry["calibration"]["boundary_var"]
    f1, f2, gt, valid = _pair(48)
    with torch.no_grad():
        out = model(f1, f2)
    assert out.flow.shape == (1, 2, 48, 48) and torch.isfinite(out.cov).all()
    assert float(((out.flow - gt).square().sum(1).sqrt())[valid].mean()) < 0.5


def test_factor_cnn_tiled_equals_whole_frame():
    f1, f2, _, _ = _pair(64, dtype=torch.float64)
    flow = 0.3 * torch.randn(1, 2, 64, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    data = flow_data_term(f1, f2, flow, gradient_weight=100.0)
    net = LearnedFactors(tile=None).double()
    _perturb(net)
    whole = net(f1, data, flow, 0)
    net.tile = 16
    tiled = net(f1, data, flow, 0)
    for a, b in ((whole.data_scale, tiled.data_scale), (whole.wh, tiled.wh), (whole.k_data, tiled.k_data),
                 (whole.k_smooth[1], tiled.k_smooth[1])):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(whole.k_data, torch.full_like(whole.k_data, net.base.config.k_data))  # the net acts


def test_shipped_learned_flow_flags_occlusions_not_visible_pixels():
    """``.occluded`` of the default flow model on synthetic layered pairs of a shipped photo: few truly visible
    pixels flagged and most truly occluded ones caught, as by the hand-set model (the occlusion test once used the
    learned per-pixel robust thresholds, well below the hand-set one, and flagged half the visible pixels)."""
    from gbp_torch import pretrained
    from gbp_torch.io import read_gray
    from gbp_torch.paths import samples_dir

    photo = read_gray(samples_dir() / "denoise" / "set12_02_house.png").float()
    rates = {}
    for name, model in (("learned", pretrained.flow()), ("handset", HandsetFlow())):
        flagged_visible = visible = caught = occluded = 0
        for seed in range(3):
            g = torch.Generator().manual_seed(seed)
            p = synthetic_flow_pair(photo[64 * seed:64 * seed + 128, 64:192], g, SyntheticFlowConfig(layers=(2, 3)))
            with torch.no_grad():
                flag = model(p.frame1[None], p.frame2[None]).occluded[0, 0]
            flagged_visible += int((flag & p.valid).sum())
            visible += int(p.valid.sum())
            caught += int((flag & p.occluded).sum())
            occluded += int(p.occluded.sum())
        assert occluded > 300
        rates[name] = (flagged_visible / visible, caught / occluded)
    assert rates["learned"][0] < 0.15 and rates["learned"][0] < 1.5 * rates["handset"][0]
    assert rates["learned"][1] > 0.5

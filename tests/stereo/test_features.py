"""Learned matching features: the feature cost and loss against numpy loops, the band margin, training signal."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gbp_torch.tasks.stereo.cost as cost_module
from gbp_torch.tasks.stereo.cost import CostConfig, cost_volume, feature_cost
from gbp_torch.tasks.stereo.features import MatchingFeatures, matching_loss


def _unit(shape, seed):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64), dim=1)


def test_feature_cost_is_half_one_minus_cosine_of_the_shifted_pixel():
    fl, fr = _unit((2, 5, 4, 9), 0), _unit((2, 5, 4, 9), 1)
    got = feature_cost(fl, fr, 2, 6).numpy()
    a, b = fl.numpy(), fr.numpy()
    for d in range(2, 6):
        for x in range(9):
            ref = 0.5 * (1 - (a[:, :, :, x] * b[:, :, :, max(x - d, 0)]).sum(1))
            np.testing.assert_allclose(got[:, d - 2, :, x], ref, atol=1e-12)


def test_matching_loss_is_the_cross_entropy_at_the_true_disparity():
    fl, fr = _unit((1, 3, 2, 8), 2), _unit((1, 3, 2, 8), 3)
    gt = torch.tensor([[[[0.0, 1.25, 2.0, 3.5, 2.5, 0.75, 5.0, 4.0], [1.0] * 8]]], dtype=torch.float64)
    mask = torch.ones_like(gt, dtype=torch.bool)
    mask[0, 0, 1, 0] = False  # excluded by the caller
    t = torch.tensor(0.2, dtype=torch.float64)
    got = float(matching_loss(fl, fr, gt, mask, 5, t))
    cost = feature_cost(fl, fr, 0, 6).numpy()[0]
    nll = []
    for y in range(2):
        for x in range(8):
            g = float(gt[0, 0, y, x])
            if not mask[0, 0, y, x] or x < int(np.floor(g)):  # masked, or the lower integer has no partner
                continue
            valid = np.arange(6) <= x
            logits = np.where(valid, -cost[:, y, x] / 0.2, -np.inf)
            logp = logits - np.log(np.exp(logits[valid]).sum())
            lo = int(np.floor(g))
            hi, frac = min(lo + 1, 5), g - lo
            nll.append(-(logp[lo] * (1 - frac) + (logp[hi] if valid[hi] else 0.0) * frac))
    assert got == pytest.approx(np.mean(nll), rel=1e-10)


def test_features_ignore_a_brightness_offset_and_see_only_their_radius():
    net = MatchingFeatures(channels=4, width=8, depth=3).double()
    img = torch.rand(1, 1, 24, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.5
    assert torch.allclose(net(img), net(img + 0.3), atol=1e-9)
    bumped = img.clone()
    bumped[..., 12, 20] += 0.4
    changed = (net(bumped) - net(img)).abs().sum(1)[0]
    ys, xs = torch.nonzero(changed > 1e-12, as_tuple=True)
    r = net.radius
    assert int((ys - 12).abs().max()) <= r and int((xs - 20).abs().max()) <= r
    assert int((xs - 20).abs().max()) >= net.depth  # the receptive field is not smaller than the conv stack's


def test_banded_cost_volume_with_features_equals_the_whole_one(monkeypatch):
    """The band margin covers the feature net's receptive radius too."""
    torch.manual_seed(0)
    net = MatchingFeatures(channels=4, width=8, depth=3, weight=0.5)
    g = torch.Generator().manual_seed(4)
    left = F.avg_pool2d(torch.rand(1, 1, 30, 40, generator=g), 3, 1, 1)
    right = torch.roll(left, -3, -1)
    with torch.no_grad():
        whole = cost_volume(left, right, 8, CostConfig(), net).cost
        monkeypatch.setattr(cost_module, "BAND_VALUES", 9 * 40 * 5)
        banded = cost_volume(left, right, 8, CostConfig(), net).cost
        census_only = cost_volume(left, right, 8, CostConfig()).cost
    diff = (whole.int() - banded.int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-3
    assert (whole.int() - census_only.int()).abs().float().mean() > 1  # the features do change the cost


def test_a_few_steps_of_the_matching_loss_lower_it_on_a_shifted_texture():
    g = torch.Generator().manual_seed(1)
    tex = F.avg_pool2d(torch.rand(4, 1, 40, 56, generator=g), 3, 1, 1)
    d = 5
    left, right = tex[..., d:], tex[..., :-d]  # left(x) = right(x - d)
    gt = torch.full((4, 1, 40, 51), float(d))
    mask = torch.ones_like(gt, dtype=torch.bool)
    torch.manual_seed(0)
    net = MatchingFeatures(channels=8, width=16, depth=3)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    t = torch.tensor(0.05)
    losses = []
    for _ in range(30):
        loss = matching_loss(net(left), net(right), gt, mask, 10, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.85 * losses[0]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="weight"):
        MatchingFeatures(weight=1.5)
    with pytest.raises(ValueError, match="depth"):
        MatchingFeatures(depth=0)

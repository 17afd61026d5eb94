"""Factor networks: shapes, positivity (also for extreme pre-activations), gradients, size."""

import math

import pytest
import torch

from gbp_torch.nets import GridFactorNet, count_parameters, positive


def test_shapes_positivity_and_untrained_outputs():
    net = GridFactorNet(in_channels=2, width=8, depth=3, refine=True, robust=True)
    feats, meas = torch.randn(3, 2, 9, 11), torch.randn(3, 9, 11)
    f = net(feats, meas, data_scale=torch.tensor([1.0, 2.0, 4.0]), smooth_scale=3.0)
    assert f.z.shape == (3, 9, 11) and f.data_precision.shape == (3, 9, 11)
    assert f.wh.shape == (3, 9, 10) and f.wv.shape == (3, 8, 11) and f.k_data.shape == (3, 9, 11)
    base = math.log(2) + 1e-3  # zero-initialised last layer: softplus(0) + floor
    torch.testing.assert_close(f.data_precision[:, 0, 0], base * torch.tensor([1.0, 2.0, 4.0]))
    torch.testing.assert_close(f.wh, torch.full_like(f.wh, 3 * base))
    torch.testing.assert_close(f.z, meas)


def test_positive_never_reaches_zero_and_keeps_gradient():
    o = torch.tensor([-1e4, -50.0, 0.0, 50.0], requires_grad=True)
    y = positive(o, 1e-3)
    assert (y >= 1e-3).all() and torch.isfinite(y).all()
    (g,) = torch.autograd.grad(y.sum(), o)
    assert torch.isfinite(g).all() and (g[1:] > 0).all()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = GridFactorNet(in_channels=1, width=8, depth=3, refine=True, robust=True)
    for p in net.parameters():  # leave the zero init so every layer matters
        torch.nn.init.normal_(p, std=0.1)
    f = net(torch.randn(2, 1, 6, 7), torch.randn(2, 6, 7))
    loss = f.z.sum() + f.data_precision.sum() + f.wh.sum() + f.wv.sum() + f.k_data.sum()
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def test_parameter_count_and_bad_shapes():
    net = GridFactorNet(in_channels=1, width=32, depth=5, refine=True)
    expected = (1 * 32 * 9 + 32) + 3 * (32 * 32 * 9 + 32) + (32 * 4 * 9 + 4)
    assert count_parameters(net) == expected
    with pytest.raises(ValueError, match="same H, W"):
        net(torch.randn(1, 1, 5, 5), torch.randn(1, 5, 6))

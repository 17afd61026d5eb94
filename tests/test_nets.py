"""Factor networks: shapes, positivity (also for extreme pre-activations), gradients, size."""

import math

import pytest
import torch

from gbp_torch.nets import ContextBranch, GridFactorNet, count_parameters, positive


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


def _randomised(module, std=0.2, seed=0):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=std)
    return module


@pytest.mark.parametrize("h, w", [(8, 10), (9, 7), (1, 6)])
def test_context_branch_shape_and_zero_start(h, w):
    branch = ContextBranch(in_channels=2, width=6, depth=3, out_channels=5)
    x = torch.randn(2, 2, h, w)
    assert torch.all(branch(x) == 0)  # zero-initialised last conv
    assert _randomised(branch)(x).shape == (2, 5, h, w)


def test_context_branch_sees_farther_than_the_full_resolution_stack():
    """Output at the centre depends on inputs 2x farther away than a same-depth full-resolution stack's."""
    x = torch.zeros(1, 1, 41, 41, dtype=torch.float64, requires_grad=True)
    depth = 4  # full resolution: receptive radius depth = 4 pixels
    branch = _randomised(ContextBranch(1, 6, depth, 1)).double()
    (g,) = torch.autograd.grad(branch(x + torch.randn_like(x))[0, 0, 20, 20], x)
    dist = torch.stack(torch.meshgrid(torch.arange(41), torch.arange(41), indexing="ij")).sub(20).abs().amax(0)
    reach = int(dist[g[0, 0] != 0].max())
    assert 2 * depth - 1 <= reach <= 2 * depth + 1


def test_context_branch_matches_the_plain_net_at_start_and_has_exact_gradients():
    torch.manual_seed(3)
    plain = _randomised(GridFactorNet(in_channels=1, width=6, depth=3), seed=4).double()
    net = GridFactorNet(in_channels=1, width=6, depth=3, context_width=4, context_depth=2).double()
    net.body.load_state_dict(plain.body.state_dict())
    feats, meas = torch.randn(2, 1, 7, 9, dtype=torch.float64), torch.randn(2, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(net(feats, meas).z, plain(feats, meas).z)
    _randomised(net.context, seed=5)
    assert not torch.allclose(net(feats, meas).z, plain(feats, meas).z)
    feats.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: net(f, meas).z, (feats,))

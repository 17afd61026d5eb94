"""Factor networks: shapes (D = 1, 2, 3), positivity, the precision parametrisations against
hand-built oracles, gradients, D = 2 factors solved by GBP against a dense solve, bad shapes."""

import math

import numpy as np
import pytest
import torch

from gbp_torch.grid import solve
from gbp_torch.nets import ContextBranch, GridFactorNet, GridFactors, cholesky_precision, count_parameters, positive


def _randomised(module, std=0.2, seed=0):
    torch.manual_seed(seed)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=std)
    return module


def _hand_lower(raw, floor):
    """L (..., D, D) built entry by entry from the raw lower-triangle values (..., D(D+1)/2), row by row."""
    n = raw.shape[-1]
    d = int(round((math.sqrt(8 * n + 1) - 1) / 2))
    lower = torch.zeros(raw.shape[:-1] + (d, d), dtype=raw.dtype)
    c = 0
    for i in range(d):
        for j in range(i + 1):
            lower[..., i, j] = torch.log1p(torch.exp(raw[..., c])) + floor if i == j else raw[..., c]
            c += 1
    return lower


def test_shapes_positivity_and_untrained_outputs():
    net = GridFactorNet(in_channels=2, width=8, depth=3, refine=True, robust=True)
    feats, meas = torch.randn(3, 2, 9, 11), torch.randn(3, 1, 9, 11)
    f = net(feats, meas, data_scale=torch.tensor([1.0, 2.0, 4.0]), smooth_scale=3.0)
    assert f.z.shape == (3, 1, 9, 11) and f.data_precision.shape == (3, 9, 11) and f.dim == 1
    assert f.wh.shape == (3, 9, 10) and f.wv.shape == (3, 8, 11) and f.k_data.shape == (3, 9, 11)
    assert f.k_smooth is None
    base = math.log(2) + 1e-3  # zero-initialised last layer: softplus(0) + floor
    torch.testing.assert_close(f.data_precision[:, 0, 0], base * torch.tensor([1.0, 2.0, 4.0]))
    torch.testing.assert_close(f.wh, torch.full_like(f.wh, 3 * base))
    torch.testing.assert_close(f.z, meas)
    z, a, (wh, wv) = f.solve_args()
    assert z.shape == (3, 9, 11) and a is f.data_precision and wh is f.wh and wv is f.wv


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("precision", ["scalar", "full"])
def test_shapes_and_positivity_for_any_dim(dim, precision):
    net = _randomised(GridFactorNet(in_channels=3, width=6, depth=2, dim=dim, precision=precision,
                                    robust=True, robust_smooth=True), std=1.0)
    p = 1 if precision == "scalar" else dim * (dim + 1) // 2
    assert net.body[-1].out_channels == p + 2 + dim + 1 + 2  # precision, wh, wv, residual, k_data, k_h, k_v
    feats, meas = torch.randn(2, 3, 5, 7), torch.randn(2, dim, 5, 7)
    f = net(feats, meas, data_scale=torch.tensor([1.0, 10.0]), smooth_scale=0.5)
    assert isinstance(f, GridFactors) and f.dim == dim and f.z.shape == (2, dim, 5, 7)
    assert f.data_precision.shape == ((2, 5, 7) if precision == "scalar" else (2, dim, dim, 5, 7))
    assert f.wh.shape == (2, 5, 6) and f.wv.shape == (2, 4, 7) and f.k_data.shape == (2, 5, 7)
    assert f.k_smooth[0].shape == (2, 5, 6) and f.k_smooth[1].shape == (2, 4, 7)
    for t in (f.wh, f.wv, f.k_data, *f.k_smooth):
        assert (t > 0).all()
    if precision == "scalar":
        assert (f.data_precision > 0).all()
    else:
        blocks = f.data_precision.permute(0, 3, 4, 1, 2).double()
        torch.testing.assert_close(blocks, blocks.transpose(-1, -2), rtol=0, atol=0)
        assert (torch.linalg.eigvalsh(blocks) > 0).all()
    z, a, _ = f.solve_args()
    assert z.shape == ((2, 5, 7) if dim == 1 else (2, dim, 5, 7))
    assert a.shape == ((2, 5, 7) if dim == 1 or precision == "scalar" else (2, dim, dim, 5, 7))


def test_d1_scalar_outputs_are_the_hand_computation_from_the_raw_channels():
    """The D = 1 layout of the shipped checkpoints: [a, wh, wv, residual, k]."""
    net = _randomised(GridFactorNet(in_channels=2, width=6, depth=3, robust=True, floor=0.01), seed=1)
    feats, meas = torch.randn(2, 2, 6, 5), torch.randn(2, 1, 6, 5)
    ds, ss = torch.tensor([2.0, 3.0]), torch.tensor([5.0, 7.0])
    o = net.body(feats)
    assert o.shape[1] == 5
    f = net(feats, meas, data_scale=ds, smooth_scale=ss)
    sp = lambda t: torch.log1p(torch.exp(t)) + 0.01  # noqa: E731
    torch.testing.assert_close(f.data_precision, ds.view(2, 1, 1) * sp(o[:, 0]))
    torch.testing.assert_close(f.wh, ss.view(2, 1, 1) * sp(o[:, 1, :, :4]))
    torch.testing.assert_close(f.wv, ss.view(2, 1, 1) * sp(o[:, 2, :5, :]))
    torch.testing.assert_close(f.z, meas + o[:, 3:4])
    torch.testing.assert_close(f.k_data, sp(o[:, 4]))


def test_state_dict_keys_of_the_d1_net_are_unchanged():
    net = GridFactorNet(in_channels=1, width=8, depth=3, context_width=4, context_depth=2)
    assert list(net.state_dict()) == [f"body.{i}.{k}" for i in (0, 2, 4) for k in ("weight", "bias")] + [
        f"context.body.{i}.{k}" for i in (0, 2) for k in ("weight", "bias")]


@pytest.mark.parametrize("dim", [2, 3])
def test_full_precision_is_l_lt_plus_floor_built_by_hand(dim):
    floor = 0.05
    net = _randomised(GridFactorNet(in_channels=1, width=6, depth=2, dim=dim, precision="full", floor=floor),
                      std=1.0, seed=dim)
    feats, meas = torch.randn(2, 1, 4, 3, dtype=torch.float64), torch.randn(2, dim, 4, 3, dtype=torch.float64)
    net = net.double()
    ds = torch.tensor([1.5, 4.0], dtype=torch.float64)
    f = net(feats, meas, data_scale=ds)
    n = dim * (dim + 1) // 2
    raw = net.body(feats)[:, :n].permute(0, 2, 3, 1)  # (B, H, W, n)
    lower = _hand_lower(raw, floor)
    expected = ds.view(2, 1, 1, 1, 1) * (lower @ lower.transpose(-1, -2) + floor * torch.eye(dim, dtype=torch.float64))
    got = f.data_precision.permute(0, 3, 4, 1, 2)
    torch.testing.assert_close(got, expected)
    eig = torch.linalg.eigvalsh(got)
    assert (eig > 0).all() and (eig >= ds.view(2, 1, 1, 1) * floor * (1 - 1e-9)).all()
    assert raw.abs().amax() > 0.5  # the off-diagonals really were exercised


def test_full_precision_stays_positive_definite_for_extreme_raw_values():
    raw = torch.tensor([-1e4, 1e4, -1e4, 30.0, -30.0, 50.0]).view(1, 6, 1, 1).double()
    a = cholesky_precision(raw, 3, 1e-3).permute(0, 3, 4, 1, 2)
    assert torch.isfinite(a).all() and (torch.linalg.eigvalsh(a) > 0).all()


def test_parametrisations_gradcheck_in_float64():
    torch.manual_seed(0)
    raw = torch.randn(2, 6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r: cholesky_precision(r, 3, 1e-2), (raw,))
    net = _randomised(GridFactorNet(in_channels=2, width=4, depth=2, dim=2, precision="full", robust=True,
                                    robust_smooth=True), std=0.5).double()
    feats = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    meas = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)

    def flat(x, m):
        f = net(x, m, data_scale=2.0, smooth_scale=3.0)
        parts = (f.z, f.data_precision, f.wh, f.wv, f.k_data, *f.k_smooth)
        return torch.cat([t.flatten() for t in parts])

    assert torch.autograd.gradcheck(flat, (feats, meas))


def test_positive_never_reaches_zero_and_keeps_gradient():
    o = torch.tensor([-1e4, -50.0, 0.0, 50.0], requires_grad=True)
    y = positive(o, 1e-3)
    assert (y >= 1e-3).all() and torch.isfinite(y).all()
    (g,) = torch.autograd.grad(y.sum(), o)
    assert torch.isfinite(g).all() and (g[1:] > 0).all()


@pytest.mark.parametrize("dim, precision", [(1, "scalar"), (2, "full")])
def test_gradients_reach_every_parameter(dim, precision):
    torch.manual_seed(0)
    net = GridFactorNet(in_channels=1, width=8, depth=3, refine=True, robust=True, robust_smooth=True,
                        dim=dim, precision=precision)
    for p in net.parameters():  # leave the zero init so every layer matters
        torch.nn.init.normal_(p, std=0.1)
    f = net(torch.randn(2, 1, 6, 7), torch.randn(2, dim, 6, 7))
    loss = f.z.sum() + f.data_precision.sum() + f.wh.sum() + f.wv.sum() + f.k_data.sum() + sum(
        k.sum() for k in f.k_smooth)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(g.abs().sum() > 0 for g in grads)


def _dense_solve(z, a, wh, wv):
    """Oracle: assemble A = blockdiag(a_i) + L_w (x) I_D and b = a z entry by entry; numpy solve.

    z (D, H, W), a (D, D, H, W), wh (H, W-1), wv (H-1, W) as numpy arrays; returns x (D, H, W).
    Unknown (y, x, d) has index (y W + x) D + d.
    """
    d, h, w = z.shape
    n = h * w * d
    big_a, b = np.zeros((n, n)), np.zeros(n)
    idx = lambda y, x, c: (y * w + x) * d + c  # noqa: E731
    for y in range(h):
        for x in range(w):
            for i in range(d):
                b[idx(y, x, i)] = sum(a[i, j, y, x] * z[j, y, x] for j in range(d))
                for j in range(d):
                    big_a[idx(y, x, i), idx(y, x, j)] += a[i, j, y, x]
    edges = [((y, x), (y, x + 1), wh[y, x]) for y in range(h) for x in range(w - 1)]
    edges += [((y, x), (y + 1, x), wv[y, x]) for y in range(h - 1) for x in range(w)]
    for (p, q, wt) in edges:
        for c in range(d):
            i, j = idx(*p, c), idx(*q, c)
            big_a[i, i] += wt
            big_a[j, j] += wt
            big_a[i, j] -= wt
            big_a[j, i] -= wt
    sol = np.linalg.solve(big_a, b)
    return sol.reshape(h, w, d).transpose(2, 0, 1)


def test_d2_full_factors_solved_by_gbp_match_a_dense_solve():
    torch.manual_seed(1)
    net = _randomised(GridFactorNet(in_channels=2, width=6, depth=2, dim=2, precision="full"), std=0.7,
                      seed=7).double()
    feats, meas = torch.randn(2, 2, 3, 4, dtype=torch.float64), torch.randn(2, 2, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        f = net(feats, meas, data_scale=torch.tensor([1.0, 2.0], dtype=torch.float64), smooth_scale=0.5)
    off = f.data_precision[:, 0, 1].abs().amax()
    assert off > 0.1  # genuinely coupled 2x2 blocks
    res = solve(f.z, f.data_precision, (f.wh, f.wv), iters=400)
    assert res.mean.shape == (2, 2, 3, 4)
    for i in range(2):
        expected = _dense_solve(f.z[i].numpy(), f.data_precision[i].numpy(), f.wh[i].numpy(), f.wv[i].numpy())
        np.testing.assert_allclose(res.mean[i].numpy(), expected, rtol=1e-8, atol=1e-8)


def test_d2_scalar_factors_feed_the_solver():
    net = _randomised(GridFactorNet(in_channels=1, width=4, depth=2, dim=2), seed=3).double()
    feats, meas = torch.randn(1, 1, 3, 3, dtype=torch.float64), torch.randn(1, 2, 3, 3, dtype=torch.float64)
    with torch.no_grad():
        f = net(feats, meas)
    res = solve(*f.solve_args(), iters=400)
    a = f.data_precision[0]
    eye = torch.eye(2, dtype=torch.float64).view(2, 2, 1, 1)
    expected = _dense_solve(f.z[0].numpy(), (a * eye).numpy(), f.wh[0].numpy(), f.wv[0].numpy())
    np.testing.assert_allclose(res.mean[0].numpy(), expected, rtol=1e-8, atol=1e-8)


def test_parameter_count_and_bad_shapes():
    net = GridFactorNet(in_channels=1, width=32, depth=5, refine=True)
    expected = (1 * 32 * 9 + 32) + 3 * (32 * 32 * 9 + 32) + (32 * 4 * 9 + 4)
    assert count_parameters(net) == expected
    with pytest.raises(ValueError, match="same B, H, W"):
        net(torch.randn(1, 1, 5, 5), torch.randn(1, 1, 5, 6))
    with pytest.raises(ValueError, match=r"\(B, D, H, W\) = \(1, 1, 5, 5\)"):
        net(torch.randn(1, 1, 5, 5), torch.randn(1, 5, 5))  # the old D = 1 (B, H, W) measurement
    with pytest.raises(ValueError, match="same B, H, W"):
        net(torch.randn(2, 1, 5, 5), torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"C = 1"):
        net(torch.randn(1, 2, 5, 5), torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match=r"\(B, C = 1, H, W\)"):
        net(torch.randn(1, 5, 5), torch.randn(1, 1, 5, 5))
    with pytest.raises(ValueError, match="data_scale"):
        net(torch.randn(2, 1, 5, 5), torch.randn(2, 1, 5, 5), data_scale=torch.ones(3))
    net2 = GridFactorNet(in_channels=1, width=4, depth=2, dim=2, precision="full")
    with pytest.raises(ValueError, match=r"\(B, D, H, W\) = \(1, 2, 4, 4\)"):
        net2(torch.randn(1, 1, 4, 4), torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="smooth_scale"):
        net2(torch.randn(2, 1, 4, 4), torch.randn(2, 2, 4, 4), smooth_scale=torch.ones(3))
    with pytest.raises(ValueError, match=r"D\(D\+1\)/2 = 3"):
        cholesky_precision(torch.randn(1, 4, 2, 2), 2, 1e-3)
    for kwargs in (dict(dim=0), dict(precision="diag"), dict(floor=0.0), dict(depth=1, context_depth=2)):
        with pytest.raises(ValueError):
            GridFactorNet(**kwargs)


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
    feats, meas = torch.randn(2, 1, 7, 9, dtype=torch.float64), torch.randn(2, 1, 7, 9, dtype=torch.float64)
    torch.testing.assert_close(net(feats, meas).z, plain(feats, meas).z)
    _randomised(net.context, seed=5)
    assert not torch.allclose(net(feats, meas).z, plain(feats, meas).z)
    feats.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f: net(f, meas).z, (feats,))


def test_channels_last_runs_convolutions_in_that_layout_and_returns_the_default_one():
    """The CPU fast path of the factor networks: the convolutions see a channels-last input, the caller gets the
    same values (float64) in the default layout, and gradients pass through the layout changes."""
    from gbp_torch.nets import channels_last, conv_stack

    stack = conv_stack(2, 8, 3, 3).double()
    torch.nn.init.normal_(stack[-1].weight)  # the last layer starts at zero
    seen = []
    stack[0].register_forward_pre_hook(lambda _, args: seen.append(
        args[0].is_contiguous(memory_format=torch.channels_last)))
    x = torch.randn(2, 2, 9, 11, dtype=torch.float64, requires_grad=True)
    out = channels_last(stack, x)
    assert seen == [True] and out.is_contiguous()
    torch.testing.assert_close(out, stack(x.detach()), rtol=1e-12, atol=1e-12)
    out.square().sum().backward()
    ref = x.detach().clone().requires_grad_()
    stack(ref).square().sum().backward()
    torch.testing.assert_close(x.grad, ref.grad, rtol=1e-10, atol=1e-12)

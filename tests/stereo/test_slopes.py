"""Slope offsets of the stereo smoothness (gbp_torch.tasks.stereo.slopes): planes, a depth edge, and the robust
solve of the rounds with offsets (the offset energy itself: tests/grid/test_grid_offsets.py)."""

import pytest
import torch
from test_learned import TIGHT, _tiny_problem

from gbp_torch.grid import MULTIGRID, solve
from gbp_torch.tasks.stereo.robust_solve import weighted_solve
from gbp_torch.tasks.stereo.slopes import edge_slopes


def _solve_with_offsets(z, a, wh, wv, ch, cv):
    return solve(z, a, (wh, wv), offsets=(ch, cv), iters=60, tol=1e-13, config=MULTIGRID).mean


def test_with_its_slopes_a_sparsely_observed_plane_is_recovered_where_plain_smoothness_flattens_it():
    h, w = 12, 40
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    plane = (1.0 + 0.4 * x + 0.2 * y)[None]
    a = torch.full((1, h, w), 1e-6, dtype=torch.float64)
    a[..., 15:25] = 1.0  # data in the middle columns only
    wh, wv = torch.full((1, h, w - 1), 10.0, dtype=torch.float64), torch.full((1, h - 1, w), 10.0, dtype=torch.float64)
    ch, cv = edge_slopes(plane, 9, 0.0)
    with_slopes = _solve_with_offsets(plane, a, wh, wv, ch, cv)
    plain = _solve_with_offsets(plane, a, wh, wv, torch.zeros_like(ch), torch.zeros_like(cv))
    assert (with_slopes - plane).abs().max() < 1e-6
    assert (plain - plane).abs()[..., 0].min() > 3.0  # 15 columns from the data at 0.4 px per column, flattened


def test_edge_slopes_follow_the_plane_across_a_depth_edge_and_shrink():
    h, w = 20, 24
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    u = (2.0 + 0.3 * x - 0.5 * y + 10.0 * (x >= 12))[None]
    ch, cv = edge_slopes(u, 9, 0.05)
    torch.testing.assert_close(ch, torch.full_like(ch, 0.25))  # the 10 px jump at x = 11 | 12 is a median outlier
    torch.testing.assert_close(cv, torch.full_like(cv, -0.45))
    ch, cv = edge_slopes(u, 9, 0.4)
    assert (ch == 0).all() and torch.allclose(cv, torch.full_like(cv, -0.1))


def test_zero_offsets_give_the_plain_robust_solve():
    net, left, cues, z, x0, curv, _ = _tiny_problem(0)
    with torch.no_grad():
        f = net(left, cues)
        a = 3.0 * f.data_scale * curv
        zero = (torch.zeros_like(f.wh), torch.zeros_like(f.wv))
        ref = weighted_solve(z, a, f, x0, 40, MULTIGRID)
        res = weighted_solve(z, a, f, x0, 40, MULTIGRID, "unroll", zero)
    torch.testing.assert_close(res.mean, ref.mean, rtol=0, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_robust_solve_with_offsets_implicit_gradients_equal_unrolled_and_finite_differences(seed):
    """The recorded round's solve with slope offsets (float64, converged): the implicit gradient of every
    factor-net parameter equals the unrolled one, and along a random direction a central difference."""
    net, left, cues, z, x0, curv, weights = _tiny_problem(seed)
    offsets = edge_slopes(x0, 5, 0.0)
    assert offsets[0].abs().max() > 0.1

    def value(back):
        f = net(left, cues)
        return (weighted_solve(z, 3.0 * f.data_scale * curv, f, x0, 80, MULTIGRID, back, offsets).mean
                * weights).sum()

    grads = {}
    for mode, back in (("unroll", "unroll"), ("implicit", TIGHT)):
        net.zero_grad()
        value(back).backward()
        grads[mode] = [p.grad.clone() for p in net.parameters()]
    flat = {k: torch.cat([g.flatten() for g in v]) for k, v in grads.items()}
    assert flat["implicit"].abs().max() > 1e-6
    torch.testing.assert_close(flat["implicit"], flat["unroll"], rtol=1e-6, atol=1e-9)
    g = torch.Generator().manual_seed(5)
    direction = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in net.parameters()]
    analytic = float(sum((gi * d).sum() for gi, d in zip(grads["implicit"], direction)))
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            for p, d in zip(net.parameters(), direction):
                p.add_(sign * 1e-6 * d)
            values.append(float(value("unroll")))
            for p, d in zip(net.parameters(), direction):
                p.sub_(sign * 1e-6 * d)
    numeric = (values[0] - values[1]) / 2e-6
    assert abs(analytic) > 1e-4 and abs(analytic - numeric) <= 1e-5 * abs(numeric) + 1e-8

"""Slope offsets of the stereo smoothness (gbp_torch.tasks.stereo.slopes) against a sparse direct solve of the
offset energy, on planes, and through the robust solve that the hand-set rounds run."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
from test_learned import _tiny_problem

from gbp_torch.grid import MULTIGRID
from gbp_torch.grid.checks import check_inputs
from gbp_torch.grid.forward import solve_system
from gbp_torch.tasks.stereo.robust_solve import weighted_solve
from gbp_torch.tasks.stereo.slopes import edge_slopes, offset_rhs


def _solve_with_offsets(z, a, wh, wv, ch, cv):
    sys, zz, _ = check_inputs(z, a, (wh, wv), validate=False)
    sys.b = sys.b + offset_rhs(wh, wv, ch, cv).unsqueeze(1)
    return solve_system(sys, zz, 60, 1e-13, None, None, MULTIGRID).mean[:, 0]


def _sparse_solve(z, a, wh, wv, ch, cv):
    """argmin 1/2 sum a (x - z)^2 + 1/2 sum w (x_j - x_i - c)^2 (j right of / below i) by scipy, one item."""
    h, w = z.shape
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, vals, rhs = [], [], [], a.ravel() * z.ravel()
    for i, j, wt, c in ((idx[:, :-1], idx[:, 1:], wh, ch), (idx[:-1, :], idx[1:, :], wv, cv)):
        i, j, wt, c = i.ravel(), j.ravel(), wt.ravel(), c.ravel()
        rows += [i, j, i, j]
        cols += [i, j, j, i]
        vals += [wt, wt, -wt, -wt]
        np.add.at(rhs, j, wt * c)
        np.add.at(rhs, i, -wt * c)
    mat = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w))
    return spl.spsolve((mat + sp.diags(a.ravel())).tocsc(), rhs).reshape(h, w)


def test_the_offset_rhs_solves_the_offset_energy_exactly():
    g = torch.Generator().manual_seed(3)
    b, h, w = 2, 6, 7
    rnd = lambda *s: torch.rand(*s, generator=g, dtype=torch.float64)  # noqa: E731
    z, a = 5 * rnd(b, h, w), 0.1 + rnd(b, h, w)
    wh, wv = 4 * rnd(b, h, w - 1), 4 * rnd(b, h - 1, w)
    ch, cv = rnd(b, h, w - 1) - 0.5, 2 * rnd(b, h - 1, w) - 1
    x = _solve_with_offsets(z, a, wh, wv, ch, cv)
    for k in range(b):
        ref = _sparse_solve(*(t[k].numpy() for t in (z, a, wh, wv, ch, cv)))
        np.testing.assert_allclose(x[k].numpy(), ref, rtol=0, atol=1e-9)


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


def test_zero_offsets_give_the_recorded_solve_and_offsets_refuse_autograd():
    net, left, cues, z, x0, curv, _ = _tiny_problem(0)
    with torch.no_grad():
        f = net(left, cues)
        a = 3.0 * f.data_scale * curv
        zero = (torch.zeros_like(f.wh), torch.zeros_like(f.wv))
        ref = weighted_solve(z, a, f, x0, 40, MULTIGRID)
        res = weighted_solve(z, a, f, x0, 40, MULTIGRID, "unroll", zero)
    torch.testing.assert_close(res.mean, ref.mean, rtol=1e-10, atol=1e-10)
    f = net(left, cues)
    with pytest.raises(ValueError, match="not recorded for gradients"):
        weighted_solve(z, 3.0 * f.data_scale * curv, f, x0, 4, MULTIGRID, "unroll", zero)

"""The grid fast path and the general factor-graph engine solve the same pixel graph identically (float64)."""

import torch

from gbp_torch.factors.pixel_grid import pixel_grid_graph
from gbp_torch.grid import MULTIGRID, GridRobust, solve
from gbp_torch.robust import RobustKernel

DT = torch.float64


def _problem(seed=0, b=2, h=5, w=6):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(b, h, w, generator=gen, dtype=DT)
    a = torch.rand(b, h, w, generator=gen, dtype=DT) + 0.2
    wh = torch.rand(b, h, w - 1, generator=gen, dtype=DT) * 4
    wv = torch.rand(b, h - 1, w, generator=gen, dtype=DT) * 4
    return z, a, wh, wv


def test_means_and_gbp_variances_match_the_general_engine():
    z, a, wh, wv = _problem()
    grid = solve(z, a, (wh, wv), iters=3000, tol=1e-13)
    graph, pixels = pixel_grid_graph(z, a, wh, wv)
    general = graph.solve(iters=3000, tol=1e-13)
    assert grid.converged and general.converged
    torch.testing.assert_close(grid.mean, general.mean(pixels).reshape(z.shape), atol=1e-10, rtol=0)
    # both are loopy GBP's variance estimate 1 / lam_belief (not the exact marginals)
    torch.testing.assert_close(grid.var, general.cov(pixels).reshape(z.shape), atol=1e-9, rtol=1e-9)


def test_huber_smoothness_reaches_the_same_irls_fixed_point():
    z, a, wh, wv = _problem(seed=1, b=1)
    k = 0.5
    grid = solve(z, a, (wh, wv), iters=60, tol=1e-13, config=MULTIGRID,
                 robust=GridRobust(smooth=RobustKernel("huber", k), outer_iters=400, outer_tol=1e-14))
    graph, pixels = pixel_grid_graph(z, a, wh, wv, robust_smooth=RobustKernel("huber", k))
    general = graph.solve(iters=5000, tol=1e-13, damping=0.3)
    assert general.converged
    torch.testing.assert_close(grid.mean, general.mean(pixels).reshape(z.shape), atol=1e-8, rtol=0)

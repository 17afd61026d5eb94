"""Implicit gradients of grid solves equal unrolled ones and finite differences (float64, converged)."""

import pytest
import torch

from gbp_torch.grid import MULTIGRID, solve
from gbp_torch.grid.irls import GridRobust
from gbp_torch.modes import BackwardConfig
from gbp_torch.robust import RobustKernel

DT = torch.float64
IMPLICIT = BackwardConfig("implicit", adjoint_iters=100, adjoint_tol=1e-13)


def _problem(seed=0, d=1):
    gen = torch.Generator().manual_seed(seed)
    b, h, w = 2, 7, 8
    shape = (b, h, w) if d == 1 else (b, 2, h, w)
    z = torch.randn(*shape, generator=gen, dtype=DT).requires_grad_()
    a = (torch.rand(b, h, w, generator=gen, dtype=DT) + 0.3).requires_grad_()
    wh = (torch.rand(b, h, w - 1, generator=gen, dtype=DT) * 3 + 0.2).requires_grad_()
    wv = (torch.rand(b, h - 1, w, generator=gen, dtype=DT) * 3 + 0.2).requires_grad_()
    weights = torch.randn(*shape, generator=gen, dtype=DT)
    return z, a, wh, wv, weights


def _loss(mean, weights):
    return (mean * weights).sum() + 0.5 * mean.square().sum()


@pytest.mark.parametrize("d", [1, 2])
def test_implicit_equals_unrolled_least_squares(d):
    z, a, wh, wv, weights = _problem(d=d)
    unrolled = solve(z, a, (wh, wv), iters=3000, tol=1e-13)
    assert unrolled.converged
    g_ref = torch.autograd.grad(_loss(unrolled.mean, weights), [z, a, wh, wv])
    mean = solve(z, a, (wh, wv), iters=3000, tol=1e-13, backward=IMPLICIT).mean
    g_imp = torch.autograd.grad(_loss(mean, weights), [z, a, wh, wv])
    for gi, gr in zip(g_imp, g_ref):
        torch.testing.assert_close(gi, gr, atol=1e-8, rtol=1e-6)


def test_implicit_huber_equals_finite_differences():
    z, a, wh, wv, weights = _problem(seed=2)
    k = torch.tensor(0.25, dtype=DT, requires_grad=True)
    rb = GridRobust(smooth=RobustKernel("huber", k), outer_iters=300, outer_tol=1e-14)

    def forward(z_, a_, wh_, wv_, k_):
        r = GridRobust(smooth=RobustKernel("huber", k_), outer_iters=300, outer_tol=1e-14)
        return solve(z_, a_, (wh_, wv_), iters=60, tol=1e-13, robust=r, config=MULTIGRID).mean

    mean = solve(z, a, (wh, wv), iters=60, tol=1e-13, robust=rb, config=MULTIGRID, backward=IMPLICIT).mean
    grads = torch.autograd.grad(_loss(mean, weights), [z, a, wh, wv, k])
    eps = 1e-6
    for t, g in zip([z, a, wh, wv, k], grads):
        for j in (0, t.numel() // 3, t.numel() - 1):
            def at(delta, t=t, j=j):
                args = [u.detach().clone() for u in (z, a, wh, wv, k)]
                idx = [u is t for u in (z, a, wh, wv, k)].index(True)
                args[idx].view(-1)[j] += delta
                with torch.no_grad():
                    return float(_loss(forward(*args), weights))
            fd = (at(eps) - at(-eps)) / (2 * eps)
            assert abs(g.reshape(-1)[j].item() - fd) <= 1e-5 * max(1.0, abs(fd)), (t.shape, j, g.reshape(-1)[j], fd)


def test_implicit_huber_exercises_downweighted_edges():
    z, a, wh, wv, _ = _problem(seed=2)
    rb = GridRobust(smooth=RobustKernel("huber", 0.25), outer_iters=300, outer_tol=1e-14)
    with torch.no_grad():
        x = solve(z, a, (wh, wv), iters=60, tol=1e-13, robust=rb, config=MULTIGRID).mean
    from gbp_torch.grid.irls import smooth_residuals
    rh, rv = smooth_residuals(wh.detach(), wv.detach(), x.unsqueeze(1))
    beyond = (rh > 0.25).float().mean()
    assert 0.1 < beyond < 0.9


@pytest.mark.parametrize("levels", [1, None])
def test_modules_backward_modes_agree(levels):
    from gbp_torch.modules import GridGBP, MultigridGBP

    z, a, wh, wv, weights = _problem(seed=5)
    # truncation must cover the slow modes: ~all of flat GBP's iterations, a few FCG steps for multigrid
    if levels == 1:
        layer = GridGBP(iters=3000, tol=1e-13, backward=BackwardConfig(truncate=2000))
    else:
        layer = MultigridGBP(iters=60, tol=1e-13, backward=BackwardConfig(truncate=10))
    grads = {}
    for mode in ("unroll", "truncated", "implicit"):
        res = layer(z, a, (wh, wv), backward=mode)
        grads[mode] = torch.autograd.grad(_loss(res.mean, weights), [z, a, wh, wv])
    for mode in ("truncated", "implicit"):
        for g, r in zip(grads[mode], grads["unroll"]):
            torch.testing.assert_close(g, r, atol=1e-7, rtol=1e-5)
    warm = layer(z, a, (wh, wv), init=layer(z, a, (wh, wv)), iters=1)
    torch.testing.assert_close(warm.mean, layer(z, a, (wh, wv)).mean, atol=1e-9, rtol=0)


def test_solve_takes_backward_argument():
    z, a, wh, wv, weights = _problem(seed=8)
    unrolled = solve(z, a, (wh, wv), iters=40, tol=1e-13, config=MULTIGRID)
    ref = torch.autograd.grad(_loss(unrolled.mean, weights), [z, wh])
    res = solve(z, a, (wh, wv), iters=40, tol=1e-13, config=MULTIGRID, backward="implicit")
    got = torch.autograd.grad(_loss(res.mean, weights), [z, wh])
    for g, r in zip(got, ref):
        torch.testing.assert_close(g, r, atol=1e-8, rtol=1e-6)
    with pytest.raises(ValueError, match="unknown backward mode"):
        solve(z, a, (wh, wv), backward="adjoint")

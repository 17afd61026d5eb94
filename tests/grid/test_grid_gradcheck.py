"""gradcheck (float64) of the grid layer, and finite gradients in degenerate regimes."""

import pytest
import torch

from gbp_torch.grid.irls import GridRobust
from gbp_torch.modules import GridGBP, MultigridGBP
from gbp_torch.robust import RobustKernel

DT = torch.float64


def _inputs(seed=0, h=3, w=4):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(1, h, w, generator=gen, dtype=DT, requires_grad=True)
    a = (torch.rand(1, h, w, generator=gen, dtype=DT) + 0.5).requires_grad_()
    wh = (torch.rand(1, h, w - 1, generator=gen, dtype=DT) + 0.5).requires_grad_()
    wv = (torch.rand(1, h - 1, w, generator=gen, dtype=DT) + 0.5).requires_grad_()
    return z, a, wh, wv


def test_gradcheck_few_unrolled_gbp_iterations():
    layer = GridGBP(iters=4, backward="unroll")
    assert torch.autograd.gradcheck(lambda z, a, wh, wv: layer(z, a, (wh, wv)).mean, _inputs(), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("layer", [GridGBP(iters=4000, tol=1e-14, backward="implicit"),
                                   MultigridGBP(iters=50, tol=1e-14, backward="implicit")], ids=["flat", "multigrid"])
def test_gradcheck_implicit_layer_at_the_fixed_point(layer):
    assert torch.autograd.gradcheck(lambda z, a, wh, wv: layer(z, a, (wh, wv)).mean, _inputs(1), eps=1e-6, atol=1e-6)


def test_gradcheck_robust_implicit_layer_including_threshold():
    z, a, wh, wv = _inputs(2)
    k = torch.tensor(0.3, dtype=DT, requires_grad=True)

    def f(z, a, wh, wv, k):
        rb = GridRobust(smooth=RobustKernel("huber", k), outer_iters=400, outer_tol=1e-15)
        return MultigridGBP(iters=50, tol=1e-14, backward="implicit", robust=rb)(z, a, (wh, wv)).mean

    assert torch.autograd.gradcheck(f, (z, a, wh, wv, k), eps=1e-7, atol=1e-5)


@pytest.mark.parametrize("backward", ["unroll", "implicit"])
def test_finite_gradients_for_vanishing_precisions_and_tiny_thresholds(backward):
    z, a, wh, wv = _inputs(3, h=6, w=6)
    with torch.no_grad():
        a[0, :3] = 1e-12  # almost no data on half the image
        wh[0, :, 2] = 0.0  # a cut in the edge weights
    k = torch.tensor(1e-9, dtype=DT, requires_grad=True)
    rb = GridRobust(data=RobustKernel("huber", k), smooth=RobustKernel("cauchy", 1e-9), outer_iters=5)
    res = MultigridGBP(iters=20, backward=backward, robust=rb)(z, a, (wh, wv))
    grads = torch.autograd.grad(res.mean.square().sum(), [z, a, wh, wv, k], allow_unused=True)
    assert torch.isfinite(res.mean).all()
    assert all(g is None or torch.isfinite(g).all() for g in grads)

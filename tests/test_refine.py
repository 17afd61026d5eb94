"""GridRefiner: the refined map is the exact minimiser of the energy its factor net predicts;
gradients reach the features, the initial map and the weights."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "grid"))
from grid_reference import direct_solve  # noqa: E402

from gbp_torch.modes import BackwardConfig  # noqa: E402
from gbp_torch.refine import GridRefiner  # noqa: E402

DT = torch.float64


def _refiner(dim, precision, seed=0, **kw):
    torch.manual_seed(seed)
    ref = GridRefiner(dim, feature_channels=3, width=8, depth=3, precision=precision, **kw).double()
    with torch.no_grad():  # leave the zero init: random last layer so factors vary per pixel
        ref.factors.body[-1].weight.normal_(0, 0.3)
    return ref


def _inputs(dim, b=2, h=9, w=11, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, dim, h, w, generator=g, dtype=DT), torch.randn(b, 3, h, w, generator=g, dtype=DT))


@pytest.mark.parametrize("dim,precision", [(1, "scalar"), (2, "scalar"), (2, "full")])
def test_refined_map_is_the_exact_minimiser_of_the_predicted_energy(dim, precision):
    ref = _refiner(dim, precision)
    ref.gbp.iters, ref.gbp.tol = 60, 1e-12
    initial, feats = _inputs(dim)
    out = ref(initial, feats)
    f = ref.factors(torch.cat((feats, initial), 1), initial)
    z, a, (wh, wv) = f.solve_args()
    if dim == 2 and a.dim() == 3:  # scalar precision shared by both components
        a = torch.eye(2, dtype=DT)[None, :, :, None, None] * a[:, None, None]
    exact = direct_solve(z, a, wh, wv).reshape(out.mean.shape)
    torch.testing.assert_close(out.mean, exact, rtol=0, atol=1e-8)
    assert out.cov.shape == (2, dim, dim, 9, 11) and out.var.shape == out.mean.shape
    eig = torch.linalg.eigvalsh(out.cov.permute(0, 3, 4, 1, 2))
    assert (eig > 0).all()


def test_untrained_refiner_smooths_the_initial_map():
    ref = GridRefiner(1, feature_channels=3, width=8, depth=3).double()
    initial, feats = _inputs(1, h=16, w=16)
    out = ref(initial, feats)
    assert out.mean.std() < 0.8 * initial.std()
    torch.testing.assert_close(out.mean.mean(), initial.mean(), rtol=0, atol=0.05)


def test_implicit_gradients_match_unrolled_ones():
    initial, feats = _inputs(2, b=1, h=6, w=7)
    grads = {}
    for mode in ("implicit", "unroll"):
        ref = _refiner(2, "full", backward=BackwardConfig(mode, adjoint_tol=1e-12))
        ref.gbp.iters, ref.gbp.tol = 60, 1e-13
        x0, f0 = initial.clone().requires_grad_(), feats.clone().requires_grad_()
        loss = ref(x0, f0).mean.square().sum()
        grads[mode] = torch.autograd.grad(loss, [x0, f0, *ref.parameters()])
    for gi, gu in zip(grads["implicit"], grads["unroll"]):
        torch.testing.assert_close(gi, gu, rtol=1e-5, atol=1e-8)


def test_gradcheck_through_the_refiner():
    ref = _refiner(1, "scalar")
    ref.gbp.iters, ref.gbp.tol = 60, 1e-14
    initial, feats = _inputs(1, b=1, h=4, w=5)
    inputs = (initial.requires_grad_(), feats.requires_grad_())
    assert torch.autograd.gradcheck(lambda x, f: ref(x, f).mean, inputs, eps=1e-6, atol=1e-6)


def test_bad_shapes_raise():
    ref = GridRefiner(2, feature_channels=3)
    with pytest.raises(ValueError, match=r"initial must have shape \(B, D = 2, H, W\)"):
        ref(torch.zeros(1, 1, 5, 5), torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="features must have shape"):
        ref(torch.zeros(1, 2, 5, 5), torch.zeros(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"features must have shape \(B, C = 3, H, W\)"):  # said C = 5, the
        ref(torch.zeros(1, 2, 5, 5), torch.zeros(1, 4, 5, 5))  # channels with initial appended, then raised late
    with pytest.raises(ValueError, match="initial contains NaN"):  # was 'z contains NaN', from the solver
        ref(torch.full((1, 2, 5, 5), float("nan")), torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="features contains NaN"):
        ref(torch.zeros(1, 2, 5, 5), torch.full((1, 3, 5, 5), float("inf")))
    with pytest.raises(ValueError, match="dim must be 1 or 2"):
        GridRefiner(3, feature_channels=3)

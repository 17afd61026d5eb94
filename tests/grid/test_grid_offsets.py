"""Edge offsets in grid.solve (``w |x_j - x_i - c|^2``): against a scipy solve built from an incidence matrix,
gradients against finite differences, a field rebuilt from its gradients, robust kernels on the offset residuals."""

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
from grid_reference import assemble, random_problem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbp_torch.grid import MULTIGRID, GridConfig, GridRobust, solve
from gbp_torch.modes import BackwardConfig
from gbp_torch.robust import RobustKernel

DT = torch.float64
IMPLICIT = BackwardConfig("implicit", adjoint_iters=200, adjoint_tol=1e-13)


def _incidence(h: int, w: int) -> sp.csr_matrix:
    """(E, H W): row e is -1 at the edge's left / upper pixel i and +1 at its right / lower pixel j; horizontal
    edges first (row-major), then vertical ones."""
    idx = np.arange(h * w).reshape(h, w)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    e = np.arange(i.size)
    return sp.csr_matrix((np.r_[-np.ones(i.size), np.ones(i.size)], (np.r_[e, e], np.r_[i, j])),
                         shape=(i.size, h * w))


def _oracle(z, a, wh, wv, ch, cv):
    """Exact minimiser of the offset energy per item: A from grid_reference.assemble, right-hand side
    ``a z + (B^T W (x) I_D) c`` from the incidence matrix B. z (B, D, H, W); ch (B, D, H, W-1); cv (B, D, H-1, W)."""
    z, a, wh, wv, ch, cv = (t.detach().double().numpy() for t in (z, a, wh, wv, ch, cv))
    nb, d, h, w = z.shape
    inc = _incidence(h, w)
    out = []
    for b in range(nb):
        mat = assemble(a[b], wh[b], wv[b], d=d)
        weights = np.r_[wh[b].ravel(), wv[b].ravel()]
        c = np.concatenate([ch[b].reshape(d, -1), cv[b].reshape(d, -1)], 1).T  # (E, D)
        edge_term = (inc.T @ (weights[:, None] * c))  # (N, D)
        ab = a[b] if a.ndim == 5 else np.eye(d)[:, :, None, None] * a[b][None, None]
        data = np.einsum("ijhw,jhw->hwi", ab, z[b]).reshape(-1, d)
        x = spl.spsolve(mat, (data + edge_term).ravel()).reshape(h, w, d)
        out.append(np.moveaxis(x, -1, 0))
    return torch.as_tensor(np.stack(out))


def _offsets(nb, d, h, w, seed=3, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(nb, d, h, w - 1, generator=g, dtype=DT),
            scale * torch.randn(nb, d, h - 1, w, generator=g, dtype=DT))


@pytest.mark.parametrize("d,full,levels", [(1, False, 1), (1, False, None), (2, False, None), (2, True, 1),
                                           (2, True, None)])
def test_offsets_solve_the_offset_energy_exactly(d, full, levels):
    z, a, wh, wv = random_problem(2, 9, 11, d=d, full=full, seed=1)
    ch, cv = _offsets(2, d, 9, 11)
    res = solve(z, a, (wh, wv), offsets=(ch, cv), iters=4000 if levels == 1 else 80, tol=1e-12,
                config=GridConfig(levels=levels))
    assert res.converged
    zz = z if d == 2 else z.unsqueeze(1)
    ref = _oracle(zz, a, wh, wv, ch, cv)
    torch.testing.assert_close(res.mean.reshape(ref.shape), ref, rtol=0, atol=1e-8)
    plain = solve(z, a, (wh, wv), iters=80, tol=1e-12, config=MULTIGRID).mean
    assert (plain.reshape(ref.shape) - ref).abs().max() > 0.1  # the offsets matter


def test_d1_offsets_may_omit_the_channel_axis_and_zero_offsets_change_nothing():
    z, a, wh, wv = random_problem(2, 6, 7, seed=4)
    ch, cv = _offsets(2, 1, 6, 7)
    with_axis = solve(z, a, (wh, wv), offsets=(ch, cv), iters=40, config=MULTIGRID).mean
    without = solve(z, a, (wh, wv), offsets=(ch[:, 0], cv[:, 0]), iters=40, config=MULTIGRID).mean
    torch.testing.assert_close(with_axis, without, rtol=0, atol=0)
    zero = solve(z, a, (wh, wv), offsets=(torch.zeros_like(ch), torch.zeros_like(cv)), iters=40, config=MULTIGRID)
    torch.testing.assert_close(zero.mean, solve(z, a, (wh, wv), iters=40, config=MULTIGRID).mean, rtol=0, atol=0)


def test_a_field_is_rebuilt_from_its_gradients_and_one_known_pixel():
    """Poisson reconstruction: the offsets are the exact differences of a field, one pixel is observed."""
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(0, 3, 40, dtype=DT), torch.linspace(0, 4, 56, dtype=DT), indexing="ij")
    truth = (torch.sin(yy * 2) * torch.cos(xx) + 0.3 * torch.randn(40, 56, generator=g, dtype=DT))[None]
    offsets = (truth[..., :, 1:] - truth[..., :, :-1], truth[..., 1:, :] - truth[..., :-1, :])
    a = torch.zeros_like(truth)
    a[0, 17, 23] = 1.0
    res = solve(truth, a, 1.0, offsets=offsets, iters=60, tol=1e-12, config=MULTIGRID)
    assert res.converged
    torch.testing.assert_close(res.mean, truth, rtol=0, atol=1e-8)


def test_gradients_reach_the_offsets_and_weights_implicit_and_unrolled_equal_finite_differences():
    z, a, wh, wv = random_problem(1, 5, 6, seed=2)
    ch, cv = _offsets(1, 1, 5, 6, seed=5)

    def mean(ch_, cv_, wh_, backward):
        return solve(z, a, (wh_, wv), offsets=(ch_, cv_), iters=60, tol=1e-13, config=MULTIGRID,
                     backward=backward).mean

    inputs = tuple(t.clone().requires_grad_() for t in (ch, cv, wh))
    assert torch.autograd.gradcheck(lambda *t: mean(*t, IMPLICIT), inputs, atol=1e-7, rtol=1e-5)
    weights = torch.randn(z.shape, generator=torch.Generator().manual_seed(9), dtype=DT)
    g_imp = torch.autograd.grad((mean(*inputs, IMPLICIT) * weights).sum(), inputs)
    g_unr = torch.autograd.grad((mean(*inputs, "unroll") * weights).sum(), inputs)
    for gi, gu in zip(g_imp, g_unr):
        torch.testing.assert_close(gi, gu, rtol=1e-6, atol=1e-9)


def _huber_energy(x, z, a, wh, wv, ch, cv, k):
    """Independent numpy Huber-smoothness energy with offsets (D = 1, one item); x flat."""
    x = x.reshape(z.shape)

    def huber(r):
        return np.where(r <= k, 0.5 * r * r, k * r - 0.5 * k * k)

    rh = np.sqrt(wh) * np.abs(x[:, 1:] - x[:, :-1] - ch)
    rv = np.sqrt(wv) * np.abs(x[1:] - x[:-1] - cv)
    return 0.5 * (a * (x - z) ** 2).sum() + huber(rh).sum() + huber(rv).sum()


def test_robust_smoothness_sees_the_offset_residuals():
    z, a, wh, wv = random_problem(1, 5, 6, seed=6, ratio=4.0)
    ch, cv = _offsets(1, 1, 5, 6, seed=7, scale=2.0)
    k = 0.6
    rb = GridRobust(smooth=RobustKernel("huber", k), outer_iters=1500, outer_tol=1e-13)
    x = solve(z, a, (wh, wv), offsets=(ch[:, 0], cv[:, 0]), iters=200, tol=1e-13, robust=rb, config=MULTIGRID).mean
    args = [t[0].numpy() for t in (z, a, wh, wv)] + [ch[0, 0].numpy(), cv[0, 0].numpy(), k]
    ref = so.minimize(_huber_energy, z[0].numpy().ravel().copy(), args=tuple(args), method="L-BFGS-B",
                      options=dict(maxiter=20000, maxfun=200000, ftol=1e-15, gtol=1e-11))
    assert _huber_energy(x[0].numpy().ravel(), *args) <= ref.fun + 1e-9 * abs(ref.fun)
    torch.testing.assert_close(x[0], torch.as_tensor(ref.x.reshape(5, 6)), rtol=0, atol=1e-4)
    rh = np.sqrt(args[2]) * np.abs(np.diff(x[0].numpy(), axis=1) - args[4])
    assert 0.1 < (rh > k).mean() < 0.9  # the kernel's both branches are used

    # the implicit gradient of the robust solution in the offsets against central differences
    c = ch[:, 0].clone().requires_grad_()
    weights = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=DT)
    mean = solve(z, a, (wh, wv), offsets=(c, cv[:, 0]), iters=200, tol=1e-13, robust=rb, config=MULTIGRID,
                 backward=IMPLICIT).mean
    (grad,) = torch.autograd.grad((mean * weights).sum(), c)
    for j in (0, 7, c.numel() - 1):
        def loss(delta, j=j):
            cc = ch[:, 0].clone()
            cc.view(-1)[j] += delta
            return float((solve(z, a, (wh, wv), offsets=(cc, cv[:, 0]), iters=200, tol=1e-13, robust=rb,
                                config=MULTIGRID).mean * weights).sum())
        fd = (loss(1e-6) - loss(-1e-6)) / 2e-6
        assert abs(grad.view(-1)[j].item() - fd) <= 1e-5 * max(1.0, abs(fd)), (j, grad.view(-1)[j], fd)


@pytest.mark.parametrize("offsets,message", [
    (torch.zeros(1, 5, 6), "offsets must be a pair"),
    ((torch.zeros(1, 5, 5), torch.zeros(1, 4, 7)), r"offsets\[0\] \(horizontal\) must have shape"),
    ((torch.zeros(1, 5, 6), torch.zeros(1, 2, 4, 7)), r"offsets\[1\] \(vertical\) must have shape"),
    ((torch.full((1, 5, 6), float("nan")), torch.zeros(1, 4, 7)), r"offsets\[0\] \(horizontal\) contains NaN"),
])
def test_bad_offsets_are_refused_by_name(offsets, message):
    z, a, wh, wv = random_problem(1, 5, 7, seed=0, dtype=torch.float32)
    with pytest.raises(ValueError, match=message):
        solve(z, a, (wh, wv), offsets=offsets)


def test_the_grid_layers_pass_offsets_and_upcast_them_under_autocast():
    from gbp_torch.modules import MultigridGBP

    z, a, wh, wv = random_problem(1, 8, 9, seed=8, dtype=torch.float32)
    ch, cv = (c.float() for c in _offsets(1, 1, 8, 9, seed=9))
    layer = MultigridGBP(iters=30)
    ref = solve(z, a, (wh, wv), offsets=(ch, cv), iters=30, config=MULTIGRID).mean
    torch.testing.assert_close(layer(z, a, (wh, wv), offsets=(ch, cv)).mean, ref, rtol=0, atol=0)
    half = layer(z, a, (wh, wv), offsets=(ch.bfloat16(), cv.bfloat16())).mean
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, ref, rtol=0, atol=0.05)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), b=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6),
       d=st.sampled_from([1, 2]), poison=st.sampled_from([None, float("nan"), float("inf")]),
       flat=st.booleans())
def test_fuzzed_offsets_give_the_exact_solve_or_a_named_error(seed, b, h, w, d, poison, flat):
    g = torch.Generator().manual_seed(seed)
    z, a, wh, wv = random_problem(b, h, w, d=d, seed=seed % 1000)
    a = a + 0.1  # every pixel observed: the oracle is the plain sparse solve
    ch = torch.randn(b, d, h, w - 1, generator=g, dtype=DT)
    cv = torch.randn(b, d, h - 1, w, generator=g, dtype=DT)
    target = ch if ch.numel() else cv
    if poison is not None and target.numel():
        target.view(-1)[int(torch.randint(target.numel(), (1,), generator=g))] = poison
    config = GridConfig() if flat else MULTIGRID
    try:
        res = solve(z, a, (wh, wv), offsets=(ch, cv), iters=4000 if flat else 60, tol=1e-12, config=config)
    except ValueError as err:
        assert "offsets" in str(err) and poison is not None and target.numel(), err
        return
    assert poison is None or not target.numel()
    zz = z if d == 2 else z.unsqueeze(1)
    torch.testing.assert_close(res.mean.reshape(zz.shape), _oracle(zz, a, wh, wv, ch, cv), rtol=0, atol=1e-7)

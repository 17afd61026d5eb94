"""Multigrid: same answer as the direct solve, fast contraction, transfers."""

import shutil
import warnings

import numpy as np
import pytest
import torch
from grid_reference import assemble, direct_solve, random_problem

from gbp_torch.grid import MULTIGRID, GridConfig, GridRobust, MultigridConfig, solve
from gbp_torch.grid.checks import check_inputs
from gbp_torch.grid.multigrid import build_hierarchy, dense_matrix, safe_cholesky, vcycle_solve
from gbp_torch.grid.stencil import Stencil, system_stencil
from gbp_torch.grid.transfer import aggregate, coarse_shape, prolong_bilinear, prolong_constant, restrict_bilinear


@pytest.mark.parametrize("method", ["fcg", "vcycle"])
@pytest.mark.parametrize("smoother,transfer", [("gbp", "bilinear"), ("gbp", "constant"), ("jacobi", "bilinear")])
def test_multigrid_matches_direct_solve_odd_sizes(method, smoother, transfer):
    z, a, wh, wv = random_problem(2, 33, 47, seed=1, ratio=20.0)
    mg = MultigridConfig(method=method, smoother=smoother, transfer=transfer,
                         cycle=(1, 1) if smoother == "gbp" else (2, 2))
    res = solve(z, a, (wh, wv), tol=1e-11, iters=200, config=GridConfig(levels=None, multigrid=mg))
    assert res.converged
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-9)


def test_multigrid_d2_full_precision_matches_direct_solve():
    z, a, wh, wv = random_problem(2, 20, 18, d=2, full=True, seed=2, ratio=10.0)
    res = solve(z, a, (wh, wv), tol=1e-11, iters=100, config=MULTIGRID)
    assert res.converged
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-9)


def test_multigrid_equals_flat_gbp_including_variances():
    z, a, wh, wv = random_problem(1, 24, 24, seed=3, ratio=5.0)
    flat = solve(z, a, (wh, wv), iters=5000, tol=1e-12)
    mg = solve(z, a, (wh, wv), tol=1e-12, config=GridConfig(levels=None, lam_tol=1e-13))
    torch.testing.assert_close(mg.mean, flat.mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(mg.var, flat.var, rtol=1e-10, atol=0)
    assert mg.work < flat.work / 5


def test_max_levels_and_masks():
    z, a, wh, wv = random_problem(1, 40, 30, seed=4, ratio=10.0)
    mask = torch.rand(1, 40, 30, generator=torch.Generator().manual_seed(0)) > 0.3
    res = solve(z, a, (wh, wv), tol=1e-11, iters=200, mask=mask, config=GridConfig(levels=3))
    assert res.converged
    torch.testing.assert_close(res.mean, direct_solve(z, a * mask, wh, wv), rtol=0, atol=1e-9)


def test_vcycle_contraction_is_fast_and_size_independent():
    rates = []
    for n in (32, 128):
        z = torch.randn(1, n, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
        sys, _, _ = check_inputs(z, 1.0, 100.0)
        hier = build_hierarchy(sys, MULTIGRID)
        _, hist, _, _ = vcycle_solve(sys, hier, torch.zeros_like(sys.b), 8, None)
        rates.append(float((hist[-1] / hist[2]) ** (1 / 5)))
    assert max(rates) < 0.3, rates
    assert abs(rates[0] - rates[1]) < 0.1, rates


def test_edge_aware_weights_fcg_converges():
    g = torch.Generator().manual_seed(5)
    n = 48
    img = (torch.rand(1, n // 8, n // 8, generator=g, dtype=torch.float64) > 0.5).double()
    img = img.repeat_interleave(8, 1).repeat_interleave(8, 2)  # blocky image with sharp edges
    wh = 100.0 * torch.exp(-((img[..., 1:] - img[..., :-1]) ** 2) * 4.6)  # 100x contrast
    wv = 100.0 * torch.exp(-((img[..., 1:, :] - img[..., :-1, :]) ** 2) * 4.6)
    z = img + 0.1 * torch.randn(1, n, n, generator=g, dtype=torch.float64)
    res = solve(z, 1.0, (wh, wv), tol=1e-10, iters=40, config=MULTIGRID)
    assert res.converged and res.iters <= 25
    torch.testing.assert_close(res.mean, direct_solve(z, torch.ones_like(z), wh, wv), rtol=0, atol=1e-8)


def test_c2f_start_reduces_the_error_of_flat_gbp():
    z, a, wh, wv = random_problem(1, 64, 64, seed=6, ratio=50.0)
    ref = direct_solve(z, a, wh, wv)
    c2f = MultigridConfig(method="c2f")
    err = [float((solve(z, a, (wh, wv), iters=20, config=GridConfig(levels=lv, multigrid=c2f)).mean - ref).norm()
                 / ref.norm()) for lv in (1, None)]
    assert err[1] < err[0] / 3, err


@pytest.mark.parametrize("h,w", [(8, 8), (7, 9), (1, 5), (6, 1)])
def test_transfers_are_adjoint(h, w):
    g = torch.Generator().manual_seed(h * w)
    hc, wc = coarse_shape(h, w)
    xc = torch.randn(2, hc, wc, generator=g, dtype=torch.float64)
    f = torch.randn(2, h, w, generator=g, dtype=torch.float64)
    torch.testing.assert_close((prolong_bilinear(xc, h, w) * f).sum(), (xc * restrict_bilinear(f)).sum())
    torch.testing.assert_close((prolong_constant(xc, h, w) * f).sum(), (xc * aggregate(f)).sum())
    torch.testing.assert_close(prolong_bilinear(torch.ones(1, hc, wc), h, w), torch.ones(1, h, w))


def test_dense_coarse_matrix_matches_assembly():
    z, a, wh, wv = random_problem(2, 3, 4, d=2, full=True, seed=7)
    sys, _, _ = check_inputs(z, a, (wh, wv))
    dense = dense_matrix(sys)  # unknowns ordered (d, y, x)
    ref = torch.as_tensor(assemble(a[1].numpy(), wh[1].numpy(), wv[1].numpy(), d=2).toarray())  # (y, x, d)
    perm = torch.arange(24).reshape(3, 4, 2).permute(2, 0, 1).reshape(-1)
    torch.testing.assert_close(dense[1], ref[perm][:, perm])


def test_robust_irls_inside_multigrid_matches_flat():
    from gbp_torch.robust import RobustKernel
    z, a, wh, wv = random_problem(1, 20, 20, seed=8, ratio=5.0)
    rb = GridRobust(data=RobustKernel("huber", 0.5), smooth=RobustKernel("huber", 0.3), outer_iters=8)
    flat = solve(z, a, (wh, wv), iters=4000, tol=1e-12, robust=rb)
    mg = solve(z, a, (wh, wv), tol=1e-12, robust=rb, config=MULTIGRID)
    assert flat.outer_iters == mg.outer_iters == 8
    torch.testing.assert_close(mg.mean, flat.mean, rtol=0, atol=1e-9)


def test_multigrid_d2_robust_runs_and_is_finite():
    from gbp_torch.robust import RobustKernel
    z, a, wh, wv = random_problem(1, 16, 16, d=2, full=True, seed=9)
    res = solve(z, a, (wh, wv), tol=1e-8, robust=GridRobust(smooth=RobustKernel("cauchy", 1.0)), config=MULTIGRID)
    assert torch.isfinite(res.mean).all() and res.converged


def test_per_level_damping_schedule():
    z, a, wh, wv = random_problem(1, 30, 30, seed=10, ratio=10.0)
    res = solve(z, a, (wh, wv), tol=1e-11, config=GridConfig(levels=None, damping=(0.5, 0.6, 0.7)))
    assert res.converged
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-9)


def _interpolation_matrix(n: int) -> np.ndarray:
    """The 1-D cell-centred linear interpolation (n, ceil(n/2)), built entry by entry."""
    nc = (n + 1) // 2
    m = np.zeros((n, nc))
    for i in range(n):
        j = i // 2
        m[i, j] += 0.75
        m[i, min(max(j - 1 if i % 2 == 0 else j + 1, 0), nc - 1)] += 0.25
    return m


@pytest.mark.parametrize("h,w", [(7, 5), (1, 9), (8, 8), (13, 1), (2, 3)])
def test_bilinear_transfers_match_a_numpy_tensor_product(h, w):
    """Prolongation = P_h X P_w^T with the 1-D cell-centred interpolation matrices built entry by entry;
    restriction = its transpose."""
    ph, pw = _interpolation_matrix(h), _interpolation_matrix(w)
    g = torch.Generator().manual_seed(h * 31 + w)
    xc = torch.randn(2, ph.shape[1], pw.shape[1], generator=g, dtype=torch.float64)
    x = torch.randn(2, h, w, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(prolong_bilinear(xc, h, w).numpy(), ph @ xc.numpy() @ pw.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(restrict_bilinear(x).numpy(), ph.T @ x.numpy() @ pw, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile (inductor) needs a C++ compiler on the CPU")
def test_compiled_transfers_match_the_numpy_tensor_products():
    """Under torch.compile the prolongation and (even sizes) the restriction are written out axis by axis (not
    F.interpolate, not a replicate-padded copy): the same operators, odd and even sizes, a single coarse cell."""
    prolong = torch.compile(prolong_bilinear, dynamic=False)
    restrict = torch.compile(restrict_bilinear, dynamic=False)
    for h, w in [(7, 5), (1, 2), (8, 8), (6, 10), (2, 2)]:
        ph, pw = _interpolation_matrix(h), _interpolation_matrix(w)
        g = torch.Generator().manual_seed(h + w)
        xc = torch.randn(3, ph.shape[1], pw.shape[1], generator=g, dtype=torch.float64)
        np.testing.assert_allclose(prolong(xc, h, w).numpy(), ph @ xc.numpy() @ pw.T, rtol=1e-12, atol=1e-12)
        x = torch.randn(3, h, w, generator=g, dtype=torch.float64)
        np.testing.assert_allclose(restrict(x).numpy(), ph.T @ x.numpy() @ pw, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype,atol", [(torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)])
def test_low_precision_inputs_are_solved_in_float32(dtype, atol):
    """float16 / bfloat16 inputs (autocast): the answer of the direct solve on the rounded inputs, to the
    output dtype's rounding, in that dtype; no spurious unobservable pixels (bfloat16's 100 eps is 0.8)."""
    z, a, wh, wv = random_problem(2, 21, 26, seed=4, ratio=10.0)
    low = [t.to(dtype) for t in (z, a, wh, wv)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = solve(low[0], low[1], (low[2], low[3]), tol=1e-6, iters=50, config=MULTIGRID)
    assert res.mean.dtype == dtype and res.var.dtype == dtype and res.unobservable is None
    exact = direct_solve(*(t.double() for t in low))
    torch.testing.assert_close(res.mean.double(), exact, rtol=0, atol=atol)


def test_stencils_match_dense_matrices():
    """A as a stencil equals the dense A (apply and residual); a random stencil's transpose is the dense
    transpose of its matrix (built column by column from unit vectors)."""
    z, a, wh, wv = random_problem(2, 5, 7, seed=5)
    sys = check_inputs(z, a, (wh, wv))[0]
    dense = dense_matrix(sys)
    op = system_stencil(sys)
    g = torch.Generator().manual_seed(0)
    x, r = (torch.randn(2, 1, 5, 7, generator=g, dtype=torch.float64) for _ in range(2))
    ax = (dense @ x.reshape(2, -1, 1)).reshape(x.shape)
    torch.testing.assert_close(op.apply(x), ax)
    torch.testing.assert_close(op.residual(r, x), r - ax)
    shapes = ((2, 1, 5, 6), (2, 1, 5, 6), (2, 1, 4, 7), (2, 1, 4, 7))
    st = Stencil(torch.randn(2, 5, 7, generator=g, dtype=torch.float64),
                 tuple(torch.randn(s, generator=g, dtype=torch.float64) for s in shapes))
    eye = torch.eye(35, dtype=torch.float64).reshape(35, 1, 5, 7)
    cols = torch.stack([st.apply(eye[i:i + 1].expand(2, 1, 5, 7)) for i in range(35)], -1)  # (2, 1, 5, 7, 35)
    m = cols.reshape(2, 35, 35)
    torch.testing.assert_close(st.apply_t(r), (m.mT @ r.reshape(2, -1, 1)).reshape(r.shape))


def test_safe_cholesky_leaves_spd_items_exact_and_factors_singular_ones_shifted():
    g = torch.Generator().manual_seed(4)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    spd = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)
    lap = torch.diag(torch.full((6,), 2.0, dtype=torch.float64)) - torch.diag(torch.ones(5, dtype=torch.float64), 1) \
        - torch.diag(torch.ones(5, dtype=torch.float64), -1)
    lap[0, 0] = lap[-1, -1] = 1.0  # a path graph's Laplacian: singular (constants)
    chol = safe_cholesky(torch.stack((spd, lap)))
    torch.testing.assert_close(chol[0], torch.linalg.cholesky(spd), rtol=0, atol=0)
    only_spd = safe_cholesky(torch.stack((spd, 2 * spd)))  # no item fails: one factorisation on the CPU
    torch.testing.assert_close(only_spd, torch.linalg.cholesky(torch.stack((spd, 2 * spd))), rtol=0, atol=0)
    shifted = lap + 1e-5 * 2.0 * torch.eye(6, dtype=torch.float64)
    torch.testing.assert_close(chol[1] @ chol[1].T, shifted)


def _roughness(x):
    return float(x.diff(dim=-1).square().sum() + x.diff(dim=-2).square().sum())


@pytest.mark.parametrize("scale", [0.0, 1e-14, 1e-12, 1e-10])
def test_solve_without_validation_stays_finite_on_a_system_without_usable_data(scale):
    """Data precisions zero or far below rounding beside edge weights 100 (textureless frames in flow, which
    calls solve with validate=False): the coarse Cholesky and FCG used to raise or overflow to NaN."""
    bad = 0
    for seed in range(10):
        g = torch.Generator().manual_seed(seed)
        a = torch.zeros(1, 2, 2, 16, 21)
        a[:, 0, 0], a[:, 1, 1] = (scale * torch.rand(2, 1, 16, 21, generator=g)).unbind(0)
        z, x0 = torch.randn(2, 1, 2, 16, 21, generator=g).unbind(0)
        wh, wv = torch.full((1, 16, 20), 100.0), torch.full((1, 15, 21), 100.0)
        for smoother in ("gbp", "jacobi"):
            res = solve(z, a, (wh, wv), x0=x0, iters=6, validate=False,
                        config=GridConfig(levels=None, multigrid=MultigridConfig(smoother=smoother)))
            bad += int(not torch.isfinite(res.mean).all())
            assert _roughness(res.mean) < _roughness(x0)  # it still smooths
    assert bad == 0


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile (inductor) needs a C++ compiler on the CPU")
@pytest.mark.parametrize("d", [1, 2])
def test_compiled_fcg_step_gives_the_eager_solve_and_its_work(d, monkeypatch):
    """MultigridConfig(compile=True): each FCG step (V-cycle, direction, A p, products, updates) runs through
    torch.compile (its stencils as fused expressions), scalar and 2x2-block fields."""
    from gbp_torch.grid import multigrid

    z, a, wh, wv = random_problem(2, 24, 31, d=d, full=d == 2, seed=7, ratio=30.0)
    z, a, wh, wv = (t.float() for t in (z, a, wh, wv))
    eager = solve(z, a, (wh, wv), iters=4, config=MULTIGRID)
    compiled_config = GridConfig(levels=None, multigrid=MultigridConfig(compile=True))
    steps = []
    real_compiled = multigrid.compiled

    def recording(fn):
        return lambda *args: steps.append(fn.__name__) or real_compiled(fn)(*args)

    monkeypatch.setattr(multigrid, "compiled", recording)
    compiled = solve(z, a, (wh, wv), iters=4, config=compiled_config)
    assert steps == ["_fcg_step"] * 4  # every step went through the compiled whole step
    torch.testing.assert_close(compiled.mean, eager.mean, rtol=1e-5, atol=1e-6)
    assert compiled.work == eager.work
    exact = direct_solve(z, a, wh, wv).float()
    assert float((compiled.mean - exact).abs().max()) < 1e-3 * float(exact.abs().max())
    if d == 1:  # gradients through the compiled steps (unroll backward) are the eager ones
        grads = []
        for config in (MULTIGRID, compiled_config):
            zz, hh = z.clone().requires_grad_(), wh.clone().requires_grad_()
            solve(zz, a, (hh, wv), iters=4, config=config, backward="unroll").mean.square().sum().backward()
            grads.append((zz.grad, hh.grad))
        for eager_grad, compiled_grad in zip(*grads):
            torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-5)


def test_jacobi_multigrid_sets_up_variances_only_when_read():
    """The Jacobi smoother needs no lam-messages: the variances are set up on the first read of ``var``
    (the inner solves of a warping loop never read them), equal the GBP variances of the same system,
    and follow the grad mode of the solve, not of the read."""
    z, a, wh, wv = random_problem(1, 20, 18, d=2, full=True, seed=4, ratio=10.0)
    jacobi = GridConfig(levels=None, lam_tol=1e-13, multigrid=MultigridConfig(smoother="jacobi", cycle=(2, 2)))
    res = solve(z, a, (wh, wv), tol=1e-11, iters=100, config=jacobi)
    assert res.lam_iters == 0 and callable(res.variance)
    reference = solve(z, a, (wh, wv), iters=5000, tol=1e-12)  # flat GBP: variances at the lam fixed point
    torch.testing.assert_close(res.var, reference.var, rtol=1e-9, atol=0)
    assert not callable(res.variance)  # set up once, then kept

    a = a.clone().requires_grad_()
    with torch.no_grad():
        detached = solve(z, a, (wh, wv), iters=3, config=jacobi)
    assert not detached.var.requires_grad
    assert solve(z, a, (wh, wv), iters=3, config=jacobi).var.requires_grad


@pytest.mark.parametrize("d,full", [(1, False), (2, True)])
@pytest.mark.parametrize("cycle", [(1, 1), (0, 2)])
def test_solves_without_autograd_update_in_place_but_never_the_callers_x0(d, full, cycle):
    """Without autograd the V-cycle and FCG update their own vectors in place (one fine-level vector fewer each at
    the peak on big grids): every iterate equals the recorded (out-of-place) solve's, and x0 is left as it was."""
    z, a, wh, wv = random_problem(2, 21, 26, d=d, full=full, seed=9, ratio=30.0)
    x0 = torch.randn(z.shape, generator=torch.Generator().manual_seed(1), dtype=z.dtype)
    kept = x0.clone()
    config = GridConfig(levels=None, multigrid=MultigridConfig(cycle=cycle))
    with torch.no_grad():
        lean = solve(z, a, (wh, wv), iters=6, x0=x0, config=config)
    recorded = solve(z, a, (wh, wv), iters=6, x0=x0, config=config)
    assert torch.equal(x0, kept)
    torch.testing.assert_close(lean.mean, recorded.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(lean.residuals, recorded.residuals, rtol=1e-9, atol=1e-15)
    assert float((lean.mean - direct_solve(z, a, wh, wv)).abs().max()) < 1e-3 * float(z.abs().max())


@pytest.mark.parametrize("method", ["fcg", "vcycle"])
@pytest.mark.parametrize("transfer", ["bilinear", "constant"])
def test_high_contrast_data_pinned_beside_free_pixels_converges(method, transfer):
    """Data precision 1e4 outside a rectangle, 0 inside (an inpainting mask): the coarse levels' data term is P^T a,
    which the coarse correction cannot overshoot (with the 2x2 block sum and bilinear P the V-cycle diverged here:
    its error grew to 1e7 in 5 cycles)."""
    g = torch.Generator().manual_seed(0)
    z = torch.rand(2, 40, 48, generator=g, dtype=torch.float64)
    a = torch.full_like(z, 1e4)
    a[:, 10:30, 12:40] = 0.0
    ones = torch.ones(2, 40, 47, dtype=torch.float64), torch.ones(2, 39, 48, dtype=torch.float64)
    ref = direct_solve(z, a, *ones)
    config = GridConfig(levels=None, multigrid=MultigridConfig(method=method, transfer=transfer))
    errors = [float((solve(z, a, ones, iters=k, config=config).mean - ref).abs().max()) for k in (1, 4, 16)]
    assert errors[0] < 0.05 and errors[2] < errors[1] < errors[0], errors
    assert errors[2] < (1e-7 if method == "fcg" else 1e-3), errors

"""Flat grid GBP against independent oracles (float64)."""

import pytest
import torch
from grid_reference import direct_solve, exact_marginal_var, naive_loopy_gbp, random_problem

from gbp_torch.grid import MULTIGRID, GridConfig, GridRobust, solve
from gbp_torch.grid.checks import check_inputs
from gbp_torch.grid.gbp import gbp_iterate, lam_setup

TOL = dict(iters=3000, tol=1e-12)


def test_d1_means_match_sparse_direct_solve_batched():
    z, a, wh, wv = random_problem(3, 7, 9, ratio=5.0)
    res = solve(z, a, (wh, wv), **TOL)
    assert res.converged
    assert res.mean.shape == z.shape and res.var.shape == z.shape
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-10)


def test_d2_full_precision_means_match_direct_solve():
    z, a, wh, wv = random_problem(2, 6, 8, d=2, full=True)
    assert (a[:, 0, 1].abs() > 0.1).any()  # genuinely coupled components
    res = solve(z, a, (wh, wv), **TOL)
    assert res.converged and res.mean.shape == z.shape and res.var.shape == (2, 2, 2, 6, 8)
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-10)


def test_d2_scalar_precision_decouples_into_two_d1_problems():
    z, a, wh, wv = random_problem(2, 5, 6, d=2)
    res = solve(z, a, (wh, wv), **TOL)
    for c in range(2):
        torch.testing.assert_close(res.mean[:, c], direct_solve(z[:, c], a, wh, wv), rtol=0, atol=1e-10)
    torch.testing.assert_close(res.var[:, 0, 1], torch.zeros_like(a))


def test_mask_zeroes_data_where_unknown():
    z, a, wh, wv = random_problem(2, 8, 8)
    mask = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(3)) > 0.4
    z_bad = torch.where(mask, z, torch.full_like(z, 1e6))  # garbage where masked
    res = solve(z_bad, a, (wh, wv), mask=mask, **TOL)
    ref = direct_solve(z, a * mask, wh, wv)
    torch.testing.assert_close(res.mean, ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("schedule,damping", [("redblack", 0.0), ("sync", 0.3), ("redblack", 0.5)])
def test_schedules_and_damping_reach_the_same_solution(schedule, damping):
    z, a, wh, wv = random_problem(1, 6, 7, seed=1)
    res = solve(z, a, (wh, wv), config=GridConfig(schedule=schedule, damping=damping), **TOL)
    assert res.converged
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-10)


def test_redblack_converges_in_fewer_iterations_than_sync():
    z, a, wh, wv = random_problem(1, 16, 16, seed=2, ratio=20.0)
    sync = solve(z, a, (wh, wv), iters=5000, tol=1e-10, config=GridConfig(check_every=1))
    rb = solve(z, a, (wh, wv), iters=5000, tol=1e-10, config=GridConfig(check_every=1, schedule="redblack"))
    assert rb.converged and sync.converged and rb.iters < sync.iters


def test_matches_textbook_loopy_gbp_means_and_variances():
    z, a, wh, wv = random_problem(1, 4, 5, seed=4)
    res = solve(z, a, (wh, wv), **TOL)
    mean, var = naive_loopy_gbp(a[0], z[0], wh[0], wv[0], iters=400)
    torch.testing.assert_close(res.mean[0], mean, rtol=0, atol=1e-10)
    torch.testing.assert_close(res.var[0], var, rtol=1e-9, atol=0)


def test_chain_variances_are_exact():
    """On a 1 x W grid (a tree) GBP marginals are exact: var = diag(A^-1)."""
    z, a, wh, wv = random_problem(2, 1, 40, seed=5, ratio=50.0)
    res = solve(z, a, (wh, wv), **TOL)
    for b in range(2):
        torch.testing.assert_close(res.var[b], exact_marginal_var(a[b], wh[b], wv[b]), rtol=1e-9, atol=0)
    torch.testing.assert_close(res.mean, direct_solve(z, a, wh, wv), rtol=0, atol=1e-10)


def test_loopy_variances_underestimate_exact_ones():
    z, a, wh, wv = random_problem(1, 10, 10, seed=6, ratio=30.0)
    res = solve(z, a, (wh, wv), **TOL)
    q = res.var[0] / exact_marginal_var(a[0], wh[0], wv[0])
    assert (q < 1.0).all() and (q > 0.3).all()


def test_dtype_follows_input_float32():
    z, a, wh, wv = random_problem(1, 12, 12, dtype=torch.float32, seed=7)
    res = solve(z, a, (wh, wv), iters=2000, tol=1e-6)
    assert res.mean.dtype == torch.float32 and res.var.dtype == torch.float32
    torch.testing.assert_close(res.mean.double(), direct_solve(z, a, wh, wv), rtol=0, atol=1e-4)


def test_fixed_iterations_without_tol_record_final_residual():
    z, a, wh, wv = random_problem(2, 6, 6, seed=8)
    res = solve(z, a, (wh, wv), iters=5)
    assert res.iters == 5 and not res.converged and res.residuals.shape == (1, 2)
    assert (res.residuals > 0).all()


def test_gradcheck_through_a_few_flat_iterations():
    z, a, wh, wv = random_problem(1, 3, 4, seed=9)
    inputs = tuple(t.clone().requires_grad_() for t in (z, a, wh, wv))

    def f(z, a, wh, wv):
        res = solve(z, a, (wh, wv), iters=4, config=GridConfig(lam_tol=1e-3))
        return res.mean, res.var

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6)


def test_gradient_of_converged_solution_matches_implicit_formula():
    """d(sum c * x)/dz of the converged GBP solution equals a * A^-1 c (adjoint solve)."""
    z, a, wh, wv = random_problem(1, 5, 5, seed=10)
    z = z.clone().requires_grad_()
    c = torch.randn(1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (solve(z, a, (wh, wv), **TOL).mean * c).sum().backward()
    adj = direct_solve(c / a, a, wh, wv)  # A y = a * (c / a) = c
    torch.testing.assert_close(z.grad, a * adj, rtol=0, atol=1e-8)


def test_lam_setup_and_eta_iterations_are_building_blocks():
    z, a, wh, wv = random_problem(1, 6, 6, seed=11)
    sys, zz, _ = check_inputs(z, a, (wh, wv))
    gains = lam_setup(sys, tol=1e-12)
    assert gains.change < 1e-12
    x, hist, it, conv = gbp_iterate(sys, gains, 2000, tol=1e-12)
    assert conv and hist[-1].max() <= 1e-12
    torch.testing.assert_close(x[:, 0], direct_solve(z, a, wh, wv), rtol=0, atol=1e-10)


def test_local_lam_init_is_the_interior_fixed_point_of_a_uniform_grid():
    from gbp_torch.grid.gbp import local_init
    z = torch.zeros(1, 40, 40, dtype=torch.float64)
    sys, _, _ = check_inputs(z, 1.0, 100.0)
    exact = lam_setup(sys, tol=1e-13, init="zero")
    start = local_init(sys)
    lam_b = sys.a + sum(torch.nn.functional.pad(m, p) for m, p in
                        zip(start, ((1, 0), (0, 1), (0, 0, 1, 0), (0, 0, 0, 1))))
    torch.testing.assert_close(lam_b[0, 20, 20], exact.lam_b[0, 20, 20], rtol=1e-6, atol=0)
    assert lam_setup(sys, tol=1e-8).iters < exact.iters


def test_x0_starts_the_solve_and_robust_weights():
    from gbp_torch.robust import RobustKernel
    z, a, wh, wv = random_problem(1, 6, 6, seed=12)
    ref = direct_solve(z, a, wh, wv)
    res = solve(z, a, (wh, wv), iters=1, x0=ref.clone())
    torch.testing.assert_close(res.mean, ref, rtol=0, atol=1e-10)  # already at the fixed point
    rob = solve(z, a, (wh, wv), iters=2000, tol=1e-12, x0=ref.clone(),
                robust=GridRobust(data=RobustKernel("huber", 1e3), outer_iters=1))
    assert rob.outer_iters == 1  # huge threshold: weights 1, the answer stays the least-squares one
    torch.testing.assert_close(rob.mean, ref, rtol=0, atol=1e-10)


@pytest.mark.cuda
def test_cuda_matches_cpu():
    z, a, wh, wv = random_problem(2, 12, 10, seed=13)
    cpu = solve(z, a, (wh, wv), tol=1e-11, config=MULTIGRID)
    gpu = solve(*(t.cuda() for t in (z, a)), (wh.cuda(), wv.cuda()), tol=1e-11, config=MULTIGRID)
    assert gpu.mean.is_cuda and gpu.var.is_cuda
    torch.testing.assert_close(gpu.mean.cpu(), cpu.mean, rtol=0, atol=1e-9)
    flat = solve(*(t.cuda() for t in (z, a)), (wh.cuda(), wv.cuda()), iters=3000, tol=1e-12,
                 config=GridConfig(schedule="redblack"))
    torch.testing.assert_close(flat.mean.cpu(), cpu.mean, rtol=0, atol=1e-9)

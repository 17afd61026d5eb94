"""Backward modes of the general engine agree with each other and with finite differences (float64)."""

import numpy as np
import pytest
import torch

from gbp_torch import DifferenceFactors, FactorGraph, GBPEngine, NonlinearFactors, PriorFactors
from gbp_torch.backward import solve_graph
from gbp_torch.modes import BackwardConfig, as_backward_mode

DT = torch.float64


def _loopy_problem(seed=0, robust=None):
    gen = torch.Generator().manual_seed(seed)
    n = 12
    params = {
        "prior_mean": torch.randn(n, 2, generator=gen, dtype=DT).requires_grad_(),
        "prior_prec": (torch.rand(n, generator=gen, dtype=DT) + 0.5).requires_grad_(),
        "z": torch.randn(2 * n, 2, generator=gen, dtype=DT).mul(0.5).requires_grad_(),
        "edge_prec": (torch.rand(2 * n, generator=gen, dtype=DT) + 1.0).requires_grad_(),
        "k": torch.full((2 * n,), 0.8, dtype=DT).requires_grad_(),
    }
    a = torch.cat((torch.arange(n), torch.arange(n)))
    b = torch.cat(((torch.arange(n) + 1) % n, (torch.arange(n) + 5) % n))  # a ring plus chords: loopy

    def build(p):
        g = FactorGraph()
        x = g.add_variables(n, 2, init=p["prior_mean"].detach())
        g.add(PriorFactors(x.all(), p["prior_mean"], p["prior_prec"]))
        g.add(DifferenceFactors(x[a], x[b], p["z"], p["edge_prec"], robust=robust, k=p["k"]))
        return g, x

    weights = torch.randn(n, 2, generator=gen, dtype=DT)
    return params, build, weights


def _grads(mode, params, build, weights, **kw):
    g, x = build(params)
    res = solve_graph(g, iters=kw.pop("iters", 400), tol=kw.pop("tol", 1e-13), damping=0.2, backward=mode, **kw)
    loss = (res.mean(x) * weights).sum() + res.mean(x).square().sum()
    names = [k for k, v in params.items() if v.requires_grad]
    grads = torch.autograd.grad(loss, [params[k] for k in names], allow_unused=True)
    return {k: (torch.zeros_like(params[k]) if gr is None else gr) for k, gr in zip(names, grads)}, loss.detach()


@pytest.mark.parametrize("robust", [None, "huber", "cauchy"])
def test_unroll_truncated_implicit_agree(robust):
    """Converged problems (tol 1e-13): all three modes give the same gradients to 1e-7 (robust kernels: the
    implicit mode solves with the exact Jacobian of the IRLS fixed-point map, not the IRLS precision)."""
    params, build, weights = _loopy_problem(robust=robust)
    ref, _ = _grads("unroll", params, build, weights, iters=600)
    for mode in ("implicit", BackwardConfig("truncated", truncate=200)):
        got, _ = _grads(mode, params, build, weights)
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], atol=1e-7, rtol=1e-6, msg=f"{mode} {k}")


def test_implicit_matches_finite_differences_linear():
    params, build, weights = _loopy_problem(seed=3)
    got, _ = _grads("implicit", params, build, weights)
    eps = 1e-6
    for key in ("prior_mean", "prior_prec", "z", "edge_prec"):
        flat = params[key].detach().reshape(-1)
        for j in (0, flat.numel() // 2, flat.numel() - 1):
            def loss_at(delta, key=key, j=j):
                p = {k: v.detach().clone() for k, v in params.items()}
                p[key].view(-1)[j] += delta
                g, x = build(p)
                with torch.no_grad():
                    m = g.solve(iters=400, tol=1e-14, damping=0.2).mean(x)
                return float((m * weights).sum() + m.square().sum())
            fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
            np.testing.assert_allclose(got[key].reshape(-1)[j].item(), fd, rtol=1e-5, atol=1e-7)


def test_some_huber_factors_are_beyond_threshold_in_the_test_problem():
    """Guards the robust agreement test: it must exercise the downweighted (w < 1) branch."""
    params, build, _ = _loopy_problem(robust="huber")
    g, _ = build(params)
    engine = GBPEngine(g, damping=0.2)
    engine.run(400, 1e-13)
    w = engine.robust_weights(1)
    assert (w < 0.99).sum() >= 3 and (w == 1).sum() >= 3


def test_implicit_nonlinear_range_factors_match_unroll():
    gen = torch.Generator().manual_seed(4)
    anchors = (torch.randn(6, 2, generator=gen, dtype=DT) * 3).requires_grad_()
    truth = torch.tensor([0.3, -0.2], dtype=DT)
    ranges = ((truth - anchors.detach()).norm(dim=1, keepdim=True)
              + 0.05 * torch.randn(6, 1, generator=gen, dtype=DT)).requires_grad_()

    def grads(mode):
        g = FactorGraph()
        x = g.add_variables(1, 2, init=torch.zeros(1, 2, dtype=DT))
        g.add(PriorFactors(x.all(), torch.zeros(1, 2, dtype=DT), 1e-2))
        g.add(NonlinearFactors(x[[0] * 6], lambda v, a: (v - a).norm().reshape(1), ranges, 4.0, params=[anchors],
                               relinearise_threshold=0.0))
        res = solve_graph(g, iters=300, tol=1e-13, backward=mode)
        loss = res.mean(x).square().sum() + res.mean(x)[0, 0]
        return torch.autograd.grad(loss, [anchors, ranges])

    ref, got = grads("unroll"), grads("implicit")
    for r, q in zip(ref, got):
        torch.testing.assert_close(q, r, atol=1e-8, rtol=1e-6)


def test_implicit_memory_does_not_record_iterations():
    params, build, weights = _loopy_problem()
    g, x = build(params)
    res = solve_graph(g, iters=50, backward="implicit")
    # the output's autograd graph is one node deep (the implicit function), not 50 iterations
    assert type(res.mean(x).grad_fn).__name__.startswith("_ImplicitMeansBackward")


def test_bad_modes():
    with pytest.raises(ValueError, match="unknown backward mode"):
        as_backward_mode("adjoint")
    params, build, _ = _loopy_problem()
    g, _ = build(params)
    with pytest.raises(ValueError, match="truncate"):
        solve_graph(g, iters=5, backward=BackwardConfig("truncated", truncate=10))


def test_gbp_layer_call_time_overrides_and_gradients_reach_a_network():
    from gbp_torch.modules import GBPLayer

    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2).double()  # predicts per-edge log-precisions from edge features
    feats = torch.randn(11, 3, dtype=DT)
    layer = GBPLayer(iters=200, tol=1e-12, backward="implicit")

    def run(**kw):
        g = FactorGraph()
        x = g.add_variables(12, 1)
        g.add(PriorFactors(x.all(), torch.linspace(0, 1, 12, dtype=DT)[:, None], 1.0))
        prec = torch.nn.functional.softplus(net(feats)[:, 0])
        g.add(DifferenceFactors(x[:-1], x[1:], torch.full((11, 1), 0.1, dtype=DT), prec))
        res = layer(g, **kw)
        return res, res.mean(x).square().sum()

    res, loss = run()
    assert res.converged
    grads = torch.autograd.grad(loss, list(net.parameters()))
    assert all(torch.isfinite(gr).all() and gr.abs().sum() > 0 for gr in grads)
    res_short, _ = run(iters=3, backward="unroll")
    assert res_short.iters == 3 and "backward=implicit" in repr(layer)
    grads_unroll = torch.autograd.grad(run(backward="unroll")[1], list(net.parameters()))
    for a, b in zip(grads, grads_unroll):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("mode,iters,tol", [("unroll", 6, None), ("implicit", 500, 1e-14)])
def test_gradcheck_whole_layer_on_a_tiny_loopy_graph(mode, iters, tol):
    gen = torch.Generator().manual_seed(7)
    z = torch.randn(4, 1, generator=gen, dtype=DT, requires_grad=True)
    prec = (torch.rand(4, generator=gen, dtype=DT) + 0.5).requires_grad_()
    prior = torch.randn(4, 1, generator=gen, dtype=DT, requires_grad=True)

    def f(z, prec, prior):
        g = FactorGraph()
        x = g.add_variables(4, 1)
        g.add(PriorFactors(x.all(), prior, 1.0))
        g.add(DifferenceFactors(x[[0, 1, 2, 3]], x[[1, 2, 3, 0]], z, prec))  # a 4-cycle
        return solve_graph(g, iters=iters, tol=tol, backward=mode).mean(x)

    assert torch.autograd.gradcheck(f, (z, prec, prior), eps=1e-6, atol=1e-6)


def test_warm_start_from_a_previous_result_needs_fewer_iterations():
    params, build, _ = _loopy_problem(seed=6)
    g, x = build({k: v.detach() for k, v in params.items()})
    cold = g.solve(iters=1000, tol=1e-10, damping=0.2)
    g2, x2 = build({k: v.detach() * (1.01 if k == "z" else 1.0) for k, v in params.items()})  # a small change
    warm = g2.solve(iters=1000, tol=1e-10, damping=0.2, init=cold)
    fresh = g2.solve(iters=1000, tol=1e-10, damping=0.2)
    assert warm.converged and fresh.converged and warm.iters < fresh.iters
    torch.testing.assert_close(warm.mean(x2), fresh.mean(x2), atol=1e-8, rtol=0)
    other = FactorGraph()
    y = other.add_variables(3, 2)
    other.add(PriorFactors(y.all(), torch.zeros(3, 2, dtype=DT), 1.0))
    with pytest.raises(ValueError, match="do not match"):
        other.solve(iters=2, init=cold)

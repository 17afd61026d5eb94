"""Hypothesis-fuzzed grid modules: GridGBP / MultigridGBP give what the fuzzed grid.solve gives (the exact
answer or a ValueError naming the argument, tests/grid/test_grid_fuzz.py), for float64 and float32 inputs,
as layers, with and without autograd."""

import warnings

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_grid_fuzz import NAMES, problems

from gbp_torch.grid import GridUnobservableWarning, solve
from gbp_torch.modules import GridGBP, MultigridGBP


def outcome(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GridUnobservableWarning)
            return fn()
    except ValueError as err:
        return err


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(), multigrid=st.booleans(), dtype=st.sampled_from([torch.float64, torch.float32]),
       grad=st.booleans())
def test_modules_agree_with_solve(problem, multigrid, dtype, grad):
    z, a, wh, wv = (t.to(dtype) for t in (problem[0], problem[1], *problem[2]))
    z = z.clone().requires_grad_(grad)
    layer = MultigridGBP(iters=30, tol=1e-6) if multigrid else GridGBP(iters=300, tol=1e-6)
    got = outcome(lambda: layer(z, a, (wh, wv)))
    ref = outcome(lambda: solve(z.detach(), a, (wh, wv), iters=layer.iters, tol=1e-6, config=layer.config))
    if isinstance(ref, ValueError):
        assert isinstance(got, ValueError) and str(got) == str(ref)
        assert any(name in str(got) for name in NAMES)
        return
    assert not isinstance(got, Exception), got
    torch.testing.assert_close(got.mean.detach(), ref.mean, rtol=1e-5, atol=1e-6)
    if grad and got.mean.requires_grad:  # the gradient exists and is finite wherever the answer is
        (g,) = torch.autograd.grad(got.mean.sum(), z)
        assert torch.isfinite(g).all()

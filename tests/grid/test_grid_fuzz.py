"""Hypothesis-fuzzed grid.solve: every outcome is the exact answer (sparse direct solve of the observable
part, float64), a result that says it has not converged yet, or a ValueError that names the bad argument."""

import warnings

import numpy as np
import torch
from grid_reference import assemble, direct_solve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbp_torch.grid import MULTIGRID, GridConfig, GridUnobservableWarning, solve

SPECIAL = [0.0, float("nan"), float("inf"), -1.0, 1e-30]
NAMES = ("z", "data_precision", "edge_weights", "mask")


@st.composite
def problems(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    b, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    d = draw(st.sampled_from([1, 2]))
    z = torch.randn((b, h, w) if d == 1 else (b, 2, h, w), generator=g, dtype=torch.float64)
    a = torch.rand(b, h, w, generator=g, dtype=torch.float64) * draw(st.sampled_from([0.0, 1e-3, 1.0, 1e3]))
    a = torch.where(torch.rand(b, h, w, generator=g, dtype=torch.float64) < 0.3, 0.0, a)  # some pixels without data
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    wh = scale * (torch.rand(b, h, w - 1, generator=g, dtype=torch.float64) > draw(st.sampled_from([0.0, 0.3])))
    wv = scale * (torch.rand(b, h - 1, w, generator=g, dtype=torch.float64) > draw(st.sampled_from([0.0, 0.3])))
    poison = draw(st.sampled_from([None, "z", "data_precision", "edge_weights"]))
    if poison is not None:  # one special value somewhere in one argument
        target = {"z": z, "data_precision": a, "edge_weights": wh if wh.numel() else wv}[poison]
        if target.numel():
            target.view(-1)[draw(st.integers(0, target.numel() - 1))] = draw(st.sampled_from(SPECIAL))
    return z, a, (wh, wv)


def observed_condition_number(a, wh, wv, observed) -> float:
    """The largest 2-norm condition number over batch items of A restricted to the observed pixels (dense, numpy;
    the problems are tiny)."""
    conds = [1.0]
    for i in range(a.shape[0]):
        keep = observed[i].numpy().ravel()
        if keep.any():
            dense = assemble(*(t[i].numpy() for t in (a, wh, wv))).toarray()[np.ix_(keep, keep)]
            conds.append(float(np.linalg.cond(dense)))
    return max(conds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=problems(), config=st.sampled_from([GridConfig(), MULTIGRID]))
def test_solve_is_exact_or_raises_a_named_value_error(problem, config):
    z, a, (wh, wv) = problem
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GridUnobservableWarning)
            res = solve(z, a, (wh, wv), iters=4000 if config.flat else 60, tol=1e-11, config=config)
    except ValueError as err:
        assert any(name in str(err) for name in NAMES), err
        bad = [not torch.isfinite(t).all() or (t < 0).any() for t in (a, wh, wv)] + [not torch.isfinite(z).all()]
        assert any(bad) or float(a.flatten(1).sum(1).min()) == 0.0, err  # only bad input, or an item without data
        return
    assert torch.isfinite(res.mean).all()
    if not res.converged:  # honest about it: flat GBP on a very stiff loop (w / a ~ 1e7) is slow
        assert float(res.residuals[-1].max()) > 1e-11
        return
    observed = ~res.unobservable if res.unobservable is not None else torch.ones(a.shape, dtype=torch.bool)
    var = res.var if res.var.dim() == 3 else res.var[:, 0, 0]
    assert torch.isinf(var[~observed]).all() and (var[observed] > 0).all() and torch.isfinite(var[observed]).all()
    # oracle: the exact solve with the unobservable pixels given a huge prior at the returned mean
    # (they are cut off from the rest, so the observed pixels' exact solution does not depend on them)
    a_ref = torch.where(observed, a, torch.full_like(a, 1e12))
    z_ref = torch.where(observed if z.dim() == 3 else observed[:, None], z, res.mean.detach())
    if z.dim() == 4:
        a_ref = torch.eye(2, dtype=a.dtype)[None, :, :, None, None] * a_ref[:, None, None]
    mask = observed if z.dim() == 3 else observed[:, None].expand_as(z)
    # tol bounds the relative residual; the relative error is at most the condition number of the observable
    # part times that, and |x| <= sqrt(n) max|z| (10x slack; weak edges to pixels without data beside strong
    # data make the condition number large: ~ max(a) / min(w))
    cond = observed_condition_number(a, wh, wv, observed)
    if cond > 1e10:  # numerically singular (e.g. a precision of 1e-30 beside weights of 1e-3): the oracle fails too
        return
    ref = direct_solve(z_ref, a_ref, wh, wv)
    np.testing.assert_allclose(res.mean[mask].numpy(), ref[mask].numpy(), rtol=0,
                               atol=1e-10 * cond * z[0].numel() ** 0.5 * (1.0 + float(z.abs().max())))

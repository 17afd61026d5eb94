"""Bad inputs raise ValueError naming the argument and the expected shape."""

import dataclasses

import pytest
import torch
from grid_reference import random_problem

from gbp_torch.grid import GridConfig, GridRobust, MultigridConfig, solve
from gbp_torch.modes import BackwardConfig
from gbp_torch.robust import RobustKernel


def _p():
    return random_problem(2, 4, 5)


@pytest.mark.parametrize("case,match", [
    ("z_shape", r"z must have shape \(B, H, W\)"),
    ("a_shape", r"data_precision must have shape \(B, H, W\)"),
    ("wh_shape", r"edge_weights\[0\] \(horizontal\) must have shape \(B, H, W-1\) = \(2, 4, 4\)"),
    ("wv_shape", r"edge_weights\[1\] \(vertical\) must have shape \(B, H-1, W\) = \(2, 3, 5\)"),
    ("a_negative", r"data_precision must be >= 0"),
    ("w_negative", r"edge_weights\[1\] \(vertical\) must be >= 0"),
    ("z_nan", r"z contains NaN"),
    ("a_nan", r"data_precision contains NaN"),
    ("a_zero", r"zero everywhere in batch item 1"),
    ("mask_shape", r"mask must have shape \(B, H, W\)"),
    ("full_not_psd", r"positive semi-definite"),
    ("full_asym", r"symmetric"),
    ("edges_single", r"edge_weights must be a number or a pair"),
])
def test_bad_inputs_raise_clear_value_errors(case, match):
    z, a, wh, wv = _p()
    kw = {}
    if case == "z_shape":
        z = z[0]
    elif case == "a_shape":
        a = a[:, :3]
    elif case == "wh_shape":
        wh = torch.ones(2, 4, 5, dtype=z.dtype)
    elif case == "wv_shape":
        wv = torch.ones(2, 4, 5, dtype=z.dtype)
    elif case == "a_negative":
        a = a.clone(); a[0, 1, 1] = -1.0
    elif case == "w_negative":
        wv = wv.clone(); wv[1, 0, 0] = -0.1
    elif case == "z_nan":
        z = z.clone(); z[0, 0, 0] = float("nan")
    elif case == "a_nan":
        a = a.clone(); a[0, 0, 0] = float("nan")
    elif case == "a_zero":
        a = a.clone(); a[1] = 0.0
    elif case == "mask_shape":
        kw["mask"] = torch.ones(2, 4, dtype=torch.bool)
    elif case in ("full_not_psd", "full_asym"):
        z = torch.zeros(2, 2, 4, 5, dtype=torch.float64)
        a = torch.eye(2, dtype=torch.float64)[None, :, :, None, None].repeat(2, 1, 1, 4, 5)
        if case == "full_not_psd":
            a[0, 0, 1] = a[0, 1, 0] = 3.0
        else:
            a[0, 0, 1] = 0.5
    elif case == "edges_single":
        wh = torch.ones(2, 4, 4)
        with pytest.raises(ValueError, match=match):
            solve(z, a, wh)
        return
    with pytest.raises(ValueError, match=match):
        solve(z, a, (wh, wv), **kw)


@pytest.mark.parametrize("kw,match", [
    (dict(iters=-1), "iters must be an int >= 0"),
    (dict(iters=2.5), "iters must be an int >= 0"),
    (dict(tol=0.0), "tol must be None or > 0"),
    (dict(config=dict(levels=None)), "config must be a GridConfig"),
    (dict(robust=dict(data=None)), "robust must be None or a GridRobust"),
    (dict(backward="adjoint"), "unknown backward mode"),
    (dict(mask=-torch.ones(2, 4, 5, dtype=torch.float64)), r"mask must lie in \[0, 1\]"),
    (dict(x0=torch.full((2, 4, 5), float("nan"), dtype=torch.float64)), "x0 contains NaN"),  # was a NaN mean
])
def test_bad_options_raise(kw, match):
    z, a, wh, wv = _p()
    with pytest.raises(ValueError, match=match):
        solve(z, a, (wh, wv), **kw)


@pytest.mark.parametrize("make,match", [
    (lambda: GridConfig(levels=0), "levels must be None or an int >= 1"),
    (lambda: GridConfig(damping=1.0), r"damping must be in \[0, 1\)"),
    (lambda: GridConfig(damping=(0.5, 0.6)), "per-level damping tuple needs levels != 1"),
    (lambda: GridConfig(schedule="random"), "schedule must be"),
    (lambda: GridConfig(check_every=0), "check_every must be"),
    (lambda: MultigridConfig(method="multigrid"), "method must be one of"),
    (lambda: MultigridConfig(smoother="sor"), "smoother must be"),
    (lambda: MultigridConfig(cycle=(0, 0)), "cycle must be"),
    (lambda: MultigridConfig(relax=0.0), "relax must be in"),
    (lambda: BackwardConfig(truncate=0), "truncate must be an int >= 1"),
    (lambda: GridRobust(), "needs a data or a smooth kernel"),
    (lambda: GridRobust(data=RobustKernel("huber", 1.0), outer_tol=-1.0), "outer_tol must be None or > 0"),
    (lambda: RobustKernel("huber", torch.tensor([1.0, 0.0])), "threshold k of the 'huber' kernel must be"),
    (lambda: RobustKernel("tukey", float("nan")), "must be finite and > 0"),
])
def test_bad_settings_raise_at_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_settings_are_frozen():
    cfg = GridConfig(levels=None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.levels = 1
    assert cfg == GridConfig(levels=None, multigrid=MultigridConfig())  # value objects compare by value


def test_numbers_broadcast_for_precision_and_weights():
    z, _, _, _ = _p()
    r1 = solve(z, 2.0, 3.0, iters=50)
    r2 = solve(z, torch.full((2, 4, 5), 2.0, dtype=z.dtype),
               (torch.full((2, 4, 4), 3.0, dtype=z.dtype), torch.full((2, 3, 5), 3.0, dtype=z.dtype)), iters=50)
    torch.testing.assert_close(r1.mean, r2.mean)


def _count_host_syncs(monkeypatch, fn) -> int:
    """Calls that read a tensor's value on the host (float, int, bool, item, tolist) while fn runs."""
    count = [0]
    for name in ("__float__", "__int__", "__bool__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, **kwargs):
            count[0] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    fn()
    monkeypatch.undo()
    return count[0]


@pytest.mark.parametrize("config", [GridConfig(), GridConfig(levels=None)], ids=["flat", "multigrid"])
def test_no_host_sync_per_iteration_without_tol(monkeypatch, config):
    z, a, wh, wv = random_problem(2, 12, 13, seed=3)
    syncs = [_count_host_syncs(monkeypatch, lambda it=it: solve(z, a, (wh, wv), iters=it, config=config,
                                                                 validate=False)) for it in (2, 12)]
    assert syncs[0] == syncs[1], syncs  # set-up only (lam-message convergence), nothing per iteration
    validated = _count_host_syncs(monkeypatch, lambda: solve(z, a, (wh, wv), iters=2, config=config))
    assert validated == syncs[0] + 2  # value checks: one synchronisation; "any edge cut?" (observability): one

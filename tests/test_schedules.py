"""Every schedule and damping value reaches the same (exact) means on loopy graphs (float64, 1e-8)."""

import numpy as np
import pytest
import torch

from gbp_torch import RandomSchedule, ResidualSchedule, Schedule, Sweep, Synchronous
from gbp_torch.schedules import as_schedule
from helpers import exact, np_result, random_linear_graph

TOL = 1e-8

SCHEDULES = ["sync", "random", "sweep", "residual", Synchronous(), RandomSchedule(p=0.3, seed=5), Sweep(chunks=3),
             Sweep(chunks=50), ResidualSchedule(fraction=0.5)]


def _loopy(seed):
    rng = np.random.default_rng(300 + seed)
    return random_linear_graph(rng, dims=(1, 2, 3), nums=(3, 3, 2), edges="loopy", extra_edges=3,
                               prior_precision=4.0, factor_scale=0.5)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s if isinstance(s, str) else repr(s))
@pytest.mark.parametrize("damping", [0.0, 0.3, 0.7])
def test_schedules_and_damping_reach_exact_means(schedule, damping):
    graph = _loopy(0)
    means, _ = exact(graph)
    res = graph.solve(iters=2000, tol=1e-12, damping=damping, schedule=schedule)
    assert res.converged, res.status
    for i in range(3):
        np.testing.assert_allclose(np_result(res.means[i]), means[i], atol=TOL)


def test_schedules_agree_with_each_other_on_covariances_of_a_tree():
    rng = np.random.default_rng(17)
    graph = random_linear_graph(rng, edges="tree")
    means, covs = exact(graph)
    for schedule in ["sync", "random", "sweep", "residual"]:
        res = graph.solve(iters=2000, tol=1e-13, schedule=schedule, damping=0.3)
        assert res.converged, (schedule, res.status)
        for i in range(3):
            np.testing.assert_allclose(np_result(res.means[i]), means[i], atol=TOL)
            np.testing.assert_allclose(np_result(res.covs[i]), covs[i], atol=TOL)


def test_damping_slows_convergence():
    graph = _loopy(1)
    it = [graph.solve(iters=3000, tol=1e-10, damping=d).iters for d in (0.0, 0.7)]
    assert it[0] < it[1]


def test_partial_schedules_take_more_iterations_than_sync_on_a_chain_but_sweep_fewer():
    """Sweep (Gauss-Seidel along a chain) needs fewer iterations than flooding; random p=0.3 needs more."""
    rng = np.random.default_rng(18)
    graph = random_linear_graph(rng, dims=(2,), nums=(12,), edges="chain")
    n_sync = graph.solve(iters=500, tol=1e-10).iters
    n_rand = graph.solve(iters=500, tol=1e-10, schedule=RandomSchedule(p=0.3)).iters
    assert n_rand > n_sync


def test_random_schedule_is_reproducible():
    graph = _loopy(2)
    r1 = graph.solve(iters=7, schedule=RandomSchedule(p=0.5, seed=3))
    r2 = graph.solve(iters=7, schedule=RandomSchedule(p=0.5, seed=3))
    r3 = graph.solve(iters=7, schedule=RandomSchedule(p=0.5, seed=4))
    for a, b in zip(r1.means, r2.means):
        assert torch.equal(a, b)
    assert any(not torch.allclose(a, c) for a, c in zip(r1.means, r3.means))


def test_as_schedule_and_parameter_checks():
    assert isinstance(as_schedule("sync"), Synchronous)
    assert isinstance(as_schedule("synchronous"), Synchronous)
    assert isinstance(as_schedule("random"), RandomSchedule)
    assert isinstance(as_schedule("sweep"), Sweep)
    assert isinstance(as_schedule("residual"), ResidualSchedule)
    s = Sweep(chunks=2)
    assert as_schedule(s) is s and isinstance(s, Schedule)
    with pytest.raises(ValueError, match="unknown schedule"):
        as_schedule("bogus")
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="RandomSchedule.p"):
            RandomSchedule(p=bad)
        with pytest.raises(ValueError, match="ResidualSchedule.fraction"):
            ResidualSchedule(fraction=bad)
    with pytest.raises(ValueError, match="Sweep.chunks"):
        Sweep(chunks=0)


def test_sweep_phases_cover_every_factor_once_and_reverse():
    s = Sweep(chunks=3)
    fwd = s.phases([7, 2], 0, torch.device("cpu"))
    bwd = s.phases([7, 2], 1, torch.device("cpu"))
    for phases in (fwd, bwd):
        assert len(phases) == 3
        for fam, size in enumerate([7, 2]):
            idx = torch.cat([p[fam] for p in phases])
            assert sorted(idx.tolist()) == list(range(size))
    assert torch.equal(fwd[0][0], bwd[-1][0])

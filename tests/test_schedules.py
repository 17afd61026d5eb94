"""Every schedule and damping value reaches the same (exact) means on loopy graphs (float64, 1e-8)."""

import numpy as np
import pytest
import torch
from helpers import exact, np_result, random_linear_graph

from gbp_torch import RandomSchedule, ResidualSchedule, Schedule, Sweep, Synchronous
from gbp_torch.schedules import as_schedule

TOL = 1e-8

def _loopy(seed):
    rng = np.random.default_rng(300 + seed)
    return random_linear_graph(rng, dims=(1, 2, 3), nums=(3, 3, 2), edges="loopy", extra_edges=3,
                               prior_precision=4.0, factor_scale=0.5)


def _solve_and_check(schedule, damping, seed=0):
    graph = _loopy(seed)
    means, _ = exact(graph)
    res = graph.solve(iters=3000, tol=1e-12, damping=damping, schedule=as_schedule(schedule))
    assert res.converged, res.status
    for i in range(3):
        np.testing.assert_allclose(np_result(res.means[i]), means[i], atol=TOL)


@pytest.mark.parametrize("schedule", ["sync", "random", "sweep", "residual"])
@pytest.mark.parametrize("damping", [0.0, 0.3, 0.7])
def test_schedules_and_damping_reach_exact_means(schedule, damping):
    _solve_and_check(schedule, damping)


@pytest.mark.parametrize("schedule", [Synchronous(), RandomSchedule(p=0.3, seed=5), Sweep(chunks=3), Sweep(chunks=20),
                                      ResidualSchedule(fraction=0.1)], ids=repr)
def test_schedule_objects_reach_exact_means(schedule):
    _solve_and_check(schedule, 0.3, seed=1)


class _RejectAt(Schedule):
    """Accepts every update except at one iteration, where it rejects them all."""

    def __init__(self, iteration):
        self.iteration = iteration

    def accept(self, changes, iteration):
        return [torch.full_like(c, iteration != self.iteration, dtype=torch.bool) for c in changes]


def test_no_op_iteration_is_not_convergence():
    rng = np.random.default_rng(1)
    graph = random_linear_graph(rng, dims=(1,), nums=(6,), edges="chain")
    means, _ = exact(graph)
    res = graph.solve(iters=200, tol=1e-10, schedule=_RejectAt(2))
    if res.converged:
        np.testing.assert_allclose(np_result(res.means[0]), means[0], atol=1e-8)
    else:
        assert res.status == "max_iters"


def test_residual_schedule_does_not_stop_early():
    graph = _loopy(1)
    means, _ = exact(graph)
    res = graph.solve(iters=2000, tol=1e-12, damping=0.3, schedule=ResidualSchedule(fraction=0.1))
    assert res.converged
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
    n_sweep = graph.solve(iters=500, tol=1e-10, schedule=Sweep(chunks=12)).iters  # factors are in chain order
    assert n_sweep < n_sync < n_rand


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

"""Bad inputs raise clear errors (ValueError / TypeError with a useful message)."""

import numpy as np
import pytest
import torch
from helpers import t

from gbp_torch import DifferenceFactors, FactorGraph, LinearFactors, NonlinearFactors, PriorFactors


@pytest.fixture
def graph():
    g = FactorGraph()
    g.add_variables(3, 1)
    g.add_variables(3, 2)
    return g


def _pair_jacobian(F=3, m=2):
    return t(np.ones((F, m, 3)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(jacobian=t(np.ones((3, 2, 4)))), "jacobian must have shape"),  # n = 3 expected
        (dict(jacobian=t(np.ones((2, 2, 3)))), "jacobian must have shape"),  # F = 3 expected
        (dict(jacobian=t(np.ones((2, 3, 2, 3)))), "batch"),  # batched J vs z of another batch size
        (dict(z=t(np.ones((3, 3)))), "z must have shape"),
        (dict(z=t(np.ones((2, 2)))), "z must have shape"),
        (dict(z=t(np.ones(3))), "z must have shape"),
        (dict(z=t([[0.0, np.nan]] * 3)), "z contains NaN"),
        (dict(jacobian=t(np.full((3, 2, 3), np.inf))), "jacobian contains NaN or inf"),
        (dict(precision=t(-1.0)), "precision must be positive"),
        (dict(precision=t(0.0)), "precision must be positive"),
        (dict(precision=t(np.nan)), "precision must be positive and finite"),
        (dict(precision=t([1.0, -2.0, 1.0])), "precision must be positive"),
        (dict(precision=t([[1.0, 0.0], [0.0, -1.0]])), "positive definite"),
        (dict(precision=t([[1.0, 0.5], [0.0, 1.0]])), "not symmetric"),
        (dict(precision=t(np.ones((3, 4)))), "precision must have shape"),  # (B, F) with F = 4 != 3
        (dict(precision=t(np.ones((4, 2, 2)))), "precision must have shape"),
        (dict(precision=t([[np.nan, 0.0], [0.0, 1.0]])), "NaN"),
    ],
)
def test_linear_factor_bad_inputs(graph, kwargs, match):
    X, Y = graph.groups
    args = dict(jacobian=_pair_jacobian(), z=t(np.zeros((3, 2))), precision=t(1.0))
    args.update(kwargs)
    if kwargs.get("jacobian") is not None and kwargs["jacobian"].dim() == 4:
        # a batched (B, F, m, n) jacobian is valid; make it inconsistent with a batched z of another B instead
        args["z"] = t(np.zeros((5, 3, 2)))
        fam = LinearFactors([X.all(), Y[[0, 1, 2]]], **args)
        with pytest.raises(ValueError, match="batch"):
            graph.add(fam)
            graph.solve(iters=2)
        return
    with pytest.raises(ValueError, match=match):
        LinearFactors([X.all(), Y[[0, 1, 2]]], **args)


def test_out_of_range_indices(graph):
    X, _ = graph.groups
    with pytest.raises(ValueError, match="out of range"):
        X[5]
    with pytest.raises(ValueError, match="out of range"):
        X[-4]
    assert X[-1].index.tolist() == [2]  # python-style negative ints are fine
    with pytest.raises(ValueError, match="out of range"):
        X[torch.tensor([0, 3])]
    with pytest.raises(ValueError, match="out of range"):
        X[torch.tensor([-1, 0])]
    with pytest.raises(ValueError, match="out of range"):
        X[[0, 7]]


def test_slot_sizes_must_match(graph):
    X, Y = graph.groups
    with pytest.raises(ValueError, match="same non-zero number"):
        LinearFactors([X[[0, 1]], Y[[0, 1, 2]]], _pair_jacobian(2), t(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="VariableRef"):
        LinearFactors([X], _pair_jacobian(3), t(np.zeros((3, 2))))  # a group, not indexed
    with pytest.raises(ValueError, match="VariableRef"):
        LinearFactors([], _pair_jacobian(3), t(np.zeros((3, 2))))


def test_bad_variable_groups():
    g = FactorGraph()
    with pytest.raises(ValueError, match="num >= 1"):
        g.add_variables(0, 2)
    with pytest.raises(ValueError, match="dim >= 1"):
        g.add_variables(2, 0)
    with pytest.raises(ValueError, match="init must have shape"):
        g.add_variables(2, 2, init=t(np.zeros((3, 2))))
    with pytest.raises(ValueError, match="init contains NaN"):
        g.add_variables(2, 2, init=t([[0.0, 1.0], [np.nan, 0.0]]))


def test_difference_factors_need_equal_dims(graph):
    X, Y = graph.groups
    with pytest.raises(ValueError, match="equal dims"):
        DifferenceFactors(X.all(), Y.all(), t(np.zeros((3, 1))))


def test_unknown_schedule_and_bad_damping(graph):
    X, _ = graph.groups
    graph.add(PriorFactors(X.all(), t(np.zeros((3, 1))), t(1.0)))
    with pytest.raises(ValueError, match="unknown schedule"):
        graph.solve(iters=3, schedule="gauss-seidel")
    for d in (-0.1, 1.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="damping"):
            graph.solve(iters=3, damping=d)
    with pytest.raises(ValueError, match="iters"):
        graph.solve(iters=0)


def test_mixing_groups_from_another_graph():
    g1, g2 = FactorGraph(), FactorGraph()
    a = g1.add_variables(2, 1)
    b = g2.add_variables(2, 1)
    with pytest.raises(ValueError, match="another graph"):
        g1.add(PriorFactors(b.all(), t(np.zeros((2, 1))), t(1.0)))
    with pytest.raises(ValueError, match="another graph"):
        g1.add(DifferenceFactors(a.all(), b.all(), t(np.zeros((2, 1))), t(1.0)))
    # same gid, different graph: still rejected
    c = g2.add_variables(2, 1)
    g1.add_variables(2, 1)
    with pytest.raises(ValueError, match="another graph"):
        g1.add(PriorFactors(c.all(), t(np.zeros((2, 1))), t(1.0)))
    assert len(g1.families) == 0


def test_empty_graph_and_non_family():
    g = FactorGraph()
    g.add_variables(2, 1)
    with pytest.raises(ValueError, match="no factors"):
        g.solve()
    with pytest.raises(TypeError, match="FactorFamily"):
        g.add("prior")


def test_batch_sizes_must_broadcast():
    g = FactorGraph()
    x = g.add_variables(2, 1)
    g.add(PriorFactors(x.all(), t(np.zeros((2, 2, 1))), t(1.0)))
    g.add(DifferenceFactors(x[[0]], x[[1]], t(np.zeros((3, 1, 1))), t(1.0)))
    with pytest.raises(ValueError, match="batch"):
        g.solve(iters=2)


def test_family_internal_batch_mismatch():
    g = FactorGraph()
    x = g.add_variables(2, 1)
    with pytest.raises(ValueError, match="batch"):
        g.add(PriorFactors(x.all(), t(np.zeros((2, 2, 1))), t(np.ones((3, 2)))))
        g.solve(iters=2)


def test_nonlinear_bad_inputs(graph):
    X, _ = graph.groups
    with pytest.raises(ValueError, match="z must have shape"):
        NonlinearFactors([X.all()], lambda v: v, t(np.zeros((2, 1))))
    with pytest.raises(ValueError, match="z contains NaN"):
        NonlinearFactors([X.all()], lambda v: v, t(np.full((3, 1), np.nan)))
    with pytest.raises(ValueError, match="precision"):
        NonlinearFactors([X.all()], lambda v: v, t(np.zeros((3, 1))), precision=t(-1.0))


def test_boolean_masks_select_variables_and_float_indices_are_refused():
    import torch

    from gbp_torch import FactorGraph, PriorFactors

    g = FactorGraph()
    x = g.add_variables(5, 1)
    keep = torch.tensor([True, False, True, False, True])
    assert x[keep].index.tolist() == [0, 2, 4]  # a mask, not the indices 1, 0, 1, 0, 1
    assert x[[True, False, True, False, True]].index.tolist() == [0, 2, 4]
    assert x[torch.tensor([[1, 3]])].index.tolist() == [1, 3]
    g.add(PriorFactors(x[keep], torch.tensor([[1.0], [2.0], [3.0]]), 1.0))
    g.add(PriorFactors(x[~keep], torch.tensor([[-1.0], [-2.0]]), 1.0))
    res = g.solve(iters=5, tol=1e-12)
    torch.testing.assert_close(res.mean(x)[:, 0], torch.tensor([1.0, -1.0, 2.0, -2.0, 3.0]))
    for bad, match in ((torch.tensor([True, False]), r"boolean variable mask must have shape \(5,\)"),
                       (torch.tensor([0.0, 2.0]), "must be integers or a boolean mask"),
                       ([0.5, 1.5], "must be integers or a boolean mask"),
                       (torch.tensor([0, 5]), r"out of range \[0, 5\)"),
                       (7, r"variable index 7 out of range \[0, 5\)"),
                       ("a", "bad variable index 'a'")):
        with pytest.raises(ValueError, match=match):
            x[bad]


@pytest.mark.parametrize("make,match", [
    (lambda: __import__("gbp_torch.modules").modules.GBPLayer(tol=-1.0), "tol must be None or > 0"),
    (lambda: __import__("gbp_torch.modules").modules.GBPLayer(iters=-2), "iters must be an int >= 0"),
    (lambda: __import__("gbp_torch.modules").modules.GBPLayer(damping=1.5), r"damping must be in \[0, 1\)"),
    (lambda: __import__("gbp_torch.modules").modules.GBPLayer(backward="adjoint"), "unknown backward mode"),
    (lambda: __import__("gbp_torch.modules").modules.GridGBP(tol=float("nan")), "tol must be None or > 0"),
    (lambda: __import__("gbp_torch.modules").modules.MultigridGBP(iters=2.5), "iters must be an int >= 0 or None"),
    (lambda: __import__("gbp_torch.modules").modules.MultigridGBP(config={"levels": None}), "config must be a Grid"),
    (lambda: __import__("gbp_torch.modules").modules.GridGBP(robust="huber"), "robust must be None or a GridRobust"),
])
def test_layers_check_their_settings_when_built(make, match):
    with pytest.raises(ValueError, match=match):
        make()

"""Bad stereo settings fail when the settings are made, with a ValueError naming the class and the field."""

import pytest

from gbp_torch.tasks.stereo.handset import SolveSchedule
from gbp_torch.tasks.stereo.refine import RefineConfig


@pytest.mark.parametrize("field, value", [
    ("outer", 0), ("iters", 0), ("iters", 2.0), ("median_slope", -1), ("theta", ()), ("theta", (0.1, float("nan"))),
    ("curvature", (0.0, 1.0)), ("curvature", (1.0, 0.5)), ("curvature", (0.1,)), ("curvature", (True, True)),
    ("median", (4, 11)), ("median", (11,)), ("lr_threshold", 0.0), ("median_sigma", -0.03), ("slope_window", 4),
    ("confidence_floor", -0.1), ("slope_window", -1), ("slope_shrink", -0.1), ("slope_shrink", float("nan")),
    ("irls", 0), ("median_dilation", 0),
])
def test_a_bad_schedule_is_refused_naming_the_field(field, value):
    """outer=0 used to run without a single solve, theta=() to fail with an IndexError inside the loop."""
    with pytest.raises(ValueError, match=f"SolveSchedule.{field}"):
        SolveSchedule(**{field: value})


@pytest.mark.parametrize("field, value", [
    ("steps", -1), ("radius", 0), ("iters", 0), ("data", 0.0), ("k", -1.0), ("prior", 0.0), ("max_step", -0.5),
    ("blur", -1.0), ("blur", float("inf")),
])
def test_a_bad_refinement_setting_is_refused_naming_the_field(field, value):
    """Negative steps or max_step used to be accepted silently (no refinement, or a step clamp that inverts)."""
    with pytest.raises(ValueError, match=f"RefineConfig.{field}"):
        RefineConfig(**{field: value})


def test_lists_from_a_config_file_become_tuples():
    """Hydra / JSON give lists; the frozen schedule stays hashable with tuples."""
    schedule = SolveSchedule(theta=[0.01, 0.1], curvature=[0.01, 1.0], median=[7, 11])
    assert schedule.theta == (0.01, 0.1) and schedule.curvature == (0.01, 1.0) and schedule.median == (7, 11)
    hash(schedule)

"""release_free_memory: glibc's malloc_trim where it exists; the stereo cost volume calls it before SGM.

Its effect on the resident set depends on glibc's heap state, so it is shown by
``benchmarks/bench_memory.py`` (3000 x 2000 stereo pair: ~0.45 GB less), not asserted here.
"""

import ctypes.util
import platform

import pytest
import torch

import gbp_torch.tasks.stereo.cost as cost_module
from gbp_torch.memory import release_free_memory
from gbp_torch.tasks.stereo.cost import CostConfig, cost_volume
from gbp_torch.tasks.stereo.sgm import SGMConfig


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or ctypes.util.find_library("c") is None,
                    reason="malloc_trim is glibc's")
def test_release_reaches_glibc():
    assert release_free_memory() is True


def test_cost_volume_releases_its_temporaries_before_sgm_only(monkeypatch):
    calls = []
    monkeypatch.setattr(cost_module, "release_free_memory", lambda: calls.append(1) or True)
    left, right = torch.rand(2, 1, 3, 12, 20, generator=torch.Generator().manual_seed(0))
    cost_volume(left, right, 4, CostConfig(sgm=SGMConfig(paths=0)))
    assert calls == []  # no second volume follows
    cost_volume(left, right, 4, CostConfig())
    assert calls == [1]

"""gbp_torch.cli.allocator: glibc's thresholds are set where glibc exists, and nothing fails elsewhere."""

import ctypes
import sys

import pytest

from gbp_torch.cli import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_glibc_accepts_the_thresholds_and_small_blocks_still_work():
    try:
        has_mallopt = hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        has_mallopt = False
    if not has_mallopt:
        pytest.skip("no glibc")
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # idempotent
    import torch

    x = torch.ones(3 << 20)  # 12 MB, below the 32 MB threshold: now served from the heap
    assert float(x.sum()) == 3 << 20


def test_no_glibc_is_not_an_error(monkeypatch):
    def missing(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(allocator.ctypes, "CDLL", missing)
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_the_clis_set_it_before_their_work(monkeypatch):
    from gbp_torch.cli import common

    calls = []
    monkeypatch.setattr(common, "keep_freed_memory", lambda: calls.append("malloc"))
    common.run("prog", lambda argv: calls.append("body"), [])
    assert calls == ["malloc", "body"]

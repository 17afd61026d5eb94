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

    monkeypatch.setattr(ctypes, "CDLL", missing)
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_the_clis_set_it_before_their_work(monkeypatch):
    from gbp_torch.cli import common

    calls = []
    monkeypatch.setattr(common, "keep_freed_memory", lambda: calls.append("malloc"))
    common.run("prog", lambda argv: calls.append("body"), [])
    assert calls == ["malloc", "body"]


def test_releasing_free_heap_memory_returns_pages_where_glibc_exists_and_is_a_no_op_elsewhere(monkeypatch):
    """Freed heap blocks below glibc's trim threshold stay resident (the CLIs' setting keeps them for reuse);
    malloc_trim gives their pages back: the resident set shrinks."""
    from gbp_torch import heap

    if heap.libc() is None:
        pytest.skip("no glibc")
    import torch

    def rss_mb() -> float:
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

    allocator.keep_freed_memory()
    blocks = [torch.ones(1 << 20) for _ in range(32)]  # 32 x 4 MB from the heap (below the 32 MB mmap threshold)
    del blocks  # 128 MB free in the heap, below the 256 MB trim threshold: not given back by itself
    before = rss_mb()
    assert heap.release_free_memory() is True
    assert rss_mb() < before - 64
    monkeypatch.setattr(sys, "platform", "darwin")
    assert heap.libc() is None and heap.release_free_memory() is False

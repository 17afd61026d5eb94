"""Keep freed memory in the CLI's process instead of returning it to the system (glibc only).

Big images make every step allocate and free many tensors of several MB. glibc serves those from fresh
``mmap`` regions or trims the heap after freeing them, so the next step faults the same pages in again:
on a 1920x1080 pair the default flow model spent 7 s of 19.5 s in the kernel that way. Raising the
``mmap`` threshold to its 32 MB maximum and the trim threshold to 256 MB lets freed blocks serve the next
allocations (``benchmarks/bench_memory.py``, 2 threads: the 3000x2000 stereo pair with 256 disparities
312 -> 246 s at 3.86 -> 3.88 GB, the 3840x2160 flow pair 150 -> 130 s at 5.22 -> 5.46 GB; a 1 GB trim
threshold took the stereo pair to 4.32 GB). The CLIs set this for their own process; importing the library
never changes the allocator.
"""

from __future__ import annotations

import ctypes

from ..heap import libc

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Set glibc's ``mallopt`` thresholds (module docstring); True when both were accepted, False where there is
    no glibc (macOS, Windows, musl) or it refused."""
    lib = libc()
    if lib is None:
        return False
    mallopt = lib.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))

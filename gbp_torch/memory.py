"""Hand freed heap memory back to the operating system (glibc), after phases with many big temporaries.

glibc raises its mmap threshold after big frees, so later temporaries of a few tens of MB come from the
heap, and a fragmented heap keeps them resident after they are freed: on a 3000 x 2000 stereo pair
the cost volume's chunk loop left ~0.45 GB of freed memory in the process's resident set.
:func:`release_free_memory` asks glibc to return it (``malloc_trim(0)``); elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _malloc_trim():
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl without it, Windows)
        return None


def release_free_memory() -> bool:
    """Return the heap's freed pages to the OS; True where the C library can (glibc), else a no-op (False)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True

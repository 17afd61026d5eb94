"""Give the C heap's free memory back to the system at a pipeline's turning points (glibc only).

A stage that allocates and frees many tensors of a few MB (the stereo cost volume's bands) leaves freed
memory in the heap; glibc returns it only from the heap's top, so what the next stage needs comes on top of
what the last one left. On a 3000x2000 stereo pair with 256 disparities that made the peak 3.6 or 4.5 GB from
run to run of the same code; :func:`release_free_memory` between the stages takes the leftover out of the peak.
"""

from __future__ import annotations

import ctypes
import sys


def libc() -> ctypes.CDLL | None:
    """glibc, or None (macOS, Windows, musl: no ``mallopt`` / ``malloc_trim``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        lib = ctypes.CDLL("libc.so.6")
        lib.mallopt, lib.malloc_trim  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    return lib


def release_free_memory() -> bool:
    """``malloc_trim(0)``: free pages anywhere in the heap go back to the system; True when glibc did release some."""
    lib = libc()
    return bool(lib.malloc_trim(0)) if lib is not None else False

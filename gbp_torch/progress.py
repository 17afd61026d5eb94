"""Optional progress bars for long work (tiles, warps, solver rounds).

tqdm is not a dependency of the library (it imports with torch alone): without it, or when not
enabled, :func:`progress_bar` returns a bar that does nothing.
"""

from __future__ import annotations


class _Silent:
    """The bar shown when none is wanted: its methods do nothing."""

    def update(self, n: int = 1) -> None:
        """Nothing to advance."""

    def close(self) -> None:
        """Nothing to clear."""


def progress_bar(total: int, desc: str, unit: str, enabled: bool = True):
    """A tqdm bar over ``total`` steps (cleared when closed), or a silent stand-in when not ``enabled``,
    when there is only one step, or without tqdm. Call ``update()`` per step and ``close()`` at the end."""
    if enabled and total > 1:
        try:
            from tqdm import tqdm
        except ImportError:
            return _Silent()
        return tqdm(total=total, desc=desc, unit=unit, leave=False)
    return _Silent()

"""Console entry points (registered in pyproject.toml)."""

from __future__ import annotations


def demo_main() -> None:
    """``gbp-demo``: denoise the shipped sample images."""
    from .demo import main

    main()

"""Checks for the tasks' settings dataclasses: a bad value fails when the settings are made, with a
``ValueError`` that names the class and the field (not later, deep in a loop)."""

from __future__ import annotations

import math
from collections.abc import Callable


def is_real(value: object) -> bool:
    """Whether ``value`` is a finite int or float (a bool is not a number here)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_int(owner: object, name: str, least: int) -> None:
    """``owner.name`` must be an int (not a bool) >= ``least``."""
    value = getattr(owner, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{type(owner).__name__}.{name} must be an int >= {least}, got {value!r}")


def check_number(owner: object, name: str, ok: Callable[[float], bool], rule: str) -> None:
    """``owner.name`` must be a finite real number (not a bool) for which ``ok`` holds (``rule`` says which)."""
    value = getattr(owner, name)
    if not is_real(value) or not ok(value):
        raise ValueError(f"{type(owner).__name__}.{name} must be {rule}, got {value!r}")


def check_choice(owner: object, name: str, choices: tuple[str, ...]) -> None:
    """``owner.name`` must be one of ``choices``."""
    value = getattr(owner, name)
    if value not in choices:
        raise ValueError(f"{type(owner).__name__}.{name} must be one of {choices}, got {value!r}")

"""Validators used at the package's boundaries.

A public function checks its arguments once, on entry, with these helpers; the code inside
(the training step above all) then runs without checks. Each helper raises ``ValueError``
naming the parameter and what was expected, and returns the value (normalised where that
is useful), so a check reads as an assignment::

    steps = checks.positive_int("steps", steps)
"""

from __future__ import annotations

import math
from typing import Iterable


def is_int(value) -> bool:
    """True for a Python or NumPy integer that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) or type(value).__name__.startswith("int")


def positive_int(name: str, value) -> int:
    """``value`` as an ``int`` >= 1, or ``ValueError`` naming ``name``."""
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """``value`` as an ``int`` >= 0, or ``ValueError`` naming ``name``."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    return int(value)


def optional_positive_int(name: str, value) -> int | None:
    """``None``, or ``value`` as an ``int`` >= 1."""
    if value is None:
        return None
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be None or a positive int, got {value!r}")
    return int(value)


def positive_number(name: str, value, allow_zero: bool = False) -> float:
    """``value`` as a finite ``float`` > 0 (>= 0 with ``allow_zero``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def optional_positive_number(name: str, value) -> float | None:
    """``None``, or ``value`` as a finite ``float`` > 0."""
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ValueError(f"{name} must be None or a finite number > 0, got {value!r}")
    return float(value)


def boolean(name: str, value, allow_none: bool = False) -> bool | None:
    """``value`` if it is ``True`` or ``False`` (or ``None`` with ``allow_none``); ``1`` and ``0`` are refused."""
    if not (isinstance(value, bool) or (allow_none and value is None)):
        raise ValueError(f"{name} must be {'None, ' if allow_none else ''}True or False, got {value!r}")
    return value


def one_of(name: str, value, allowed: Iterable):
    """``value`` if it is one of ``allowed``, else ``ValueError`` listing the valid choices."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def unit_interval(name: str, value, closed_right: bool = False) -> float:
    """``value`` as a ``float`` in ``[0, 1)`` (``[0, 1]`` with ``closed_right``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or value > 1 or (value == 1 and not closed_right):
        raise ValueError(f"{name} must be a number in [0, 1{']' if closed_right else ')'}, got {value!r}")
    return float(value)

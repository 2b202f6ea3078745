"""Validators used at the package's boundaries.

A public function checks its arguments once, on entry, with these helpers; the code inside
(the training step above all) then runs without checks. Each helper raises ``ValueError``
naming the parameter and what was expected, and returns the value (normalised where that
is useful), so a check reads as an assignment::

    steps = checks.positive_int("steps", steps)

:func:`renamed` keeps an old keyword of a renamed parameter working (the package names a
``torch.Generator`` argument ``rng`` and a loss ``loss``; older code passes ``generator=``
or ``kind=``).
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Callable, Iterable


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


def renamed(**old_to_new: str) -> Callable:
    """Decorator: accept each old keyword ``old`` as the renamed parameter ``new``.

    ``@renamed(generator="rng")`` on ``def sample(n, rng=None)`` makes ``sample(5, generator=g)``
    mean ``sample(5, rng=g)``; positional calls are untouched. Passing both names (the new one
    by keyword or by position) raises ``TypeError`` naming both. The wrapper keeps the
    function's name, docstring and signature (``functools.wraps``).

    Args:
        **old_to_new: old keyword -> the parameter's new name, which the function must have
            (and the old one must not).
    """
    def decorate(fn: Callable) -> Callable:
        params = inspect.signature(fn).parameters
        for old, new in old_to_new.items():
            if new not in params:
                raise TypeError(f"renamed: {fn.__qualname__} has no parameter {new!r} "
                                f"(the new name of {old!r})")
            if old in params:
                raise TypeError(f"renamed: {fn.__qualname__} still has a parameter named {old!r}")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if kwargs:  # fast path: no keyword, nothing to rename
                for old, new in old_to_new.items():
                    if old in kwargs:
                        if new in kwargs or new in inspect.signature(fn).bind_partial(*args).arguments:
                            raise TypeError(f"{fn.__qualname__}() got both {old!r} (the old name) "
                                            f"and {new!r}; pass only {new!r}")
                        kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate

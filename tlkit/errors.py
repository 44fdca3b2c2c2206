"""Helpers for error messages that name the problem and the fix.

The argument checks raise in Keras's style: "Invalid value for argument `x`. Received:
x=... Expected ...". A value that does not fit is an error, never replaced by a default.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable


def suggest(name: str, known: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest known name, or '' when nothing is close."""
    known = list(known)
    close = difflib.get_close_matches(str(name).lower(), [k.lower() for k in known], n=1, cutoff=0.5)
    if not close:
        return ""
    original = {k.lower(): k for k in known}[close[0]]
    return f" Did you mean {original!r}?"


def invalid(name: str, value, expected: str, fix: str = "") -> ValueError:
    """The Keras-style error for argument `name` given `value`."""
    return ValueError(
        f"Invalid value for argument `{name}`. Received: {name}={value!r}. "
        f"Expected {expected}.{' ' + fix if fix else ''}"
    )


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None, fix: str = "") -> int:
    """`value` as an int, if it is a whole number (not a bool or float) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise invalid(name, value, _int_range(minimum, maximum), fix)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise invalid(name, value, _int_range(minimum, maximum), fix)
    return int(value)


def _int_range(minimum, maximum) -> str:
    if maximum is None:
        return "an integer" + (f" >= {minimum}" if minimum is not None else "")
    return f"an integer from {minimum} to {maximum}"


def check_number(
    name: str,
    value,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    fix: str = "",
) -> float:
    """`value` as a float, if it is a finite real number within the given bounds."""
    low = "" if minimum is None else (f"> {minimum}" if exclusive_minimum else f">= {minimum}")
    high = "" if maximum is None else (f"< {maximum}" if exclusive_maximum else f"<= {maximum}")
    expected = "a finite number" + (" " if low or high else "") + " and ".join(b for b in (low, high) if b)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise invalid(name, value, expected, fix)
    value = float(value)
    if minimum is not None and (value < minimum or (exclusive_minimum and value == minimum)):
        raise invalid(name, value, expected, fix)
    if maximum is not None and (value > maximum or (exclusive_maximum and value == maximum)):
        raise invalid(name, value, expected, fix)
    return value


def check_choice(name: str, value, choices: Iterable[str]) -> str:
    """`value`, if it is one of `choices` (a suggestion for the closest otherwise)."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        hint = suggest(value, choices) if isinstance(value, str) else ""
        raise invalid(name, value, "one of " + ", ".join(repr(c) for c in choices), hint.strip())
    return value

"""Helpers for error messages that name the problem and the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(name: str, known: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest known name, or '' when nothing is close."""
    close = difflib.get_close_matches(str(name).lower(), [k.lower() for k in known], n=1, cutoff=0.5)
    if not close:
        return ""
    original = {k.lower(): k for k in known}[close[0]]
    return f" Did you mean {original!r}?"

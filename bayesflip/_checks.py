"""Argument checks shared across the library (one wording for every error)."""

from __future__ import annotations

import numpy as np


def check_positive_int(owner: str, name: str, value, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int if it is an int >= 1 (or ``None`` when allowed).

    Raises:
        ValueError: naming ``owner`` (a function or ``Layer 'name'``), the
            argument and the value received.

    Example:
    >>> check_positive_int("f", "units", 3)
    3
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: `{name}` must be a positive int, got {value!r}.")
    return int(value)

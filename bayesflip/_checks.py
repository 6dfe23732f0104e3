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


#: Entries within this of [0, 1] and row sums within this of 1 count as "already probabilities".
PROBS_ATOL = 1e-3


def looks_like_probabilities(values) -> bool:
    """Whether every row along the last axis lies on the probability simplex (at least 2 classes).

    Example:
    >>> looks_like_probabilities([[0.2, 0.8], [1.0, 0.0]]), looks_like_probabilities([[2.0, -1.0]])
    (True, False)
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim < 1 or a.size == 0 or a.shape[-1] < 2:
        return False
    return bool(
        np.all(a >= -PROBS_ATOL)
        and np.all(a <= 1 + PROBS_ATOL)
        and np.all(np.abs(a.sum(axis=-1) - 1.0) <= PROBS_ATOL)
    )


def warn_probabilities_as_logits(
    owner: str,
    what: str,
    stacklevel: int = 3,
    fix: str = "Use from_logits=False for probabilities (e.g. a model that ends in a softmax).",
) -> None:
    """Warn (like Keras' losses about a softmax output) that ``from_logits=True`` got probabilities.

    ``what`` names the values, e.g. ``"the outputs of 'model'"``; the default ``fix`` suits
    functions with a ``from_logits`` argument.
    """
    import warnings

    lead = f"received `from_logits=True`, but {what}" if "from_logits" in fix else what
    warnings.warn(
        f"{owner}: {lead} already lie on the probability simplex (entries in [0, 1], rows summing "
        f"to 1), so they do not represent logits: a softmax of probabilities flattens them towards "
        f"uniform. Was this intended? {fix}",
        UserWarning,
        stacklevel=stacklevel,
    )

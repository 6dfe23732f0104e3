"""Input validation of the classification calibration metrics (labels and probabilities).

Shared by :mod:`bayesflip.calibration.metrics`, the temperature scaling of
:mod:`bayesflip.calibration.temperature` and :mod:`bayesflip.conformal`: one
place decides what a valid ``(N, K)`` probability matrix and its labels are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from bayesflip._checks import (
    PROBS_ATOL,
    check_on_simplex,
    check_positive_int,
    looks_like_probabilities,
    warn_probabilities_as_logits,
)
from bayesflip._typing import ArrayLike

NORMS = ("l1", "l2", "max")
BINNINGS = ("equal_width", "equal_mass")
#: Tolerance on probabilities: each row must sum to 1 within it, entries in [-tol, 1 + tol]
#: (the library's one simplex tolerance, ``bayesflip._checks.PROBS_ATOL``).
SIMPLEX_ATOL = PROBS_ATOL


def _check_choice(fn: str, arg: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{fn}: `{arg}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_num_bins(fn: str, num_bins: Any) -> int:
    """Validate a bin count (a positive int)."""
    return check_positive_int(fn, "num_bins", num_bins)


def _to_numpy(fn: str, arg: str, value) -> np.ndarray:
    if tf.is_tensor(value):
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except Exception as err:  # pragma: no cover - numpy refuses very odd objects
        raise TypeError(f"{fn}: `{arg}` must be array-like, got {type(value).__name__}: {err}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{fn}: `{arg}` must be numeric, got dtype {arr.dtype}.")
    return arr


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_matrix(fn: str, what: str, value) -> np.ndarray:
    arr = _to_numpy(fn, what, value).astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(
            f"{fn}: `{what}` must have shape (num_examples, num_classes), got shape {arr.shape}."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{fn}: got an empty input (`{what}` has shape {arr.shape}).")
    if arr.shape[1] < 1:
        raise ValueError(f"{fn}: `{what}` needs at least one class, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{fn}: `{what}` contains NaN or infinite values.")
    return arr


def validate_probs(fn: str, probs: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """``probs`` (or softmax of logits) as a float64 ``(N, K)`` array, validated.

    Raises ``ValueError`` for a wrong rank, an empty batch, non-finite values or
    rows off the probability simplex (beyond :data:`SIMPLEX_ATOL`).
    """
    what = "logits" if from_logits else "probs"
    arr = _check_matrix(fn, what, probs)
    if from_logits:
        if looks_like_probabilities(arr):
            warn_probabilities_as_logits(fn, "the `probs` passed as logits", stacklevel=5)
        return np.exp(_log_softmax(arr))
    check_on_simplex(fn, "probs", arr)
    return np.clip(arr, 0.0, 1.0)


def validate_labels(fn: str, labels: ArrayLike, num_examples: int, num_classes: int) -> np.ndarray:
    """Integer labels ``(N,)`` from ``(N,)``, ``(N, 1)`` or one-hot ``(N, K)``; validated."""
    arr = _to_numpy(fn, "labels", labels)
    if arr.ndim == 2 and arr.shape[1] == num_classes and num_classes > 1:
        if not np.all((arr == 0) | (arr == 1)) or not np.all(arr.sum(axis=1) == 1):
            raise ValueError(
                f"{fn}: 2-D `labels` of shape {arr.shape} must be one-hot (one 1 per row, zeros elsewhere)."
            )
        arr = arr.argmax(axis=1)
    elif arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{fn}: `labels` must have shape ({num_examples},), ({num_examples}, 1) or one-hot "
            f"({num_examples}, {num_classes}), got shape {arr.shape}."
        )
    if arr.shape[0] != num_examples:
        raise ValueError(f"{fn}: got {arr.shape[0]} labels for {num_examples} predictions.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{fn}: `labels` must be integer class indices, got non-integer values.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{fn}: `labels` must be in [0, {num_classes - 1}] for {num_classes} classes, "
            f"got values in [{arr.min()}, {arr.max()}]."
        )
    return arr


def _validate(fn, labels, probs, from_logits):
    p = validate_probs(fn, probs, from_logits)
    y = validate_labels(fn, labels, p.shape[0], p.shape[1])
    return y, p

"""Bundled data: scikit-learn's digits (no download) and out-of-distribution sets."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["DigitsSplit", "load_digits", "corrupt_images"]


class DigitsSplit(NamedTuple):
    """Train/test arrays of the digits data (pixels scaled to [0, 1])."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(test_fraction: float = 0.2, seed: int = 0, images: bool = False) -> DigitsSplit:
    """scikit-learn's 1,797 8×8 handwritten digits, split stratified.

    Args:
        test_fraction: fraction of the examples held out for testing, in (0, 1).
        seed: seed of the split.
        images: return ``(n, 8, 8, 1)`` images instead of ``(n, 64)`` vectors.

    Returns:
        A :class:`DigitsSplit` of float32 pixels in [0, 1] and int64 labels.

    Example:
    >>> d = load_digits()
    >>> d.x_train.shape, d.x_test.shape
    ((1437, 64), (360, 64))
    """
    from sklearn.datasets import load_digits as _load
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: `test_fraction` must lie in (0, 1), got {test_fraction!r}.")
    data = _load()
    x = (data.data / 16.0).astype("float32")
    y = data.target.astype("int64")
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    if images:
        x_tr, x_te = x_tr.reshape(-1, 8, 8, 1), x_te.reshape(-1, 8, 8, 1)
    return DigitsSplit(x_tr, y_tr, x_te, y_te)


def corrupt_images(x: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """Out-of-distribution versions of digit inputs.

    Args:
        x: digits, ``(n, 64)`` or ``(n, 8, 8, 1)``, pixels in [0, 1].
        kind: ``"permuted"`` (each image's pixels shuffled: same intensity
            histogram, no digit shape), ``"noise"`` (uniform noise images) or
            ``"inverted"`` (``1 - x``).
        seed: seed of the corruption.

    Returns:
        An array of the shape and dtype of ``x``.

    Example:
    >>> x = load_digits().x_test[:5]
    >>> corrupt_images(x, "permuted").shape
    (5, 64)
    """
    rng = np.random.default_rng(seed)
    flat = x.reshape(len(x), -1)
    if kind == "permuted":
        out = np.stack([row[rng.permutation(row.size)] for row in flat])
    elif kind == "noise":
        out = rng.uniform(0.0, 1.0, size=flat.shape)
    elif kind == "inverted":
        out = 1.0 - flat
    else:
        raise ValueError(
            f"corrupt_images: unknown `kind` {kind!r}; expected 'permuted', 'noise' or 'inverted'."
        )
    return out.reshape(x.shape).astype(x.dtype)

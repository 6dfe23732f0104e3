"""Split-conformal building blocks shared by regression and classification.

The miscoverage check, the conformal quantile ``q̂ = s_(k)``, and the coverage
metrics (:func:`interval_covered`, :func:`set_covered`, widths, set sizes,
coverage per group). Conventions in :mod:`bayesflip.conformal`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from bayesflip._checks import check_positive_int, check_real
from bayesflip._typing import ArrayLike
from bayesflip.calibration._inputs import _to_numpy, validate_labels

#: Slack for ``(n + 1)(1 − α)`` computed in floating point (``10 · 0.9 = 9.000000000000002``).
_EPS = 1e-9


# --------------------------------------------------------------------------- checks
def check_alpha(fn: str, alpha: float) -> float:
    """``alpha`` as a float if it is a number in ``(0, 1)``; else a ``ValueError`` naming ``fn``.

    Example:
    >>> check_alpha("f", 0.1)
    0.1
    """
    return check_real(fn, "alpha", alpha, low=0, high=1, what="a number in (0, 1) (the miscoverage rate)")


def _rank(alpha: float, n: int) -> int:
    """``k = ⌈(n + 1)(1 − α)⌉`` (robust to round-off)."""
    return int(math.ceil((n + 1) * (1.0 - alpha) - _EPS))


def min_calibration_size(alpha: float) -> int:
    """Smallest ``n`` with ``⌈(n + 1)(1 − α)⌉ ≤ n`` (fewer calibration points: no finite ``q̂``).

    Example:
    >>> min_calibration_size(0.1), min_calibration_size(0.05)
    (9, 19)
    """
    alpha = check_alpha("min_calibration_size", alpha)
    n = max(1, int(math.floor((1.0 - alpha) / alpha)) - 1)
    while _rank(alpha, n) > n:
        n += 1
    return n


def _float_array(fn: str, arg: str, value) -> np.ndarray:
    arr = _to_numpy(fn, arg, value).astype(np.float64)
    if arr.ndim == 0:
        raise ValueError(f"{fn}: `{arg}` must have a leading example axis, got a scalar.")
    if arr.shape[0] == 0:
        raise ValueError(f"{fn}: got an empty input (`{arg}` has shape {arr.shape}).")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{fn}: `{arg}` contains NaN or infinite values.")
    return arr


def _same_shape(fn: str, names: tuple[str, ...], arrays: tuple[np.ndarray, ...]) -> None:
    shapes = [a.shape for a in arrays]
    if any(s != shapes[0] for s in shapes):
        parts = [f"`{n}` {s}" for n, s in zip(names, shapes)]
        listed = ", ".join(parts[:-1]) + " and " + parts[-1]
        named = ", ".join(f"`{n}`" for n in names[:-1]) + f" and `{names[-1]}`"
        raise ValueError(f"{fn}: {named} must have the same shape, got {listed}.")


# --------------------------------------------------------------------------- the quantile
def conformal_quantile(scores: ArrayLike, alpha: float) -> np.ndarray | float:
    """Split-conformal quantile ``q̂ = s_(k)``: the ``k``-th smallest score, ``k = ⌈(n+1)(1−α)⌉``.

    Equivalently the empirical quantile of the scores at level ``⌈(n+1)(1−α)⌉/n``
    taken as ``np.quantile(scores, k/n, method="inverted_cdf")``; note that the common
    ``method="higher"`` idiom returns the ``(k+1)``-th smallest (it interpolates at
    ``k(n−1)/n``), a slightly conservative ``q̂``. With exchangeable data, a new score is ``≤ q̂`` with
    probability ``≥ 1 − α`` (and ``≤ 1 − α + 1/(n+1)`` without ties).

    Args:
        scores: calibration scores ``(n,)``, or ``(n, ...)`` for one quantile per
            trailing position (e.g. per regression output unit).
        alpha: miscoverage rate in ``(0, 1)``.

    Returns:
        A float for ``(n,)`` scores, else an array of shape ``scores.shape[1:]``.

    Raises:
        ValueError: ``alpha`` outside ``(0, 1)``, or ``n`` too small for it
            (``k > n``; see :func:`min_calibration_size`).

    Example:
    >>> conformal_quantile([5.0, 1.0, 4.0, 2.0, 3.0], alpha=0.5)   # k = ⌈6 · 0.5⌉ = 3
    3.0
    >>> float(conformal_quantile(np.arange(1.0, 101.0), alpha=0.1))  # k = ⌈101 · 0.9⌉ = 91
    91.0
    """
    fn = "conformal_quantile"
    alpha = check_alpha(fn, alpha)
    s = _float_array(fn, "scores", scores)
    n = s.shape[0]
    k = _rank(alpha, n)
    if k > n:
        raise ValueError(
            f"{fn}: {n} calibration scores are too few for alpha={alpha!r}: the conformal quantile is the "
            f"⌈(n+1)(1−α)⌉ = {k}-th smallest score; alpha={alpha!r} needs at least "
            f"{min_calibration_size(alpha)} calibration points (or use a larger alpha)."
        )
    q = np.partition(s, k - 1, axis=0)[k - 1]
    return float(q) if s.ndim == 1 else q


# --------------------------------------------------------------------------- metrics
def interval_covered(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
    """Boolean ``lower ≤ y ≤ upper`` per target (its mean is the empirical coverage).

    Example:
    >>> interval_covered([0.0, 2.0], [-1.0, -1.0], [1.0, 1.0]).tolist()
    [True, False]
    """
    fn = "interval_covered"
    y, lo, hi = _float_array(fn, "y", y), _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("y", "lower", "upper"), (y, lo, hi))
    return (y >= lo) & (y <= hi)


def set_covered(sets: ArrayLike, labels: ArrayLike) -> np.ndarray:
    """Boolean: is the true label in the prediction set? ``sets (N, K)`` mask, ``labels (N,)``.

    Example:
    >>> set_covered([[True, False], [True, False]], [0, 1]).tolist()
    [True, False]
    """
    fn = "set_covered"
    m = _to_numpy(fn, "sets", sets).astype(bool)
    if m.ndim != 2:
        raise ValueError(
            f"{fn}: `sets` must be a mask of shape (num_examples, num_classes), got shape {m.shape}."
        )
    y = validate_labels(fn, labels, m.shape[0], m.shape[1])
    return m[np.arange(len(y)), y]


def mean_width(lower: ArrayLike, upper: ArrayLike) -> float:
    """Mean interval width ``mean(u − l)``.

    Example:
    >>> mean_width([0.0, 0.0], [1.0, 3.0])
    2.0
    """
    fn = "mean_width"
    lo, hi = _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("lower", "upper"), (lo, hi))
    return float(np.mean(hi - lo))


def mean_set_size(sets: ArrayLike) -> float:
    """Mean number of classes per prediction set.

    Example:
    >>> mean_set_size([[True, True, False], [False, True, False]])
    1.5
    """
    m = _to_numpy("mean_set_size", "sets", sets).astype(bool)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(
            f"mean_set_size: `sets` must be a non-empty mask (num_examples, num_classes), got {m.shape}."
        )
    return float(m.sum(axis=1).mean())


class GroupCoverage(NamedTuple):
    """Coverage per group (sorted group values) and its worst case."""

    groups: np.ndarray  #: the distinct group values
    coverage: np.ndarray  #: fraction covered per group
    count: np.ndarray  # type: ignore[assignment]  #: examples per group (shadows tuple.count)
    worst: float  #: the lowest per-group coverage


def coverage_by_group(covered: ArrayLike, groups: ArrayLike) -> GroupCoverage:
    """Empirical coverage within each group (class, feature bin, uncertainty decile …).

    Conformal coverage is guaranteed only on average; a group whose coverage is
    far below ``1 − α`` reveals conditional miscoverage.

    Args:
        covered: boolean per example ``(N,)`` (:func:`interval_covered`, :func:`set_covered`).
        groups: group id per example ``(N,)`` (any integer labels,
            e.g. predicted classes or :func:`quantile_groups`).

    Example:
    >>> g = coverage_by_group([True, False, True, True], [0, 0, 1, 1])
    >>> g.groups.tolist(), g.coverage.tolist(), g.count.tolist(), g.worst
    ([0, 1], [0.5, 1.0], [2, 2], 0.5)
    """
    fn = "coverage_by_group"
    c = _to_numpy(fn, "covered", covered).astype(bool).reshape(-1)
    g = _to_numpy(fn, "groups", groups).reshape(-1)
    if c.shape != g.shape or c.size == 0:
        raise ValueError(
            f"{fn}: `covered` and `groups` must be non-empty with one entry per example, "
            f"got {c.shape} and {g.shape}."
        )
    values, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    cov = np.bincount(inverse, weights=c.astype(np.float64)) / counts
    return GroupCoverage(values, cov, counts, float(cov.min()))


def quantile_groups(values: ArrayLike, num_groups: int = 10) -> np.ndarray:
    """Group ids ``0 … num_groups − 1``: equal-mass bins of ``values`` (e.g. uncertainty deciles).

    Example:
    >>> quantile_groups([0.1, 0.4, 0.2, 0.3], num_groups=2).tolist()
    [0, 1, 0, 1]
    """
    fn = "quantile_groups"
    v = _float_array(fn, "values", values).reshape(-1)
    num_groups = check_positive_int(fn, "num_groups", num_groups)
    ranks = np.argsort(np.argsort(v, kind="stable"), kind="stable")
    return (ranks * num_groups // len(v)).astype(np.int64)

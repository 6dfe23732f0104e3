"""Split conformal prediction on top of the Bayesian predictive.

Split conformal prediction turns any predictive into intervals (regression) or
sets (classification) with a finite-sample **marginal** guarantee: if the
calibration examples and the test example are exchangeable, then

    ``1 − α ≤ P(y_test ∈ C(x_test)) ≤ 1 − α + 1/(n + 1)``

(the upper bound for continuous, tie-free scores), whatever the model. Recipe:
compute a *nonconformity score* ``s_i`` on ``n`` held-out calibration examples,
take the conformal quantile

    ``q̂ = s_(k)``,  the ``k``-th smallest score, ``k = ⌈(n + 1)(1 − α)⌉``

(the empirical quantile at level ``⌈(n+1)(1−α)⌉/n``, :func:`conformal_quantile`),
and predict every candidate whose score is ``≤ q̂``. The BNN's own uncertainty
enters through the score, which makes the sets *adaptive*:

===========================  ==========================================  ===========================
score                        ``s(x, y)``                                  prediction
===========================  ==========================================  ===========================
``"absolute"``               ``|y − μ(x)|``                               ``μ ± q̂``
``"normalized"``             ``|y − μ(x)| / σ(x)`` (predictive sd)        ``μ ± q̂ σ``
``"cqr"`` (Romano 2019)      ``max(l(x) − y, y − u(x))``, ``l, u`` the     ``[l − q̂, u + q̂]``
                             ``α/2``, ``1 − α/2`` predictive quantiles
``"lac"`` (Sadinle 2019)     ``1 − π_y(x)``                               ``{k : 1 − π_k ≤ q̂}``
``"aps"`` (Romano 2020)      ``ρ_y(x) + u · π_y(x)``                      ``{k : s(x, k) ≤ q̂}``
``"raps"`` (Angelopoulos     APS ``+ λ (o_y(x) − k_reg)⁺``                 ``{k : s(x, k) ≤ q̂}``
2021)
===========================  ==========================================  ===========================

``π(x)`` are the MC predictive probabilities, ``ρ_y`` the total probability of
the classes ranked strictly above ``y``, ``o_y`` the rank of ``y`` (1 = most
probable), ``u ~ U(0, 1)`` one draw per example for the randomised scores
(``u = 1`` for the non-randomised ones).

Pieces: pure functions (scores, :func:`conformal_quantile`, intervals and sets,
coverage metrics), and two calibrate-then-predict wrappers,
:class:`ConformalRegressor` and :class:`ConformalClassifier`, that call
:func:`bayesflip.uncertainty.mc_predict` on any model (``fit(x_cal, y_cal)``,
then ``predict(x, alpha)``; ``alpha`` is chosen at predict time).

The guarantee is marginal (on average over test points), not conditional: the
coverage within a region, class or uncertainty decile can be lower; use
:func:`coverage_by_group` to see it. It also needs exchangeability: test
inputs from elsewhere than the calibration data (a gap, an extrapolation
region, a shift) carry no guarantee.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from bayesflip._checks import check_int, check_positive_int, check_real, is_int, is_real
from bayesflip.calibration._inputs import _to_numpy, validate_labels, validate_probs

__all__ = [
    "REGRESSION_SCORES",
    "CLASSIFICATION_SCORES",
    "check_alpha",
    "conformal_quantile",
    "min_calibration_size",
    "absolute_residual_score",
    "normalized_residual_score",
    "cqr_score",
    "absolute_residual_interval",
    "normalized_interval",
    "cqr_interval",
    "class_scores",
    "label_scores",
    "prediction_sets",
    "interval_covered",
    "set_covered",
    "mean_width",
    "mean_set_size",
    "coverage_by_group",
    "quantile_groups",
    "GroupCoverage",
    "ConformalRegressor",
    "ConformalClassifier",
]

#: Nonconformity scores of :class:`ConformalRegressor` (``score=``), defined in the table above.
REGRESSION_SCORES = ("normalized", "absolute", "cqr")
#: Nonconformity scores of :class:`ConformalClassifier` and :func:`class_scores` (``score=``).
CLASSIFICATION_SCORES = ("lac", "aps", "raps")
#: Slack for ``(n + 1)(1 − α)`` computed in floating point (``10 · 0.9 = 9.000000000000002``).
_EPS = 1e-9


# --------------------------------------------------------------------------- checks
def check_alpha(fn: str, alpha) -> float:
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
def conformal_quantile(scores, alpha: float) -> np.ndarray | float:
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


# --------------------------------------------------------------------------- regression
def absolute_residual_score(y, mean) -> np.ndarray:
    """``s = |y − μ|``: the plain split-conformal score (constant-width intervals).

    Args:
        y: targets ``(N, ...)``.
        mean: point predictions, same shape.

    Example:
    >>> absolute_residual_score([1.0, -2.0], [0.0, 0.0]).tolist()
    [1.0, 2.0]
    """
    fn = "absolute_residual_score"
    y, mu = _float_array(fn, "y", y), _float_array(fn, "mean", mean)
    _same_shape(fn, ("y", "mean"), (y, mu))
    return np.abs(y - mu)


def normalized_residual_score(y, mean, sd) -> np.ndarray:
    """``s = |y − μ| / σ``: residual in units of the predictive standard deviation (adaptive widths).

    Args:
        y: targets ``(N, ...)``.
        mean: predictive means, same shape.
        sd: predictive standard deviations (``> 0``), same shape; e.g.
            ``sqrt(p.total_variance)`` of a :class:`bayesflip.heads.RegressionPredictive`.

    Example:
    >>> normalized_residual_score([1.0, -2.0], [0.0, 0.0], [0.5, 4.0]).tolist()
    [2.0, 0.5]
    """
    fn = "normalized_residual_score"
    y, mu, sd = _float_array(fn, "y", y), _float_array(fn, "mean", mean), _float_array(fn, "sd", sd)
    _same_shape(fn, ("y", "mean", "sd"), (y, mu, sd))
    if np.any(sd <= 0):
        raise ValueError(f"{fn}: every `sd` must be > 0, got a minimum of {sd.min():.4g}.")
    return np.abs(y - mu) / sd


def cqr_score(y, lower, upper) -> np.ndarray:
    """``s = max(l − y, y − u)``: the CQR score (Romano, Patterson, Candès 2019).

    Negative inside the base interval ``[l, u]`` (distance to the nearer end),
    positive outside.

    Args:
        y: targets ``(N, ...)``.
        lower, upper: base interval, e.g. the predictive's ``α/2`` and
            ``1 − α/2`` quantiles, same shape.

    Example:
    >>> cqr_score([0.0, 3.0], [-1.0, -1.0], [1.0, 1.0]).tolist()
    [-1.0, 2.0]
    """
    fn = "cqr_score"
    y, lo, hi = _float_array(fn, "y", y), _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("y", "lower", "upper"), (y, lo, hi))
    return np.maximum(lo - y, y - hi)


def absolute_residual_interval(mean, q) -> tuple[np.ndarray, np.ndarray]:
    """``[μ − q̂, μ + q̂]`` (the interval of :func:`absolute_residual_score`).

    Example:
    >>> [a.tolist() for a in absolute_residual_interval([0.0, 1.0], 0.5)]
    [[-0.5, 0.5], [0.5, 1.5]]
    """
    mu = _float_array("absolute_residual_interval", "mean", mean)
    return mu - q, mu + q


def normalized_interval(mean, sd, q) -> tuple[np.ndarray, np.ndarray]:
    """``[μ − q̂ σ, μ + q̂ σ]`` (the interval of :func:`normalized_residual_score`).

    Example:
    >>> [a.tolist() for a in normalized_interval([0.0, 1.0], [1.0, 2.0], 1.5)]
    [[-1.5, -2.0], [1.5, 4.0]]
    """
    fn = "normalized_interval"
    mu, sd = _float_array(fn, "mean", mean), _float_array(fn, "sd", sd)
    _same_shape(fn, ("mean", "sd"), (mu, sd))
    return mu - q * sd, mu + q * sd


def cqr_interval(lower, upper, q) -> tuple[np.ndarray, np.ndarray]:
    """``[l − q̂, u + q̂]`` (the interval of :func:`cqr_score`; ``q̂ < 0`` shrinks it).

    Example:
    >>> [a.tolist() for a in cqr_interval([-1.0], [1.0], -0.25)]
    [[-0.75], [0.75]]
    """
    fn = "cqr_interval"
    lo, hi = _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("lower", "upper"), (lo, hi))
    return lo - q, np.maximum(hi + q, lo - q)


# --------------------------------------------------------------------------- classification
def _uniforms(fn: str, seed, n: int) -> np.ndarray:
    if isinstance(seed, np.random.Generator):
        return seed.uniform(size=n)
    if seed is not None and (not is_int(seed) or seed < 0):
        raise ValueError(f"{fn}: `seed` must be None, a non-negative int or a numpy Generator, got {seed!r}.")
    return np.random.default_rng(seed).uniform(size=n)


def _check_score_args(fn: str, score: str, lam, k_reg) -> tuple[float, int]:
    if score not in CLASSIFICATION_SCORES:
        raise ValueError(f"{fn}: `score` must be one of {list(CLASSIFICATION_SCORES)}, got {score!r}.")
    if not is_real(lam) or not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"{fn}: `lam` must be a finite number >= 0, got {lam!r}.")
    return float(lam), check_int(fn, "k_reg", k_reg, minimum=0)


def class_scores(
    probs,
    score: str = "aps",
    randomized: bool = True,
    lam: float = 0.01,
    k_reg: int = 1,
    seed=None,
    allow_empty: bool = True,
    u=None,
) -> np.ndarray:
    """Nonconformity score of every candidate class: ``s(x_i, k, u_i)`` for all ``i, k``.

    - ``"lac"``: ``1 − π_k`` (never randomised).
    - ``"aps"``: ``ρ_k + u · π_k`` with ``ρ_k = Σ_{j : π_j > π_k} π_j`` (classes ranked above ``k``).
    - ``"raps"``: APS ``+ λ · max(0, o_k − k_reg)``, ``o_k`` the rank of ``k`` (1 = most probable).

    ``u_i ~ U(0, 1)``, one per example (shared by its classes), drawn as
    ``np.random.default_rng(seed).uniform(size=N)`` (or from the Generator
    ``seed``); ``randomized=False`` uses ``u = 1`` (the cumulative mass up to and
    including ``k``). With ``allow_empty=False`` the top class always gets its
    non-randomised score (as in the reference code of Angelopoulos et al. 2021,
    where sets are never empty; :func:`prediction_sets` then also always keeps it).

    Ties between equal probabilities are ranked by class index (stable sort).

    Args:
        probs: predictive probabilities ``(N, K)`` (e.g. ``mc_predict`` of a
            categorical model).
        score: ``"lac"``, ``"aps"`` or ``"raps"``.
        randomized: APS/RAPS: draw ``u`` (exact coverage) or use ``u = 1`` (conservative).
        lam, k_reg: RAPS penalty per rank beyond ``k_reg`` (ignored by LAC/APS).
        seed: ``None``, an int or a ``numpy.random.Generator`` for ``u``.
        allow_empty: see above.
        u: explicit uniforms ``(N,)`` instead of drawing them (for tests and reproductions).

    Returns:
        float64 ``(N, K)``; the calibration score of example ``i`` is ``[i, y_i]``
        (:func:`label_scores`), and the prediction set is ``{k : s ≤ q̂}``.

    Example:
    >>> p = [[0.6, 0.3, 0.1]]
    >>> class_scores(p, "aps", randomized=False).round(3).tolist()
    [[0.6, 0.9, 1.0]]
    >>> class_scores(p, "aps", u=[0.5]).round(3).tolist()               # ρ + u π
    [[0.3, 0.75, 0.95]]
    >>> class_scores(p, "raps", randomized=False, lam=0.5, k_reg=1).round(3).tolist()
    [[0.6, 1.4, 2.0]]
    >>> class_scores(p, "lac").round(3).tolist()
    [[0.4, 0.7, 0.9]]
    """
    fn = "class_scores"
    lam, k_reg = _check_score_args(fn, score, lam, k_reg)
    p = validate_probs(fn, probs)
    n, k = p.shape
    if score == "lac":
        return 1.0 - p
    order = np.argsort(-p, axis=1, kind="stable")  # classes by decreasing probability
    ranks = np.empty_like(order)
    # 0-based rank of each class
    np.put_along_axis(ranks, order, np.arange(k)[None, :].repeat(n, axis=0), axis=1)
    sorted_p = np.take_along_axis(p, order, axis=1)
    above = np.cumsum(sorted_p, axis=1) - sorted_p  # ρ: mass strictly above, in sorted order
    rho = np.take_along_axis(above, ranks, axis=1)
    if randomized:
        if u is None:
            u = _uniforms(fn, seed, n)
        u = _float_array(fn, "u", u)
        if u.shape != (n,) or np.any((u < 0) | (u > 1)):
            raise ValueError(f"{fn}: `u` must have shape ({n},) with values in [0, 1], got shape {u.shape}.")
        uu = np.repeat(u[:, None], k, axis=1)
        if not allow_empty:
            uu[ranks == 0] = 1.0
    else:
        uu = np.ones_like(p)
    s = rho + uu * p
    if score == "raps":
        s = s + lam * np.maximum(0, ranks + 1 - k_reg)
    return s


def label_scores(scores, labels) -> np.ndarray:
    """Calibration scores ``s_i = scores[i, y_i]`` from :func:`class_scores` and integer labels.

    Example:
    >>> label_scores([[0.1, 0.9], [0.5, 0.7]], [1, 0]).tolist()
    [0.9, 0.5]
    """
    fn = "label_scores"
    s = _float_array(fn, "scores", scores)
    if s.ndim != 2:
        raise ValueError(f"{fn}: `scores` must have shape (num_examples, num_classes), got shape {s.shape}.")
    y = validate_labels(fn, labels, s.shape[0], s.shape[1])
    return s[np.arange(len(y)), y]


def prediction_sets(scores, q, probs=None, include_last: bool = False) -> np.ndarray:
    """Prediction sets ``{k : s(x_i, k) ≤ q̂}`` as a boolean mask ``(N, K)``.

    Args:
        scores: :func:`class_scores` of the test examples ``(N, K)``.
        q: the conformal quantile of the calibration scores.
        probs: when given (``allow_empty=False``), the most probable class is
            always included.
        include_last: also include the lowest-scoring class left out (for
            non-randomised APS/RAPS: the class whose cumulative mass crosses
            ``q̂``). This is the non-randomised set of the published algorithms
            (Romano et al. 2020, Eq. 5; Angelopoulos et al. 2021, Algorithm 2,
            without the randomised removal): valid but conservative (coverage
            above ``1 − α + 1/(n+1)``); the default ``False`` gives the plain
            split-conformal set of the score.

    Example:
    >>> prediction_sets([[0.3, 0.75, 0.95]], 0.8).tolist()
    [[True, True, False]]
    >>> prediction_sets([[0.6, 0.9, 1.0]], 0.8, include_last=True).tolist()
    [[True, True, False]]
    """
    s = _float_array("prediction_sets", "scores", scores)
    sets = s <= q
    if include_last:
        outside = np.where(sets, np.inf, s)
        nxt = np.argmin(outside, axis=1)
        rows = np.flatnonzero(~sets.all(axis=1))
        sets[rows, nxt[rows]] = True
    if probs is not None:
        top = np.argmax(validate_probs("prediction_sets", probs), axis=1)
        sets[np.arange(len(sets)), top] = True
    return sets


# --------------------------------------------------------------------------- metrics
def interval_covered(y, lower, upper) -> np.ndarray:
    """Boolean ``lower ≤ y ≤ upper`` per target (its mean is the empirical coverage).

    Example:
    >>> interval_covered([0.0, 2.0], [-1.0, -1.0], [1.0, 1.0]).tolist()
    [True, False]
    """
    fn = "interval_covered"
    y, lo, hi = _float_array(fn, "y", y), _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("y", "lower", "upper"), (y, lo, hi))
    return (y >= lo) & (y <= hi)


def set_covered(sets, labels) -> np.ndarray:
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


def mean_width(lower, upper) -> float:
    """Mean interval width ``mean(u − l)``.

    Example:
    >>> mean_width([0.0, 0.0], [1.0, 3.0])
    2.0
    """
    fn = "mean_width"
    lo, hi = _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("lower", "upper"), (lo, hi))
    return float(np.mean(hi - lo))


def mean_set_size(sets) -> float:
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
    count: np.ndarray  #: examples per group
    worst: float  #: the lowest per-group coverage


def coverage_by_group(covered, groups) -> GroupCoverage:
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


def quantile_groups(values, num_groups: int = 10) -> np.ndarray:
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


# --------------------------------------------------------------------------- wrappers
class _RegressionSummary(NamedTuple):
    mean: np.ndarray
    sd: np.ndarray
    quantile: Any  # q -> array like mean


def _summarize(fn: str, pred) -> _RegressionSummary:
    """Mean, sd and a quantile function of a regression predictive.

    ``pred`` is a :class:`bayesflip.heads.RegressionPredictive` (mixture moments and
    quantiles), or MC draws of point predictions ``(T, N, ...)`` (sample mean,
    sample sd, empirical quantiles).
    """
    if hasattr(pred, "total_variance") and hasattr(pred, "quantile"):
        mean = np.asarray(pred.mean, np.float64)
        return _RegressionSummary(mean, np.sqrt(np.asarray(pred.total_variance, np.float64)), pred.quantile)
    draws = _float_array(fn, "predictive draws", pred)
    if draws.ndim < 2 or draws.shape[0] < 2:
        raise ValueError(
            f"{fn}: expected a RegressionPredictive or MC draws (num_samples >= 2, N, ...), "
            f"got shape {draws.shape}."
        )
    return _RegressionSummary(draws.mean(0), draws.std(0), lambda q: np.quantile(draws, q, axis=0))


class ConformalRegressor:
    """Calibrate-then-predict conformal intervals around a (Bayesian) regression model.

    ``fit(x_cal, y_cal)`` runs :func:`bayesflip.uncertainty.mc_predict` on held-out
    calibration data and stores the scores; ``predict(x, alpha)`` returns intervals
    with marginal coverage ``≥ 1 − alpha`` for test data exchangeable with the
    calibration data. ``fit_predictive`` / ``predict_predictive`` do the same from
    predictives you computed yourself.

    Args:
        model: a Keras model; ideally ending in :class:`bayesflip.heads.GaussianHead`
            or ``StudentTHead`` (``mc_predict`` then gives the mixture predictive),
            otherwise any model whose output is the point prediction (the MC draws'
            mean, sd and empirical quantiles are used). ``None`` to use only the
            ``*_predictive`` methods.
        score: ``"normalized"`` (``|y − μ|/σ``, σ the predictive sd: adaptive),
            ``"absolute"`` (``|y − μ|``: constant width) or ``"cqr"`` (scores
            against the predictive's ``α/2``, ``1 − α/2`` quantiles; recomputed
            for each ``alpha`` from the stored calibration predictive).
        num_samples, batch_size: passed to ``mc_predict``.

    Targets ``y`` have the shape of the predictive mean ``(N, units)``, or ``(N,)``
    for one unit; each unit gets its own quantile.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> draws = rng.normal(size=(16, 200, 1))             # MC draws of point predictions (T, N, 1)
    >>> y = rng.normal(size=200)
    >>> cr = ConformalRegressor(score="absolute").fit_predictive(draws[:, :100], y[:100])
    >>> lo, hi = cr.predict_predictive(draws[:, 100:], alpha=0.2)
    >>> lo.shape, bool(np.all(hi - lo > 0))
    ((100,), True)
    """

    def __init__(
        self, model=None, score: str = "normalized", num_samples: int = 32, batch_size: int | None = None
    ):
        fn = "ConformalRegressor"
        if score not in REGRESSION_SCORES:
            raise ValueError(f"{fn}: `score` must be one of {list(REGRESSION_SCORES)}, got {score!r}.")
        self.model, self.score = model, score
        self.num_samples = check_positive_int(fn, "num_samples", num_samples)
        self.batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
        self._cal = None

    def _predictive(self, fn, x):
        if self.model is None:
            raise ValueError(f"{fn}: no model was given; use fit_predictive / predict_predictive instead.")
        from bayesflip.uncertainty import mc_predict

        out = mc_predict(self.model, x, num_samples=self.num_samples, batch_size=self.batch_size,
                         return_samples=True)
        return out

    def fit(self, x, y) -> "ConformalRegressor":
        """Calibrate on held-out ``(x, y)`` (not the training data). Returns ``self``."""
        return self.fit_predictive(self._predictive("ConformalRegressor.fit", x), y)

    def fit_predictive(self, predictive, y) -> "ConformalRegressor":
        """Calibrate from the predictive of the calibration inputs (RegressionPredictive or draws).

        Returns ``self``.
        """
        fn = "ConformalRegressor.fit"
        summary = _summarize(fn, predictive)
        y = _float_array(fn, "y", y)
        self._squeeze = y.shape != summary.mean.shape and y.shape + (1,) == summary.mean.shape
        if self._squeeze:
            y = y[..., None]
        _same_shape(fn, ("y", "the predictive mean"), (y, summary.mean))
        if self.score == "normalized":
            scores = normalized_residual_score(y, summary.mean, summary.sd)
        elif self.score == "absolute":
            scores = absolute_residual_score(y, summary.mean)
        else:
            scores = None  # CQR: depends on alpha, computed in quantile()
        self._cal = (summary, y, scores)
        self._cache: dict[float, Any] = {}
        return self

    @property
    def num_calibration(self) -> int:
        """Number of calibration examples (0 before ``fit``)."""
        return 0 if self._cal is None else int(self._cal[1].shape[0])

    def _base_interval(self, summary: _RegressionSummary, alpha: float):
        return summary.quantile(alpha / 2), summary.quantile(1 - alpha / 2)

    def quantile(self, alpha: float = 0.1):
        """The calibrated ``q̂`` for ``alpha``: a float for ``(N,)`` targets, else one per output unit."""
        fn = "ConformalRegressor.quantile"
        alpha = check_alpha(fn, alpha)
        if self._cal is None:
            raise ValueError(f"{fn}: call fit(x_cal, y_cal) first.")
        if alpha not in self._cache:
            summary, y, scores = self._cal
            if scores is None:
                scores = cqr_score(y, *self._base_interval(summary, alpha))
            n = len(y)
            if _rank(alpha, n) > n:
                raise ValueError(
                    f"{fn}: {n} calibration points are too few for alpha={alpha!r}; it needs at least "
                    f"{min_calibration_size(alpha)} (calibrate on more data or use a larger alpha)."
                )
            q = conformal_quantile(scores, alpha)
            self._cache[alpha] = float(np.reshape(q, -1)[0]) if self._squeeze else q
        return self._cache[alpha]

    def predict(self, x, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval ``(lower, upper)`` for inputs ``x`` at miscoverage ``alpha``."""
        return self.predict_predictive(self._predictive("ConformalRegressor.predict", x), alpha)

    def predict_predictive(self, predictive, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval from a predictive of the test inputs (as ``fit_predictive``)."""
        fn = "ConformalRegressor.predict"
        q = self.quantile(alpha)
        summary = _summarize(fn, predictive)
        cal_shape = self._cal[0].mean.shape[1:]
        if summary.mean.shape[1:] != cal_shape:
            raise ValueError(
                f"{fn}: the predictive has per-example shape {summary.mean.shape[1:]}, "
                f"but calibration had {cal_shape}."
            )
        if self.score == "normalized":
            lo, hi = normalized_interval(summary.mean, summary.sd, q)
        elif self.score == "absolute":
            lo, hi = absolute_residual_interval(summary.mean, q)
        else:
            lo, hi = cqr_interval(*self._base_interval(summary, alpha), q)
        if self._squeeze:
            lo, hi = lo[..., 0], hi[..., 0]
        return lo, hi


class ConformalClassifier:
    """Calibrate-then-predict conformal prediction sets around a (Bayesian) classifier.

    ``fit(x_cal, labels)`` runs :func:`bayesflip.uncertainty.mc_predict` (MC-averaged
    probabilities) on held-out calibration data and stores the label scores;
    ``predict(x, alpha)`` returns a boolean mask ``(N, K)`` of sets with marginal
    coverage ``≥ 1 − alpha``.

    Args:
        model: a Keras model outputting probabilities or ending in
            :class:`bayesflip.heads.CategoricalHead`; a model that outputs logits
            without a head needs ``from_logits=True``. ``None`` to use only the
            ``*_predictive`` methods (pass probabilities).
        score: ``"lac"``, ``"aps"`` or ``"raps"`` (:func:`class_scores`).
        randomized, lam, k_reg, allow_empty: see :func:`class_scores`.
        include_last: non-randomised APS/RAPS only: the published (conservative)
            set that also keeps the class crossing ``q̂`` (:func:`prediction_sets`).
        seed: seeds the ``numpy.random.Generator`` that draws the randomisation
            ``u`` for calibration and then for every ``predict`` call in turn.
        num_samples, batch_size, from_logits: passed to ``mc_predict``.

    Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> probs = rng.dirichlet(np.ones(4), size=300)
    >>> labels = np.array([rng.choice(4, p=p) for p in probs])
    >>> cc = ConformalClassifier(score="aps", seed=0).fit_predictive(probs[:200], labels[:200])
    >>> sets = cc.predict_predictive(probs[200:], alpha=0.1)
    >>> sets.shape, sets.dtype
    ((100, 4), dtype('bool'))
    """

    def __init__(
        self,
        model=None,
        score: str = "aps",
        randomized: bool = True,
        lam: float = 0.01,
        k_reg: int = 1,
        allow_empty: bool = True,
        include_last: bool = False,
        seed: int | None = None,
        num_samples: int = 32,
        batch_size: int | None = None,
        from_logits: bool = False,
    ):
        fn = "ConformalClassifier"
        self.lam, self.k_reg = _check_score_args(fn, score, lam, k_reg)
        self.model, self.score = model, score
        self.randomized, self.allow_empty = bool(randomized), bool(allow_empty)
        self.include_last = bool(include_last) and not self.randomized and score != "lac"
        self.num_samples = check_positive_int(fn, "num_samples", num_samples)
        self.batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
        self.from_logits = bool(from_logits)
        _uniforms(fn, seed, 0)  # validates the seed
        self.seed = seed
        self._rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self._scores = None

    def _probs(self, fn, x):
        if self.model is None:
            raise ValueError(f"{fn}: no model was given; use fit_predictive / predict_predictive instead.")
        from bayesflip.uncertainty import mc_predict

        return mc_predict(self.model, x, num_samples=self.num_samples, batch_size=self.batch_size,
                          from_logits=self.from_logits)

    def _class_scores(self, fn, probs):
        return class_scores(probs, self.score, self.randomized, self.lam, self.k_reg, seed=self._rng,
                            allow_empty=self.allow_empty)

    def fit(self, x, labels) -> "ConformalClassifier":
        """Calibrate on held-out ``(x, labels)`` (integer labels). Returns ``self``."""
        return self.fit_predictive(self._probs("ConformalClassifier.fit", x), labels)

    def fit_predictive(self, probs, labels) -> "ConformalClassifier":
        """Calibrate from predictive probabilities ``(n, K)`` of the calibration inputs."""
        fn = "ConformalClassifier.fit"
        p = validate_probs(fn, probs)
        y = validate_labels(fn, labels, p.shape[0], p.shape[1])
        self._scores = label_scores(self._class_scores(fn, p), y)
        self.num_classes = p.shape[1]
        return self

    @property
    def num_calibration(self) -> int:
        """Number of calibration examples (0 before ``fit``)."""
        return 0 if self._scores is None else len(self._scores)

    def quantile(self, alpha: float = 0.1) -> float:
        """The calibrated threshold ``q̂`` for ``alpha``."""
        fn = "ConformalClassifier.quantile"
        alpha = check_alpha(fn, alpha)
        if self._scores is None:
            raise ValueError(f"{fn}: call fit(x_cal, labels) first.")
        return conformal_quantile(self._scores, alpha)

    def predict(self, x, alpha: float = 0.1) -> np.ndarray:
        """Prediction sets (boolean mask ``(N, K)``) for inputs ``x`` at miscoverage ``alpha``."""
        return self.predict_predictive(self._probs("ConformalClassifier.predict", x), alpha)

    def predict_predictive(self, probs, alpha: float = 0.1) -> np.ndarray:
        """Prediction sets from predictive probabilities ``(N, K)`` of the test inputs."""
        fn = "ConformalClassifier.predict"
        q = self.quantile(alpha)
        p = validate_probs(fn, probs)
        if p.shape[1] != self.num_classes:
            raise ValueError(
                f"{fn}: expected probabilities over {self.num_classes} classes, got shape {p.shape}."
            )
        keep_top = self.score != "lac" and self.randomized and not self.allow_empty
        return prediction_sets(self._class_scores(fn, p), q, probs=p if keep_top else None,
                               include_last=self.include_last)

"""Conformal regression: nonconformity scores, intervals and :class:`ConformalRegressor`."""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import numpy as np

from bayesflip._checks import check_positive_int
from bayesflip._typing import ArrayLike
from bayesflip.conformal._core import (
    _float_array,
    _rank,
    _same_shape,
    check_alpha,
    conformal_quantile,
    min_calibration_size,
)

#: Nonconformity scores of :class:`ConformalRegressor` (``score=``), defined in the table of
#: :mod:`bayesflip.conformal`.
REGRESSION_SCORES = ("normalized", "absolute", "cqr")


# --------------------------------------------------------------------------- regression
def absolute_residual_score(y: ArrayLike, mean: ArrayLike) -> np.ndarray:
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


def normalized_residual_score(y: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> np.ndarray:
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


def cqr_score(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
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


def absolute_residual_interval(mean: ArrayLike, q: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[μ − q̂, μ + q̂]`` (the interval of :func:`absolute_residual_score`).

    Example:
    >>> [a.tolist() for a in absolute_residual_interval([0.0, 1.0], 0.5)]
    [[-0.5, 0.5], [0.5, 1.5]]
    """
    mu = _float_array("absolute_residual_interval", "mean", mean)
    return mu - q, mu + q


def normalized_interval(
    mean: ArrayLike, sd: ArrayLike, q: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``[μ − q̂ σ, μ + q̂ σ]`` (the interval of :func:`normalized_residual_score`).

    Example:
    >>> [a.tolist() for a in normalized_interval([0.0, 1.0], [1.0, 2.0], 1.5)]
    [[-1.5, -2.0], [1.5, 4.0]]
    """
    fn = "normalized_interval"
    mu, sd = _float_array(fn, "mean", mean), _float_array(fn, "sd", sd)
    _same_shape(fn, ("mean", "sd"), (mu, sd))
    return mu - q * sd, mu + q * sd


def cqr_interval(lower: ArrayLike, upper: ArrayLike, q: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[l − q̂, u + q̂]`` (the interval of :func:`cqr_score`; ``q̂ < 0`` shrinks it).

    Example:
    >>> [a.tolist() for a in cqr_interval([-1.0], [1.0], -0.25)]
    [[-0.75], [0.75]]
    """
    fn = "cqr_interval"
    lo, hi = _float_array(fn, "lower", lower), _float_array(fn, "upper", upper)
    _same_shape(fn, ("lower", "upper"), (lo, hi))
    return lo - q, np.maximum(hi + q, lo - q)


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
        self,
        model: keras.layers.Layer | None = None,
        score: str = "normalized",
        num_samples: int = 32,
        batch_size: int | None = None,
    ) -> None:
        fn = "ConformalRegressor"
        if score not in REGRESSION_SCORES:
            raise ValueError(f"{fn}: `score` must be one of {list(REGRESSION_SCORES)}, got {score!r}.")
        self.model, self.score = model, score
        self.num_samples = check_positive_int(fn, "num_samples", num_samples)
        self.batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
        self._cal: tuple[_RegressionSummary, np.ndarray, np.ndarray | None] | None = None

    def _predictive(self, fn, x):
        if self.model is None:
            raise ValueError(f"{fn}: no model was given; use fit_predictive / predict_predictive instead.")
        from bayesflip.uncertainty import mc_predict

        out = mc_predict(
            self.model, x, num_samples=self.num_samples, batch_size=self.batch_size, return_samples=True
        )
        return out

    def fit(self, x: Any, y: ArrayLike) -> ConformalRegressor:
        """Calibrate on held-out ``(x, y)`` (not the training data). Returns ``self``."""
        return self.fit_predictive(self._predictive("ConformalRegressor.fit", x), y)

    def fit_predictive(self, predictive: Any, y: ArrayLike) -> ConformalRegressor:
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

    def _base_interval(self, summary: _RegressionSummary, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        return summary.quantile(alpha / 2), summary.quantile(1 - alpha / 2)

    def quantile(self, alpha: float = 0.1) -> float | np.ndarray:
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

    def predict(self, x: Any, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval ``(lower, upper)`` for inputs ``x`` at miscoverage ``alpha``."""
        return self.predict_predictive(self._predictive("ConformalRegressor.predict", x), alpha)

    def predict_predictive(self, predictive: Any, alpha: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Conformal interval from a predictive of the test inputs (as ``fit_predictive``)."""
        fn = "ConformalRegressor.predict"
        q = self.quantile(alpha)
        assert self._cal is not None  # quantile() raised otherwise
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

"""Calibration of regression predictives: quantile calibration (PIT) and interval coverage."""

from __future__ import annotations

import numpy as np

from bayesflip._checks import check_positive_int
from bayesflip._typing import ArrayLike
from bayesflip.calibration._inputs import _to_numpy


def _default_levels(fn: str, num_levels) -> np.ndarray:
    num_levels = check_positive_int(fn, "num_levels", num_levels)
    return (np.arange(num_levels) + 0.5) / num_levels


def _pit(fn, y_true, mean, scale, pit):
    from bayesflip.uncertainty import predictive_cdf  # local import: uncertainty imports no calibration

    if pit is not None:
        if y_true is not None or mean is not None or scale is not None:
            raise ValueError(f"{fn}: pass either `pit` or (`y_true`, `mean`, `scale`), not both.")
        values = _to_numpy(fn, "pit", pit).astype(np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"{fn}: got an empty input (`pit` has no values).")
        if np.any((values < 0) | (values > 1)) or not np.all(np.isfinite(values)):
            raise ValueError(f"{fn}: `pit` values must lie in [0, 1].")
        return values
    if y_true is None or mean is None or scale is None:
        raise ValueError(f"{fn}: pass `y_true`, `mean` and `scale` (or precomputed `pit`).")
    return np.asarray(predictive_cdf(y_true, mean, scale)).reshape(-1)


def quantile_calibration_curve(
    y_true: ArrayLike | None = None,
    mean: ArrayLike | None = None,
    scale: ArrayLike | None = None,
    *,
    pit: ArrayLike | None = None,
    num_levels: int = 20,
    levels: ArrayLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected vs observed quantile levels of a regression predictive (Kuleshov et al. 2018).

    For each level ``p_j`` the observed frequency is ``p̂_j = mean_t [F_t(y_t) ≤ p_j]``
    where ``F_t`` is the predictive CDF (a Gaussian, or an equal-weight mixture of
    Gaussians when ``mean``/``scale`` carry a leading sample axis; see
    :func:`bayesflip.uncertainty.predictive_cdf`). A calibrated predictive has
    ``p̂_j ≈ p_j``.

    Args:
        y_true: targets, shape ``(N, ...)``.
        mean, scale: predictive means/standard deviations, shape of ``y_true`` or
            ``(S, *y_true.shape)`` for ``S`` posterior samples.
        pit: alternatively, precomputed values ``F_t(y_t)`` in ``[0, 1]``.
        num_levels: number of levels ``(j + 0.5) / num_levels`` when ``levels`` is None.
        levels: explicit levels in ``(0, 1)``.

    Returns:
        ``(levels, observed)`` as NumPy arrays.

    Example:
    >>> lv, obs = quantile_calibration_curve(pit=[0.1, 0.4, 0.6, 0.9], levels=[0.5])
    >>> obs.tolist()
    [0.5]
    """
    fn = "quantile_calibration_curve"
    values = _pit(fn, y_true, mean, scale, pit)
    lv = _levels(fn, num_levels, levels)
    observed = np.mean(values[None, :] <= lv[:, None], axis=1)
    return lv, observed


def _levels(fn, num_levels, levels):
    if levels is None:
        return _default_levels(fn, num_levels)
    lv = _to_numpy(fn, "levels", levels).astype(np.float64).reshape(-1)
    if lv.size == 0 or np.any((lv <= 0) | (lv >= 1)):
        raise ValueError(f"{fn}: `levels` must be a non-empty list of values in (0, 1), got {lv.tolist()}.")
    return lv


def quantile_calibration_error(
    y_true: ArrayLike | None = None,
    mean: ArrayLike | None = None,
    scale: ArrayLike | None = None,
    *,
    pit: ArrayLike | None = None,
    num_levels: int = 20,
    levels: ArrayLike | None = None,
) -> float:
    """Calibration error of predictive quantiles (Kuleshov et al. 2018).

    ``cal = (1/m) Σ_j (p_j − p̂_j)²`` over ``m`` levels ``p_j`` (Kuleshov's
    ``Σ_j w_j (p_j − p̂_j)²`` with weights ``w_j = 1/m``), where ``p̂_j`` is the
    fraction of targets whose predictive CDF value is ``≤ p_j``; see
    :func:`quantile_calibration_curve`.

    Args:
        y_true, mean, scale, pit, num_levels, levels: as in
            :func:`quantile_calibration_curve`.

    Returns:
        The mean squared gap between expected and observed levels (float).

    Example:
    >>> round(quantile_calibration_error(pit=[0.1, 0.4, 0.6, 0.9], levels=[0.25, 0.5]), 6)
    0.0
    """
    lv, observed = quantile_calibration_curve(
        y_true, mean, scale, pit=pit, num_levels=num_levels, levels=levels
    )
    return float(np.mean((lv - observed) ** 2))


def interval_coverage(y_true: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Fraction of targets inside their prediction interval ``[lower, upper]``.

    Args:
        y_true: targets, any shape.
        lower, upper: interval bounds, same shape as ``y_true``, ``lower <= upper``.

    Returns:
        The empirical coverage in ``[0, 1]``.

    Example:
    >>> interval_coverage([0.0, 2.0], [-1.0, -1.0], [1.0, 1.0])
    0.5
    """
    fn = "interval_coverage"
    y = _to_numpy(fn, "y_true", y_true).astype(np.float64)
    lo = _to_numpy(fn, "lower", lower).astype(np.float64)
    hi = _to_numpy(fn, "upper", upper).astype(np.float64)
    if y.size == 0:
        raise ValueError(f"{fn}: got an empty input (`y_true` has shape {y.shape}).")
    if lo.shape != y.shape or hi.shape != y.shape:
        raise ValueError(
            f"{fn}: `lower` and `upper` must have the shape of `y_true` {y.shape}, got {lo.shape} and {hi.shape}."
        )
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"{fn}: `y_true`, `lower` and `upper` must be finite, got NaN or infinite values.")
    if np.any(lo > hi):
        raise ValueError(f"{fn}: every `lower` bound must be <= its `upper` bound.")
    return float(np.mean((y >= lo) & (y <= hi)))

"""Uncertainty of regression predictives: variance decomposition, CDF and intervals.

With ``S`` posterior draws of a Gaussian head the predictive is the equal-weight
mixture ``(1/S) Σ_s N(μ_s, σ_s²)``; these functions summarise it with the shared
predictive math (``bayesflip._predictive_core``) and SciPy.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import special

from bayesflip._checks import check_real
from bayesflip._predictive_core import RegressionPredictive, mixture_quantile
from bayesflip._typing import ArrayLike


def _regression_inputs(fn, sample_means, sample_scales):
    mu = np.asarray(sample_means.numpy() if tf.is_tensor(sample_means) else sample_means, dtype=np.float64)
    sd = np.asarray(sample_scales.numpy() if tf.is_tensor(sample_scales) else sample_scales, dtype=np.float64)
    if mu.shape != sd.shape:
        raise ValueError(
            f"{fn}: `sample_means` and `sample_scales` must have the same shape, got {mu.shape} and {sd.shape}."
        )
    if mu.ndim < 2:
        raise ValueError(
            f"{fn}: expected a leading sample axis, shape (num_samples, N, ...), got shape {mu.shape}."
        )
    if mu.size == 0:
        raise ValueError(f"{fn}: got an empty input (shape {mu.shape}).")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sd))):
        raise ValueError(f"{fn}: inputs contain NaN or infinite values.")
    if np.any(sd < 0):
        raise ValueError(
            f"{fn}: `sample_scales` must be >= 0 (standard deviations), got a minimum of {sd.min():.4g}."
        )
    return mu, sd


def regression_uncertainty(sample_means: ArrayLike, sample_scales: ArrayLike) -> RegressionPredictive:
    """Total, aleatoric and epistemic variance from per-sample mean and scale heads.

    With ``S`` posterior draws of a heteroscedastic Gaussian head ``N(μ_s, σ_s²)``
    the predictive is the mixture ``(1/S) Σ_s N(μ_s, σ_s²)``, whose variance is
    ``E_s σ_s² + Var_s μ_s`` (law of total variance).

    Args:
        sample_means: ``(S, N, ...)`` per-draw predicted means.
        sample_scales: ``(S, N, ...)`` per-draw predicted standard deviations (>= 0).

    Returns:
        A :class:`RegressionPredictive`: arrays of shape ``(N, ...)``, and the
        draws ``[μ_s, σ_s]`` stacked on a last axis in ``samples`` (so
        ``.quantile`` and ``.interval`` work on it).

    Example:
    >>> u = regression_uncertainty([[0.0], [2.0]], [[1.0], [1.0]])
    >>> u.mean.tolist(), u.aleatoric_variance.tolist(), u.epistemic_variance.tolist(), u.total_variance.tolist()
    ([1.0], [1.0], [1.0], [2.0])
    """
    mu, sd = _regression_inputs("regression_uncertainty", sample_means, sample_scales)
    return RegressionPredictive.from_draws(np.stack([mu, sd], axis=-1))


def predictive_cdf(y: ArrayLike, mean: ArrayLike, scale: ArrayLike) -> np.ndarray:
    """CDF of the Gaussian (mixture) predictive at ``y`` (the probability integral transform).

    Args:
        y: targets ``(N, ...)``.
        mean, scale: Gaussian parameters of the shape of ``y``, or with a leading
            sample axis ``(S, *y.shape)`` for the equal-weight mixture of ``S``
            posterior draws.

    Returns:
        ``F(y)`` in ``[0, 1]``, shape of ``y``.

    Example:
    >>> predictive_cdf([0.0, 1.0], [0.0, 0.0], [1.0, 1.0]).round(4).tolist()
    [0.5, 0.8413]
    """
    fn = "predictive_cdf"
    yv = np.asarray(y.numpy() if tf.is_tensor(y) else y, dtype=np.float64)
    mu = np.asarray(mean.numpy() if tf.is_tensor(mean) else mean, dtype=np.float64)
    sd = np.asarray(scale.numpy() if tf.is_tensor(scale) else scale, dtype=np.float64)
    if yv.size == 0:
        raise ValueError(f"{fn}: got an empty input (`y` has shape {yv.shape}).")
    if mu.shape != sd.shape:
        raise ValueError(f"{fn}: `mean` and `scale` must have the same shape, got {mu.shape} and {sd.shape}.")
    if mu.shape == yv.shape:
        mu, sd = mu[None], sd[None]
    elif mu.shape[1:] != yv.shape:
        raise ValueError(
            f"{fn}: `mean`/`scale` must have the shape of `y` {yv.shape} or (num_samples, *{yv.shape}), "
            f"got {mu.shape}."
        )
    if np.any(sd <= 0):
        raise ValueError(f"{fn}: `scale` must be > 0, got a minimum of {sd.min():.4g}.")
    return np.mean(special.ndtr((yv[None] - mu) / sd), axis=0)


def prediction_interval(
    sample_means: ArrayLike, sample_scales: ArrayLike, level: float = 0.95, method: str = "mixture"
) -> tuple[np.ndarray, np.ndarray]:
    """Central prediction interval of the Gaussian-mixture predictive.

    Args:
        sample_means: ``(S, N, ...)`` per-draw means (``S = 1`` for one Gaussian).
        sample_scales: ``(S, N, ...)`` per-draw standard deviations (> 0).
        level: coverage probability in ``(0, 1)``.
        method: ``"mixture"`` (exact quantiles of the mixture, by bisection to
            1e-10 relative width) or ``"gaussian"`` (a Gaussian with the
            mixture's mean and total variance).

    Returns:
        ``(lower, upper)`` arrays of shape ``(N, ...)``: the ``(1 − level)/2``
        and ``(1 + level)/2`` quantiles.

    Example:
    >>> lo, hi = prediction_interval([[0.0]], [[1.0]], level=0.95)
    >>> round(float(lo[0]), 3), round(float(hi[0]), 3)
    (-1.96, 1.96)
    """
    fn = "prediction_interval"
    level = check_real(fn, "level", level, low=0, high=1)
    if method not in ("mixture", "gaussian"):
        raise ValueError(f"{fn}: `method` must be 'mixture' or 'gaussian', got {method!r}.")
    mu, sd = _regression_inputs(fn, sample_means, sample_scales)
    if np.any(sd <= 0):
        raise ValueError(f"{fn}: `sample_scales` must be > 0, got a minimum of {sd.min():.4g}.")
    qs = ((1 - level) / 2, (1 + level) / 2)
    if method == "gaussian":
        u = regression_uncertainty(mu, sd)
        z = special.ndtri(qs[1])
        half = z * np.sqrt(u.total_variance)
        return u.mean - half, u.mean + half
    return mixture_quantile(mu, sd, qs[0]), mixture_quantile(mu, sd, qs[1])

"""Proper scoring rules of classification: Brier score (and its decomposition), NLL.

``brier_per_example`` and ``nll_per_example`` are TensorFlow ops shared with the
streaming metrics of :mod:`bayesflip.calibration.streaming`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from bayesflip._checks import looks_like_probabilities, warn_probabilities_as_logits
from bayesflip._typing import ArrayLike
from bayesflip.calibration._binned import equal_width_bin_index
from bayesflip.calibration._inputs import _check_matrix, _validate, check_num_bins, validate_labels

_LOG_CLIP = 1e-12


def brier_per_example(labels: ArrayLike, probs: ArrayLike) -> tf.Tensor:
    """``Σ_k (p_ik − onehot_ik)²`` per example (TF, float64)."""
    probs = tf.cast(probs, tf.float64)
    onehot = tf.one_hot(tf.cast(labels, tf.int64), tf.shape(probs)[-1], dtype=tf.float64)
    return tf.reduce_sum(tf.square(probs - onehot), axis=-1)


def brier_score(labels: ArrayLike, probs: ArrayLike, from_logits: bool = False) -> float:
    """Multiclass Brier score ``mean_i Σ_k (p_ik − [y_i = k])²`` (in ``[0, 2]``).

    This is Brier's (1950) original multiclass score. For two classes it is
    twice scikit-learn's binary ``brier_score_loss(y, p[:, 1])``.

    Args:
        labels: integer class labels ``(N,)`` (``(N, 1)`` or one-hot also accepted).
        probs: probabilities ``(N, K)`` or logits with ``from_logits=True``.
        from_logits: whether ``probs`` holds logits.

    Returns:
        The Brier score (float).

    Example:
    >>> round(brier_score([0, 1], [[0.8, 0.2], [0.4, 0.6]]), 6)
    0.2
    """
    y, p = _validate("brier_score", labels, probs, from_logits)
    return float(tf.reduce_mean(brier_per_example(y, p)))


def nll_per_example(labels: ArrayLike, probs: ArrayLike, from_logits: bool = False) -> tf.Tensor:
    """``−log p_{i, y_i}`` per example (TF, float64)."""
    probs = tf.cast(probs, tf.float64)
    logp = tf.nn.log_softmax(probs, axis=-1) if from_logits else tf.math.log(tf.maximum(probs, _LOG_CLIP))
    idx = tf.cast(tf.reshape(labels, [-1, 1]), tf.int64)
    return -tf.gather(logp, idx, axis=-1, batch_dims=1)[:, 0]


def negative_log_likelihood(labels: ArrayLike, probs: ArrayLike, from_logits: bool = False) -> float:
    """Mean negative log-likelihood ``mean_i −log p_{i, y_i}`` (natural log).

    Args:
        labels: integer class labels ``(N,)`` (``(N, 1)`` or one-hot also accepted).
        probs: probabilities ``(N, K)`` (clipped below at 1e-12), or logits with
            ``from_logits=True`` (then computed with a stable log-softmax).
        from_logits: whether ``probs`` holds logits.

    Returns:
        The mean NLL in nats (float).

    Example:
    >>> round(negative_log_likelihood([0, 1], [[0.5, 0.5], [0.5, 0.5]]), 6)
    0.693147
    """
    fn = "negative_log_likelihood"
    if from_logits:
        logits = _check_matrix(fn, "logits", probs)
        if looks_like_probabilities(logits):
            warn_probabilities_as_logits(fn, "the `probs` passed as logits")
        y = validate_labels(fn, labels, logits.shape[0], logits.shape[1])
        return float(tf.reduce_mean(nll_per_example(y, logits, from_logits=True)))
    y, p = _validate(fn, labels, probs, False)
    return float(tf.reduce_mean(nll_per_example(y, p)))


class BrierDecomposition(NamedTuple):
    """Terms of the Brier score decomposition; see :func:`brier_decomposition`."""

    brier: float
    reliability: float
    resolution: float
    uncertainty: float
    within_bin_variance: float
    within_bin_covariance: float


def brier_decomposition(
    labels: ArrayLike, probs: ArrayLike, num_bins: int | None = 10, from_logits: bool = False
) -> BrierDecomposition:
    """Murphy's decomposition of the multiclass Brier score, exact with binned forecasts.

    Forecasts are grouped (by default by predicted class and equal-width bin of
    the top-label confidence; with ``num_bins=None`` by identical probability
    vectors, Murphy 1973). With ``p̄_g``, ``ō_g`` the mean forecast and mean
    one-hot outcome of group ``g`` (``n_g`` members) and ``ō`` the overall
    outcome frequency:

    - reliability ``REL = Σ_g n_g/N ‖p̄_g − ō_g‖²`` (lower is better calibrated),
    - resolution ``RES = Σ_g n_g/N ‖ō_g − ō‖²``,
    - uncertainty ``UNC = 1 − Σ_k ō_k²``,
    - within-bin variance ``WBV = 1/N Σ_g Σ_{i∈g} ‖p_i − p̄_g‖²`` and
      covariance ``WBC = 1/N Σ_g Σ_{i∈g} (p_i − p̄_g)·(o_i − ō_g)``
      (Stephenson et al. 2008; both vanish when forecasts within a group agree),

    and ``brier = REL − RES + UNC + WBV − 2 WBC`` exactly.

    Args:
        labels: integer class labels ``(N,)`` (``(N, 1)`` or one-hot also accepted).
        probs: probabilities ``(N, K)`` or logits with ``from_logits=True``.
        num_bins: confidence bins per predicted class, or ``None`` to group
            identical forecasts.
        from_logits: whether ``probs`` holds logits.

    Returns:
        :class:`BrierDecomposition` (floats).

    Example:
    >>> d = brier_decomposition([0, 0, 1, 1], [[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.3, 0.7]], num_bins=None)
    >>> round(d.reliability - d.resolution + d.uncertainty, 6) == round(d.brier, 6)
    True
    """
    fn = "brier_decomposition"
    y, p = _validate(fn, labels, probs, from_logits)
    n, k = p.shape
    if num_bins is None:
        _, group = np.unique(p, axis=0, return_inverse=True)
        group = group.reshape(-1)
    else:
        num_bins = check_num_bins(fn, num_bins)
        conf_bin = np.asarray(equal_width_bin_index(tf.constant(p.max(axis=1)), num_bins))
        group = p.argmax(axis=1) * num_bins + conf_bin
    _, group = np.unique(group, return_inverse=True)
    num_groups = int(group.max()) + 1
    o = np.eye(k)[y]
    n_g = np.bincount(group, minlength=num_groups).astype(np.float64)
    p_bar = np.zeros((num_groups, k))
    o_bar = np.zeros((num_groups, k))
    np.add.at(p_bar, group, p)
    np.add.at(o_bar, group, o)
    p_bar /= n_g[:, None]
    o_bar /= n_g[:, None]
    o_all = o.mean(axis=0)
    brier = float(np.mean(np.sum((p - o) ** 2, axis=1)))
    rel = float(np.sum(n_g * np.sum((p_bar - o_bar) ** 2, axis=1)) / n)
    res = float(np.sum(n_g * np.sum((o_bar - o_all) ** 2, axis=1)) / n)
    unc = float(1.0 - np.sum(o_all**2))
    dp = p - p_bar[group]
    do = o - o_bar[group]
    wbv = float(np.sum(dp**2) / n)
    wbc = float(np.sum(dp * do) / n)
    return BrierDecomposition(brier, rel, res, unc, wbv, wbc)

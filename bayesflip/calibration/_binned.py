"""Binned calibration statistics and the ECE family (top-label and classwise).

The per-bin sums (:func:`top_label_stats`, :func:`classwise_stats`) and their
reduction (:func:`calibration_error_from_bins`) are TensorFlow ops shared with the
streaming metrics of :mod:`bayesflip.calibration.streaming`. The conventions are
stated in :mod:`bayesflip.calibration.metrics`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from bayesflip._typing import ArrayLike
from bayesflip.calibration._inputs import BINNINGS, NORMS, _check_choice, _validate, check_num_bins


# --------------------------------------------------------------------------- binned statistics (TF)
def equal_width_bin_index(confidences: tf.Tensor, num_bins: int) -> tf.Tensor:
    """Bin index of each confidence for ``num_bins`` bins ``(b/B, (b+1)/B]`` (int32)."""
    idx = tf.cast(tf.math.ceil(confidences * num_bins), tf.int32) - 1
    return tf.clip_by_value(idx, 0, num_bins - 1)


def binned_sums(
    confidences: ArrayLike,
    outcomes: ArrayLike,
    bin_index: ArrayLike,
    num_segments: int,
    weights: ArrayLike | None = None,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(counts, sum_confidence, sum_outcome)`` per bin, float64 tensors of length ``num_segments``.

    With ``weights`` (one per element of ``confidences``) the counts and sums are weighted.
    """
    confidences = tf.cast(tf.reshape(confidences, [-1]), tf.float64)
    outcomes = tf.cast(tf.reshape(outcomes, [-1]), tf.float64)
    bin_index = tf.reshape(bin_index, [-1])
    w = tf.ones_like(confidences) if weights is None else tf.cast(tf.reshape(weights, [-1]), tf.float64)
    counts = tf.math.unsorted_segment_sum(w, bin_index, num_segments)
    sum_conf = tf.math.unsorted_segment_sum(w * confidences, bin_index, num_segments)
    sum_out = tf.math.unsorted_segment_sum(w * outcomes, bin_index, num_segments)
    return counts, sum_conf, sum_out


def top_label_stats(
    labels: ArrayLike, probs: ArrayLike, num_bins: int, weights: ArrayLike | None = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Equal-width top-label bin sums (TF): used by the ECE function and metric."""
    probs = tf.convert_to_tensor(probs)
    conf = tf.reduce_max(probs, axis=-1)
    correct = tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int64), tf.cast(labels, tf.int64))
    idx = equal_width_bin_index(tf.cast(conf, tf.float64), num_bins)
    return binned_sums(conf, correct, idx, num_bins, weights)


def classwise_stats(
    labels: ArrayLike, probs: ArrayLike, num_bins: int, weights: ArrayLike | None = None
) -> tuple[tf.Tensor, ...]:
    """Equal-width per-class bin sums (TF), each of shape ``(K, num_bins)``."""
    probs = tf.convert_to_tensor(probs)
    num_classes = probs.shape[-1]
    onehot = tf.one_hot(tf.cast(labels, tf.int64), num_classes, dtype=tf.float64)
    idx = equal_width_bin_index(tf.cast(probs, tf.float64), num_bins)
    idx = idx + tf.range(num_classes, dtype=tf.int32)[None, :] * num_bins
    if weights is not None:
        weights = tf.broadcast_to(tf.cast(weights, tf.float64)[:, None], tf.shape(onehot))
    sums = binned_sums(probs, onehot, idx, num_classes * num_bins, weights)
    return tuple(tf.reshape(s, [num_classes, num_bins]) for s in sums)


def calibration_error_from_bins(
    counts: ArrayLike, sum_confidence: ArrayLike, sum_outcome: ArrayLike, norm: str = "l1"
) -> tf.Tensor:
    """Reduce per-bin sums (last axis = bins) to a calibration error (float64 tensor).

    Args:
        counts: number of examples per bin, shape ``(..., B)``.
        sum_confidence: sum of the confidences in each bin.
        sum_outcome: sum of the outcomes (1 = correct / event happened) in each bin.
        norm: ``"l1"`` (ECE), ``"l2"`` or ``"max"`` (MCE).

    Returns:
        The calibration error, one value per leading index (scalar for 1-D input).

    Example:
    >>> float(calibration_error_from_bins([2.0, 2.0], [0.6, 1.8], [1.0, 2.0]))
    0.15
    """
    _check_choice("calibration_error_from_bins", "norm", norm, NORMS)
    counts, sum_confidence, sum_outcome = (
        tf.cast(v, tf.float64) if tf.is_tensor(v) else tf.constant(np.asarray(v, np.float64))
        for v in (counts, sum_confidence, sum_outcome)
    )
    total = tf.reduce_sum(counts, axis=-1)
    safe = tf.maximum(counts, 1.0)
    gap = tf.abs(sum_outcome - sum_confidence) / safe
    weight = counts / tf.maximum(total, 1.0)[..., None]
    if norm == "l1":
        return tf.reduce_sum(weight * gap, axis=-1)
    if norm == "l2":
        return tf.sqrt(tf.reduce_sum(weight * tf.square(gap), axis=-1))
    return tf.reduce_max(tf.where(counts > 0, gap, tf.zeros_like(gap)), axis=-1)


class CalibrationBins(NamedTuple):
    """Per-bin statistics of a reliability diagram (NumPy arrays of length B)."""

    edges: np.ndarray  #: bin edges, length B + 1 (equal-mass bins put inner edges halfway between neighbours)
    counts: np.ndarray  #: examples per bin
    confidence: np.ndarray  #: mean confidence per bin (NaN where empty)
    accuracy: np.ndarray  #: fraction correct per bin (NaN where empty)


def calibration_bins(
    labels: ArrayLike,
    probs: ArrayLike,
    num_bins: int = 15,
    binning: str = "equal_width",
    from_logits: bool = False,
) -> CalibrationBins:
    """Top-label reliability statistics per bin (the data of a reliability diagram).

    Args:
        labels: integer class labels ``(N,)`` (or ``(N, 1)``, or one-hot).
        probs: predicted probabilities ``(N, K)``, or logits with ``from_logits``.
        num_bins: number of bins (positive int).
        binning: ``"equal_width"`` or ``"equal_mass"``.
        from_logits: treat ``probs`` as logits.

    Returns:
        :class:`CalibrationBins` with ``edges``, ``counts``, mean ``confidence``
        and ``accuracy`` per bin.

    Example:
    >>> b = calibration_bins([0, 1], [[0.9, 0.1], [0.8, 0.2]], num_bins=2)
    >>> b.counts.tolist(), b.accuracy.tolist()
    ([0.0, 2.0], [nan, 0.5])
    """
    fn = "calibration_bins"
    num_bins = check_num_bins(fn, num_bins)
    _check_choice(fn, "binning", binning, BINNINGS)
    y, p = _validate(fn, labels, probs, from_logits)
    counts, sum_conf, sum_acc, edges = _top_label_bins(y, p, num_bins, binning)
    counts, sum_conf, sum_acc = (np.asarray(t) for t in (counts, sum_conf, sum_acc))
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(counts > 0, sum_conf / counts, np.nan)
        acc = np.where(counts > 0, sum_acc / counts, np.nan)
    return CalibrationBins(edges, counts, conf, acc)


def _equal_mass_index(confidences: np.ndarray, num_bins: int) -> np.ndarray:
    n = confidences.shape[0]
    order = np.argsort(confidences, kind="stable")
    idx = np.empty(n, np.int32)
    idx[order] = (np.arange(n) * num_bins) // n
    return idx


def _top_label_bins(y, p, num_bins, binning):
    if binning == "equal_width":
        counts, sum_conf, sum_acc = top_label_stats(y, p, num_bins)
        edges = np.linspace(0.0, 1.0, num_bins + 1)
    else:
        conf = p.max(axis=1)
        correct = p.argmax(axis=1) == y
        idx = _equal_mass_index(conf, num_bins)
        counts, sum_conf, sum_acc = binned_sums(conf, correct, idx, num_bins)
        # bin b holds ranks [ceil(b n / B), ceil((b + 1) n / B)); put each inner edge midway
        # between the last confidence of one bin and the first of the next
        sorted_conf = np.sort(conf)
        n = conf.shape[0]
        starts = [min(max(-(-b * n // num_bins), 1), n - 1) if n > 1 else 0 for b in range(1, num_bins)]
        inner = [0.5 * (sorted_conf[max(s - 1, 0)] + sorted_conf[s]) for s in starts]
        edges = np.asarray([0.0, *inner, 1.0])
    return counts, sum_conf, sum_acc, edges


# --------------------------------------------------------------------------- ECE
def expected_calibration_error(
    labels: ArrayLike,
    probs: ArrayLike,
    num_bins: int = 15,
    binning: str = "equal_width",
    norm: str = "l1",
    from_logits: bool = False,
) -> float:
    """Top-label expected calibration error (ECE; ``norm="max"`` gives the MCE).

    ``ECE = Σ_b (n_b / N) |acc_b − conf_b|`` over bins of the top-label
    confidence (see the module docstring for the bin and norm conventions).

    Args:
        labels: integer class labels ``(N,)`` (``(N, 1)`` or one-hot ``(N, K)`` also accepted).
        probs: predicted probabilities ``(N, K)`` (rows on the simplex), or logits
            with ``from_logits=True``.
        num_bins: number of bins, a positive int.
        binning: ``"equal_width"`` or ``"equal_mass"`` (equal counts per bin).
        norm: ``"l1"`` (ECE), ``"l2"`` (RMS calibration error) or ``"max"`` (MCE).
        from_logits: whether ``probs`` holds logits.

    Returns:
        The calibration error, a float in ``[0, 1]``.

    Example:
    >>> probs = [[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8]]
    >>> round(expected_calibration_error([0, 1, 1, 1], probs, num_bins=5), 6)  # (0.4 + 0.2) / 2
    0.3
    """
    fn = "expected_calibration_error"
    num_bins = check_num_bins(fn, num_bins)
    _check_choice(fn, "binning", binning, BINNINGS)
    _check_choice(fn, "norm", norm, NORMS)
    y, p = _validate(fn, labels, probs, from_logits)
    counts, sum_conf, sum_acc, _ = _top_label_bins(y, p, num_bins, binning)
    return float(calibration_error_from_bins(counts, sum_conf, sum_acc, norm))


def classwise_calibration_error(
    labels: ArrayLike,
    probs: ArrayLike,
    num_bins: int = 15,
    norm: str = "l1",
    from_logits: bool = False,
) -> float:
    """Classwise ECE (Kull et al. 2019): the mean over classes of each class's binned ECE.

    For class ``k`` the confidence is ``p_ik`` and the outcome ``[y_i == k]``;
    equal-width bins.

    Args:
        labels: integer class labels ``(N,)`` (``(N, 1)`` or one-hot also accepted).
        probs: probabilities ``(N, K)`` or logits with ``from_logits=True``.
        num_bins: number of bins per class.
        norm: ``"l1"``, ``"l2"`` or ``"max"``.
        from_logits: whether ``probs`` holds logits.

    Returns:
        The classwise calibration error (float).

    Example:
    >>> round(classwise_calibration_error([0, 1], [[0.75, 0.25], [0.25, 0.75]], num_bins=4), 6)
    0.25
    """
    fn = "classwise_calibration_error"
    num_bins = check_num_bins(fn, num_bins)
    _check_choice(fn, "norm", norm, NORMS)
    y, p = _validate(fn, labels, probs, from_logits)
    counts, sum_conf, sum_out = classwise_stats(y, p, num_bins)
    return float(tf.reduce_mean(calibration_error_from_bins(counts, sum_conf, sum_out, norm)))

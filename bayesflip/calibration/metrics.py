"""Calibration metrics as small pure functions.

Classification metrics take integer ``labels`` of shape ``(N,)`` (``(N, 1)`` and
one-hot ``(N, K)`` are accepted too) and ``probs`` of shape ``(N, K)`` on the
probability simplex, or logits with ``from_logits=True``. Every function
validates its input and returns a Python ``float`` (or a small named tuple).

The binned statistics (:func:`calibration_bins`) and their reduction
(:func:`calibration_error_from_bins`) are TensorFlow ops shared with the
streaming Keras metrics in :mod:`bayesflip.calibration.streaming`, so a metric
accumulated over batches equals the function on the whole data set.

Conventions:

- **Top-label ECE** (Guo et al. 2017): confidence ``c_i = max_k p_ik``, correct
  ``a_i = [argmax_k p_ik == y_i]``. Bins ``b`` partition the confidences;
  ``gap_b = |mean_{i∈b} a_i − mean_{i∈b} c_i|`` and ``w_b = n_b / N``.
  ``norm="l1"``: ``Σ_b w_b gap_b`` (ECE); ``"l2"``: ``sqrt(Σ_b w_b gap_b²)``;
  ``"max"``: ``max_{b: n_b>0} gap_b`` (MCE).
- Equal-width bins are ``(0, 1/B], (1/B, 2/B], …`` (a confidence of exactly 0
  falls in the first bin). Equal-mass bins sort the confidences (stable) and give
  bin ``b`` the examples of rank ``r`` with ``floor(r B / N) = b``, so bin counts
  differ by at most one.
- **Classwise ECE** (Kull et al. 2019): the same binned gap for each class ``k``
  with confidence ``p_ik`` and outcome ``[y_i == k]``, averaged over classes.
- **Brier score**: ``mean_i Σ_k (p_ik − [y_i == k])²`` (the original multiclass
  score of Brier 1950, in ``[0, 2]``). scikit-learn's binary
  ``brier_score_loss(y, p1)`` is ``mean_i (p_i1 − y_i)²``, i.e. *half* of this
  score for ``K = 2``.
- **NLL**: ``mean_i −log p_{i,y_i}`` (natural log); probabilities are clipped
  below at ``1e-12``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from bayesflip._checks import (
    PROBS_ATOL,
    check_on_simplex,
    check_positive_int,
    looks_like_probabilities,
    warn_probabilities_as_logits,
)

__all__ = [
    "expected_calibration_error",
    "classwise_calibration_error",
    "calibration_bins",
    "calibration_error_from_bins",
    "brier_score",
    "brier_decomposition",
    "BrierDecomposition",
    "negative_log_likelihood",
    "quantile_calibration_error",
    "quantile_calibration_curve",
    "interval_coverage",
]

NORMS = ("l1", "l2", "max")
BINNINGS = ("equal_width", "equal_mass")
#: Tolerance on probabilities: each row must sum to 1 within it, entries in [-tol, 1 + tol]
#: (the library's one simplex tolerance, ``bayesflip._checks.PROBS_ATOL``).
SIMPLEX_ATOL = PROBS_ATOL
_LOG_CLIP = 1e-12


# --------------------------------------------------------------------------- validation
def _check_choice(fn: str, arg: str, value, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{fn}: `{arg}` must be one of {list(choices)}, got {value!r}.")
    return value


def check_num_bins(fn: str, num_bins) -> int:
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


def validate_probs(fn: str, probs, from_logits: bool = False) -> np.ndarray:
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


def validate_labels(fn: str, labels, num_examples: int, num_classes: int) -> np.ndarray:
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


# --------------------------------------------------------------------------- binned statistics (TF)
def equal_width_bin_index(confidences: tf.Tensor, num_bins: int) -> tf.Tensor:
    """Bin index of each confidence for ``num_bins`` bins ``(b/B, (b+1)/B]`` (int32)."""
    idx = tf.cast(tf.math.ceil(confidences * num_bins), tf.int32) - 1
    return tf.clip_by_value(idx, 0, num_bins - 1)


def binned_sums(confidences, outcomes, bin_index, num_segments: int, weights=None):
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


def top_label_stats(labels, probs, num_bins: int, weights=None):
    """Equal-width top-label bin sums (TF): used by the ECE function and metric."""
    probs = tf.convert_to_tensor(probs)
    conf = tf.reduce_max(probs, axis=-1)
    correct = tf.equal(tf.argmax(probs, axis=-1, output_type=tf.int64), tf.cast(labels, tf.int64))
    idx = equal_width_bin_index(tf.cast(conf, tf.float64), num_bins)
    return binned_sums(conf, correct, idx, num_bins, weights)


def classwise_stats(labels, probs, num_bins: int, weights=None):
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


def calibration_error_from_bins(counts, sum_confidence, sum_outcome, norm: str = "l1") -> tf.Tensor:
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
    labels, probs, num_bins: int = 15, binning: str = "equal_width", from_logits: bool = False
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
    labels,
    probs,
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
    labels,
    probs,
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


# --------------------------------------------------------------------------- proper scores
def brier_per_example(labels, probs) -> tf.Tensor:
    """``Σ_k (p_ik − onehot_ik)²`` per example (TF, float64)."""
    probs = tf.cast(probs, tf.float64)
    onehot = tf.one_hot(tf.cast(labels, tf.int64), tf.shape(probs)[-1], dtype=tf.float64)
    return tf.reduce_sum(tf.square(probs - onehot), axis=-1)


def brier_score(labels, probs, from_logits: bool = False) -> float:
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


def nll_per_example(labels, probs, from_logits: bool = False) -> tf.Tensor:
    """``−log p_{i, y_i}`` per example (TF, float64)."""
    probs = tf.cast(probs, tf.float64)
    logp = tf.nn.log_softmax(probs, axis=-1) if from_logits else tf.math.log(tf.maximum(probs, _LOG_CLIP))
    idx = tf.cast(tf.reshape(labels, [-1, 1]), tf.int64)
    return -tf.gather(logp, idx, axis=-1, batch_dims=1)[:, 0]


def negative_log_likelihood(labels, probs, from_logits: bool = False) -> float:
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
    labels, probs, num_bins: int | None = 10, from_logits: bool = False
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


# --------------------------------------------------------------------------- regression
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
    y_true=None, mean=None, scale=None, *, pit=None, num_levels: int = 20, levels=None
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
    y_true=None, mean=None, scale=None, *, pit=None, num_levels: int = 20, levels=None
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


def interval_coverage(y_true, lower, upper) -> float:
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

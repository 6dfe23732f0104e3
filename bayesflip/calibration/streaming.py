"""Streaming (``keras.metrics.Metric``) versions of the calibration metrics.

Each metric accumulates sufficient statistics across batches in float64
variables (per-bin counts and sums for ECE; sums and counts for Brier/NLL) and
computes its result with the *same* TensorFlow reductions as the functions in
:mod:`bayesflip.calibration.metrics` (:func:`~bayesflip.calibration.metrics.calibration_error_from_bins`,
``brier_per_example``, ``nll_per_example``), so the streamed value equals the
function on the whole data set. The variables are Keras metric variables
(sum-aggregated on read), so under ``tf.distribute`` the per-replica statistics
are summed before the result is computed.

Labels may be integers ``(B,)``/``(B, 1)`` or one-hot ``(B, K)``. Unlike the
functions, the metrics run inside compiled steps and do not check that
probabilities lie on the simplex (they are clipped to ``[0, 1]``); pass
``from_logits=True`` for logit outputs. Keras' own
``SparseCategoricalCrossentropy`` metric clips probabilities at 1e-7 and
renormalizes them; :class:`NegativeLogLikelihood` matches
:func:`~bayesflip.calibration.metrics.negative_log_likelihood` instead.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int
from bayesflip._typing import ArrayLike
from bayesflip.calibration import _binned, _inputs, _scores
from bayesflip.calibration import metrics as fn

__all__ = ["ExpectedCalibrationError", "BrierScore", "NegativeLogLikelihood"]


def _prepare(owner: str, y_true, y_pred, from_logits: bool):
    """Flatten to ``(B,)`` int64 labels and ``(B, K)`` float64 probabilities."""
    y_pred = tf.convert_to_tensor(y_pred)
    y_true = tf.convert_to_tensor(y_true)
    num_classes = y_pred.shape[-1]
    if y_pred.shape.rank is None or y_pred.shape.rank < 2 or num_classes is None:
        raise ValueError(
            f"{owner} expects predictions of shape (batch, num_classes), got shape {y_pred.shape}."
        )
    y_pred = tf.cast(tf.reshape(y_pred, [-1, num_classes]), tf.float64)
    probs = tf.nn.softmax(y_pred, axis=-1) if from_logits else tf.clip_by_value(y_pred, 0.0, 1.0)
    if y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] == num_classes and num_classes > 1:
        labels = tf.argmax(y_true, axis=-1)  # one-hot
    else:
        labels = tf.reshape(y_true, [-1])
    if labels.dtype.is_floating:
        labels = tf.round(labels)
    labels = tf.cast(labels, tf.int64)
    checks = [
        tf.debugging.assert_equal(
            tf.shape(labels, out_type=tf.int64)[0],
            tf.shape(probs, out_type=tf.int64)[0],
            message=f"{owner}: the number of labels differs from the number of predictions",
        ),
        tf.debugging.assert_non_negative(labels, message=f"{owner}: labels must be >= 0"),
        tf.debugging.assert_less(
            labels, tf.constant(num_classes, tf.int64), message=f"{owner}: labels must be < {num_classes}"
        ),
    ]
    with tf.control_dependencies(checks):
        labels = tf.identity(labels)
    return labels, probs, from_logits, y_pred


def _weights(sample_weight, n):
    if sample_weight is None:
        return None
    w = tf.cast(tf.reshape(sample_weight, [-1]), tf.float64)
    return tf.broadcast_to(w, [n]) if w.shape.rank == 1 and w.shape[0] == 1 else w


@keras.saving.register_keras_serializable(package="bayesflip")
class ExpectedCalibrationError(keras.metrics.Metric):
    """Streaming expected calibration error with equal-width bins.

    Accumulates per-bin counts, confidence sums and outcome sums; the result is
    :func:`bayesflip.calibration.expected_calibration_error` (or
    :func:`~bayesflip.calibration.classwise_calibration_error` with
    ``classwise=True``) of all the data seen since the last reset. Equal-mass
    bins need all confidences at once and are only offered by the function.

    Args:
        num_bins: number of equal-width bins.
        norm: ``"l1"`` (ECE), ``"l2"`` or ``"max"`` (MCE).
        classwise: per-class ECE averaged over classes (needs ``num_classes``).
        num_classes: number of classes (required with ``classwise=True``).
        from_logits: whether predictions are logits.
        name, dtype: as for every Keras metric.

    Example:
    >>> import numpy as np
    >>> m = ExpectedCalibrationError(num_bins=5)
    >>> m.update_state([0, 1], [[0.9, 0.1], [0.9, 0.1]])
    >>> m.update_state([1, 1], [[0.3, 0.7], [0.3, 0.7]])
    >>> round(float(m.result()), 6)  # (|0.5 - 0.9| + |1.0 - 0.7|) / 2
    0.35
    """

    def __init__(
        self,
        num_bins: int = 15,
        norm: str = "l1",
        classwise: bool = False,
        num_classes: int | None = None,
        from_logits: bool = False,
        name: str = "ece",
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        owner = f"ExpectedCalibrationError '{name}'"
        self.num_bins = _inputs.check_num_bins(owner, num_bins)
        if norm not in _inputs.NORMS:
            raise ValueError(f"{owner}: `norm` must be one of {list(_inputs.NORMS)}, got {norm!r}.")
        self.norm = norm
        self.classwise = bool(classwise)
        if self.classwise and num_classes is None:
            raise ValueError(
                f"{owner}: `classwise=True` needs `num_classes` (a positive int), got {num_classes!r}."
            )
        self.num_classes = check_positive_int(owner, "num_classes", num_classes, allow_none=True)
        self.from_logits = bool(from_logits)
        shape = (num_classes, self.num_bins) if self.classwise else (self.num_bins,)
        self.counts = self.add_variable(shape, "zeros", dtype="float64", name="counts")
        self.sum_confidence = self.add_variable(shape, "zeros", dtype="float64", name="sum_confidence")
        self.sum_outcome = self.add_variable(shape, "zeros", dtype="float64", name="sum_outcome")

    @property
    def _owner(self) -> str:
        return f"ExpectedCalibrationError '{self.name}'"

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        labels, probs, _, _ = _prepare(self._owner, y_true, y_pred, self.from_logits)
        if self.num_classes is not None and probs.shape[-1] != self.num_classes:
            raise ValueError(
                f"{self._owner} was built for {self.num_classes} classes, got predictions of shape {probs.shape}."
            )
        weights = _weights(sample_weight, tf.shape(labels)[0])
        if self.classwise:
            stats = _binned.classwise_stats(labels, probs, self.num_bins, weights=weights)
        else:
            stats = _binned.top_label_stats(labels, probs, self.num_bins, weights=weights)
        for var, value in zip((self.counts, self.sum_confidence, self.sum_outcome), stats):
            var.assign_add(value)

    def result(self) -> tf.Tensor:
        error = fn.calibration_error_from_bins(
            self.counts.value, self.sum_confidence.value, self.sum_outcome.value, self.norm
        )
        if self.classwise:
            error = tf.reduce_mean(error)
        return tf.cast(error, self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_bins": self.num_bins,
                "norm": self.norm,
                "classwise": self.classwise,
                "num_classes": self.num_classes,
                "from_logits": self.from_logits,
            }
        )
        return config


class _MeanOfPerExample(keras.metrics.Metric):
    """Weighted mean of a per-example score; float64 sum and count."""

    def __init__(self, from_logits: bool = False, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.from_logits = bool(from_logits)
        self.total = self.add_variable((), "zeros", dtype="float64", name="total")
        self.count = self.add_variable((), "zeros", dtype="float64", name="count")

    def per_example(  # pragma: no cover - abstract
        self, labels: tf.Tensor, probs: tf.Tensor, logits: tf.Tensor
    ) -> tf.Tensor:
        raise NotImplementedError

    def update_state(
        self, y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> None:
        owner = f"{type(self).__name__} '{self.name}'"
        labels, probs, _, logits = _prepare(owner, y_true, y_pred, self.from_logits)
        values = self.per_example(labels, probs, logits)
        weights = _weights(sample_weight, tf.shape(values)[0])
        if weights is None:
            self.total.assign_add(tf.reduce_sum(values))
            self.count.assign_add(tf.cast(tf.shape(values)[0], tf.float64))
        else:
            self.total.assign_add(tf.reduce_sum(weights * values))
            self.count.assign_add(tf.reduce_sum(weights))

    def result(self) -> tf.Tensor:
        return tf.cast(tf.math.divide_no_nan(self.total.value, self.count.value), self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class BrierScore(_MeanOfPerExample):
    """Streaming multiclass Brier score ``mean_i Σ_k (p_ik − [y_i = k])²``.

    Equals :func:`bayesflip.calibration.brier_score` on all data since the last
    reset (twice scikit-learn's binary ``brier_score_loss`` for two classes).

    Args:
        from_logits: whether predictions are logits.
        name, dtype: as for every Keras metric.

    Example:
    >>> m = BrierScore()
    >>> m.update_state([0], [[0.8, 0.2]]); m.update_state([1], [[0.4, 0.6]])
    >>> round(float(m.result()), 6)
    0.2
    """

    def __init__(self, from_logits: bool = False, name: str = "brier", dtype: str | None = None) -> None:
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def per_example(self, labels: tf.Tensor, probs: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        return _scores.brier_per_example(labels, probs)


@keras.saving.register_keras_serializable(package="bayesflip")
class NegativeLogLikelihood(_MeanOfPerExample):
    """Streaming mean negative log-likelihood ``mean_i −log p_{i, y_i}`` (nats).

    Equals :func:`bayesflip.calibration.negative_log_likelihood` on all data since
    the last reset (with logits: a stable log-softmax).

    Args:
        from_logits: whether predictions are logits.
        name, dtype: as for every Keras metric.

    Example:
    >>> m = NegativeLogLikelihood(from_logits=True)
    >>> m.update_state([0, 1], [[0.0, 0.0], [0.0, 0.0]])
    >>> round(float(m.result()), 6)
    0.693147
    """

    def __init__(self, from_logits: bool = False, name: str = "nll", dtype: str | None = None) -> None:
        super().__init__(from_logits=from_logits, name=name, dtype=dtype)

    def per_example(self, labels: tf.Tensor, probs: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
        if self.from_logits:
            return _scores.nll_per_example(labels, logits, from_logits=True)
        return _scores.nll_per_example(labels, probs)

"""Negative log-likelihood losses of the heads (:class:`GaussianNLL`, :class:`StudentTNLL`, ...)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip._tfp import tfd
from bayesflip.heads._common import _PACKAGE, _shape


# --------------------------------------------------------------------------- label checks
def _dtype_of(value) -> np.dtype | tf.DType:
    if tf.is_tensor(value) or isinstance(value, keras.KerasTensor):
        return tf.as_dtype(value.dtype)
    return np.asarray(value).dtype


def _dtype_kind(dtype) -> str:
    """'b', 'i', 'u', 'f' or '?' (anything else)."""
    if isinstance(dtype, tf.DType):
        if dtype.is_bool:
            return "b"
        if dtype.is_floating:
            return "f"
        if dtype.is_integer:
            return "u" if dtype.is_unsigned else "i"
        return "?"
    return dtype.kind if dtype.kind in "biuf" else "?"


def _check_values(owner: str, y: tf.Tensor, ok: tf.Tensor, expected: str) -> tf.Tensor:
    """Raise (eager) or assert (graph) that ``ok`` holds everywhere; return ``y``.

    The message names ``owner``, says what was ``expected`` and which values came.
    """
    if tf.executing_eagerly():
        if not bool(tf.reduce_all(ok)):
            bad = np.unique(tf.boolean_mask(y, tf.logical_not(ok)).numpy())
            shown = ", ".join(f"{v:g}" for v in bad[:5]) + (", ..." if bad.size > 5 else "")
            raise ValueError(f"{owner}: labels must be {expected}; got {bad.size} other value(s): {shown}.")
        return y
    flat = tf.reshape(y, [-1])
    first_bad = tf.gather(flat, tf.argmax(tf.cast(tf.logical_not(tf.reshape(ok, [-1])), tf.int32)))
    check = tf.debugging.Assert(
        tf.reduce_all(ok),
        [
            f"{owner}: labels must be {expected}; got for example",
            first_bad,
            "(labels range over",
            tf.reduce_min(y),
            "to",
            tf.reduce_max(y),
            ")",
        ],
    )
    with tf.control_dependencies([check]):
        return tf.identity(y)


def _check_positive_params(owner: str, what: str, t: tf.Tensor) -> None:
    if tf.executing_eagerly() and not bool(tf.reduce_all(t > 0)):
        raise ValueError(
            f"{owner}: every {what} must be > 0, got a minimum of {float(tf.reduce_min(t)):.4g}."
        )


# --------------------------------------------------------------------------- losses
class _HeadNLL(keras.losses.Loss):
    """Negative log-likelihood of a head's distribution; per-example value summed over units."""

    _head_name = ""
    _label_kinds = "iuf"
    _default_name = ""

    def __init__(self, name: str | None = None, reduction: str = "sum_over_batch_size", dtype=None):
        super().__init__(name=name or self._default_name, reduction=reduction, dtype=dtype)
        self._config_dtype = dtype

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__} (loss of {self._head_name})"

    def __call__(self, y_true, y_pred, sample_weight=None):
        kind = _dtype_kind(_dtype_of(y_true))
        if kind not in self._label_kinds:
            raise TypeError(
                f"{self._owner}: `y_true` must be {self._label_text}, got dtype {_dtype_of(y_true)}."
            )
        if not tf.is_tensor(y_true):
            y_true = np.asarray(y_true)
        if not tf.is_tensor(y_pred):
            y_pred = tf.convert_to_tensor(y_pred, dtype_hint=tf.float32)
        return super().__call__(y_true, y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = self._config_dtype
        return config

    def call(self, y_true, y_pred):
        dist = self._distribution(self._owner, y_pred)
        y = self._labels(y_true, y_pred)
        return self._reduce(-dist.log_prob(y))

    @staticmethod
    def _reduce(nll):
        return tf.reduce_sum(nll, axis=-1)

    @classmethod
    def _check_params(cls, owner: str, params: tf.Tensor, num_params: int) -> tf.Tensor:
        shape = _shape(params)
        if len(shape) < 2 or shape[-1] not in (None, num_params):
            raise ValueError(
                f"{owner}: expected the output of a {cls._head_name}, "
                f"shape (batch, ..., units, {num_params}), "
                f"got shape {shape}."
            )
        return params

    def _unit_labels(self, y_true, pred_shape: tuple, what: str) -> tf.Tensor:
        """Bring labels ``(batch, ...)`` or ``(batch, ..., units)`` to ``pred_shape``."""
        y = tf.convert_to_tensor(y_true)
        shape = _shape(y)
        units = pred_shape[-1]
        if len(shape) == len(pred_shape) - 1 and units == 1:
            y = y[..., None]
        elif len(shape) != len(pred_shape) or not tf.TensorShape(shape).is_compatible_with(pred_shape):
            extra = " or (batch,) for units = 1" if units == 1 else ""
            raise ValueError(
                f"{self._owner}: `y_true` must have shape (batch, units) = {pred_shape}{extra}, "
                f"matching {what}; "
                f"got shape {shape}."
            )
        return y


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GaussianNLL(_HeadNLL):
    """Gaussian negative log-likelihood of :class:`GaussianHead` outputs.

    ``−Σ_units log N(y | loc, scale²)`` per example (via ``tfd.Normal.log_prob``),
    averaged over the batch.

    Args:
        name: loss name.
        reduction: Keras reduction (default: mean over the batch).
        dtype: Keras loss dtype.

    ``y_true``: ``(batch, units)``, or ``(batch,)`` for one unit. ``y_pred``:
    the head's output ``(batch, units, 2)``.

    Example:
    >>> round(float(GaussianNLL()([0.0], [[[0.0, 1.0]]])), 4)   # 0.5 log 2π
    0.9189
    """

    _head_name = "GaussianHead"
    _default_name = "gaussian_nll"
    _label_text = "numeric (float or integer)"
    _num_params = 2

    @classmethod
    def _checked(cls, owner, params):
        """``params`` after the shape check and the positive-scale check shared with :class:`StudentTNLL`."""
        params = cls._check_params(owner, params, cls._num_params)
        _check_positive_params(owner, "scale (params[..., 1])", params[..., 1])
        return params

    @classmethod
    def _distribution(cls, owner, params):
        params = cls._checked(owner, params)
        return tfd.Normal(loc=params[..., 0], scale=params[..., 1])

    def _labels(self, y_true, y_pred):
        return tf.cast(
            self._unit_labels(y_true, _shape(y_pred)[:-1], "the head's output (batch, units, P)"),
            y_pred.dtype,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StudentTNLL(GaussianNLL):
    """Student-t negative log-likelihood of :class:`StudentTHead` outputs ``[loc, scale, df]``.

    ``−Σ_units log t_df(y | loc, scale)`` per example (``tfd.StudentT.log_prob``),
    averaged over the batch. Args and label shapes as :class:`GaussianNLL`.

    Example:
    >>> round(float(StudentTNLL()([0.0], [[[0.0, 1.0, 1.0]]])), 4)   # Cauchy: log π
    1.1447
    """

    _head_name = "StudentTHead"
    _default_name = "student_t_nll"
    _num_params = 3

    @classmethod
    def _distribution(cls, owner, params):
        params = cls._checked(owner, params)
        _check_positive_params(owner, "df (params[..., 2])", params[..., 2])
        return tfd.StudentT(df=params[..., 2], loc=params[..., 0], scale=params[..., 1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CategoricalNLL(_HeadNLL):
    """Categorical negative log-likelihood (sparse cross-entropy) of :class:`CategoricalHead` logits.

    ``−log softmax(logits)[y]`` per example (``tfd.Categorical.log_prob``),
    averaged over the batch.

    Args:
        name: loss name.
        reduction: Keras reduction (default: mean over the batch).
        dtype: Keras loss dtype.

    ``y_true``: integer class ids in ``[0, K)``, shape ``(batch,)`` or
    ``(batch, 1)`` (floats holding whole numbers are accepted). ``y_pred``:
    logits ``(batch, K)``.

    Example:
    >>> round(float(CategoricalNLL()([0, 1], [[0.0, 0.0], [0.0, 0.0]])), 4)   # log 2
    0.6931
    """

    _head_name = "CategoricalHead"
    _default_name = "categorical_nll"
    _label_text = "integer class ids"

    @classmethod
    def _distribution(cls, owner, params):
        shape = _shape(params)
        if len(shape) < 1 or (shape[-1] is not None and shape[-1] < 2):
            raise ValueError(
                f"{owner}: expected logits (batch, ..., K) with K >= 2 classes, got shape {shape}."
            )
        return tfd.Categorical(logits=params)

    @staticmethod
    def _reduce(nll):
        return nll

    def _labels(self, y_true, y_pred):
        y = tf.convert_to_tensor(y_true)
        pred_shape = _shape(y_pred)
        shape = _shape(y)
        if len(shape) == len(pred_shape) and shape[-1] == 1:
            y = y[..., 0]
            shape = shape[:-1]
        if len(shape) != len(pred_shape) - 1 or not tf.TensorShape(shape).is_compatible_with(pred_shape[:-1]):
            hint = " (one-hot labels? pass their argmax)" if shape == pred_shape else ""
            raise ValueError(
                f"{self._owner}: `y_true` must hold one class id per example, shape {pred_shape[:-1]} or "
                f"{(*pred_shape[:-1], 1)} for logits of shape {pred_shape}; got shape {shape}{hint}."
            )
        k = pred_shape[-1] if pred_shape[-1] is not None else tf.shape(y_pred)[-1]
        yf = tf.cast(y, tf.float32)
        ok = (yf == tf.round(yf)) & (yf >= 0) & (yf < tf.cast(k, tf.float32))
        y = _check_values(self._owner, yf, ok, f"integer class ids in [0, {k}) for {k} logits")
        return tf.cast(y, tf.int32)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BernoulliNLL(_HeadNLL):
    """Bernoulli negative log-likelihood (binary cross-entropy) of :class:`BernoulliHead` logits.

    ``−Σ_units log Bernoulli(y | sigmoid(logits))`` per example
    (``tfd.Bernoulli.log_prob``), averaged over the batch.

    Args:
        name: loss name.
        reduction: Keras reduction (default: mean over the batch).
        dtype: Keras loss dtype.

    ``y_true``: 0/1 labels (bool, int or float) of shape ``(batch, units)``, or
    ``(batch,)`` for one unit. ``y_pred``: logits ``(batch, units)``.

    Example:
    >>> round(float(BernoulliNLL()([1, 0], [[0.0], [0.0]])), 4)   # log 2
    0.6931
    """

    _head_name = "BernoulliHead"
    _default_name = "bernoulli_nll"
    _label_kinds = "biuf"
    _label_text = "0/1 labels (bool, integer or float)"

    @classmethod
    def _distribution(cls, owner, params):
        shape = _shape(params)
        if len(shape) < 1:
            raise ValueError(f"{owner}: expected logits (batch, ..., units), got a scalar.")
        return tfd.Bernoulli(logits=params, dtype=params.dtype)

    def _labels(self, y_true, y_pred):
        y = tf.cast(self._unit_labels(y_true, _shape(y_pred), "the logits (batch, units)"), y_pred.dtype)
        return _check_values(self._owner, y, (y == 0) | (y == 1), "0 or 1")

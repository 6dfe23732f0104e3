"""Likelihood output heads and their negative log-likelihood losses.

A head is the last layer of a model. It turns the previous layer's output into
the parameters of a ``tfp.distributions`` distribution; its loss
(:meth:`Head.loss`) is the negative log-likelihood of the targets under that
distribution, computed with the distribution's ``log_prob`` (no hand-written
densities). ``model.predict`` returns the parameters, and
:meth:`Head.distribution` turns them into the distribution.

Output tensors (what the head returns, what ``model.predict`` gives):

=============================  ===============================  ==============================
head                           input                            output
=============================  ===============================  ==============================
``GaussianHead`` (hetero.)     ``(..., 2·units)``: loc | raw    ``(..., units, 2)``: [loc, scale]
``GaussianHead`` (homosc.)     ``(..., units)``: loc            ``(..., units, 2)``: [loc, scale]
``StudentTHead``               as ``GaussianHead``              ``(..., units, 3)``: [loc, scale, df]
``CategoricalHead``            ``(..., K)`` logits              the logits, unchanged
``BernoulliHead``              ``(..., units)`` logits          the logits, unchanged
=============================  ===============================  ==============================

Heteroscedastic heads map the raw half to ``scale = min_scale + softplus(raw)``;
homoscedastic heads learn one scale per unit (a saved weight). The losses sum
the NLL over the ``units`` of one example (the log-likelihood of the whole
target vector) and average it over the batch, like Keras' own losses; with the
layers' KL terms (:func:`bayesflip.set_kl_weight`) ``model.fit`` then minimises
the per-example negative ELBO.

Predictives: :func:`predictive` (and :func:`bayesflip.uncertainty.mc_predict`
on a model whose output layer is a head) reduce ``T`` Monte Carlo draws of the
head's output: regression heads give a :class:`RegressionPredictive` (mixture
mean, variance decomposition, mixture quantiles), classification heads the
MC-averaged probabilities.

Label and parameter checks raise a ``ValueError``/``TypeError`` in eager mode
and a ``tf.errors.InvalidArgumentError`` with the same message inside a graph
(``model.fit``); under XLA (``jit_compile=True``) value checks are skipped.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_positive_int, check_real, is_real
from bayesflip._tfp import tfd
from bayesflip._typing import ArrayLike
from bayesflip.uncertainty._regression import _mixture_quantile
from bayesflip.uncertainty._sampling import _LINKS

__all__ = [
    "Head",
    "GaussianHead",
    "StudentTHead",
    "CategoricalHead",
    "BernoulliHead",
    "GaussianNLL",
    "StudentTNLL",
    "CategoricalNLL",
    "BernoulliNLL",
    "RegressionPredictive",
    "predictive",
    "output_head",
]

_PACKAGE = "bayesflip"
_NOISE = ("heteroscedastic", "homoscedastic")
#: A learned Student-t ``df`` is ``2 + _DF_FLOOR + softplus(raw)`` (finite variance),
#: starting at ``_INIT_DF``.
_DF_FLOOR = 1e-3
_INIT_DF = 5.0


# --------------------------------------------------------------------------- helpers
def _check_number(owner: str, name: str, value: Any, minimum: float, inclusive: bool) -> float:
    kind = "non-negative" if inclusive else "positive"
    if not is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a {kind} number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value < minimum or (value == minimum and not inclusive):
        raise ValueError(f"{owner}: `{name}` must be a {kind} finite number, got {value!r}.")
    return value


def _softplus_inverse(y: float) -> float:
    """``x`` with ``softplus(x) = y`` (``y > 0``)."""
    return y + math.log(-math.expm1(-y))


def _shape(t) -> tuple:
    return tuple(tf.TensorShape(t.shape).as_list())


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


# --------------------------------------------------------------------------- predictive
class RegressionPredictive(NamedTuple):
    """Monte Carlo predictive of a Gaussian or Student-t head: the equal-weight mixture of ``T`` draws.

    With draws ``(μ_s, σ_s[, ν_s])`` the predictive is ``(1/T) Σ_s p_s`` and its
    variance splits (law of total variance) into ``E_s Var_s`` (aleatoric) and
    ``Var_s μ_s`` (epistemic, population variance over the draws). A component's
    variance is ``σ_s²`` (Gaussian) or ``ν_s/(ν_s − 2) · σ_s²`` (Student-t;
    infinite for ``ν_s ≤ 2``). Arrays are float64 of shape ``(N, ..., units)``.
    """

    mean: np.ndarray  #: ``E_s μ_s`` (for Student-t components the mean needs ``ν > 1``)
    total_variance: np.ndarray  #: ``aleatoric + epistemic``
    aleatoric_variance: np.ndarray  #: ``E_s Var[p_s]``
    epistemic_variance: np.ndarray  #: ``Var_s μ_s``
    samples: np.ndarray  #: the raw head outputs, ``(T, N, ..., units, 2 | 3)``

    def _components(self):
        s = np.asarray(self.samples, dtype=np.float64)
        return s[..., 0], s[..., 1], (s[..., 2] if s.shape[-1] == 3 else None)

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Quantile(s) of the mixture predictive (bisection on its CDF to 1e-10 relative width).

        Args:
            q: a probability in ``(0, 1)``, or a sequence of them.

        Returns:
            ``(N, ..., units)`` for one ``q``; ``(len(q), N, ..., units)`` for a sequence.
        """
        qs = np.asarray(q, dtype=np.float64)
        if qs.ndim > 1 or qs.size == 0 or not np.all((qs > 0) & (qs < 1)):
            raise ValueError(
                f"RegressionPredictive.quantile: `q` must be in (0, 1) (or a list of such), got {q!r}."
            )
        mu, sd, df = self._components()
        out = [_mixture_quantile(mu, sd, float(p), df) for p in np.atleast_1d(qs)]
        return out[0] if qs.ndim == 0 else np.stack(out)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central prediction interval: the ``(1 − level)/2`` and ``(1 + level)/2`` mixture quantiles.

        Args:
            level: coverage probability in ``(0, 1)``.

        Returns:
            ``(lower, upper)``, each ``(N, ..., units)``.
        """
        level = check_real("RegressionPredictive.interval", "level", level, low=0, high=1)
        lo, hi = self.quantile([(1 - level) / 2, (1 + level) / 2])
        return lo, hi


def _regression_predictive(owner: str, samples, num_params: int) -> RegressionPredictive:
    s = np.asarray(samples.numpy() if tf.is_tensor(samples) else samples)
    if s.ndim < 4 or s.shape[-1] != num_params:
        raise ValueError(
            f"{owner}: expected MC draws of the head's output with shape "
            f"(num_samples, N, ..., units, {num_params}), "
            f"got shape {s.shape}."
        )
    s64 = s.astype(np.float64)
    if not np.all(np.isfinite(s64)):
        raise ValueError(f"{owner}: the draws contain NaN or infinite values.")
    loc, scale = s64[..., 0], s64[..., 1]
    if np.any(scale <= 0):
        raise ValueError(f"{owner}: every scale must be > 0, got a minimum of {scale.min():.4g}.")
    var = scale**2
    if num_params == 3:
        df = s64[..., 2]
        factor = np.full_like(df, np.inf)
        np.divide(df, df - 2.0, out=factor, where=df > 2.0)
        var = var * factor
    aleatoric = var.mean(axis=0)
    epistemic = loc.var(axis=0)
    return RegressionPredictive(loc.mean(axis=0), aleatoric + epistemic, aleatoric, epistemic, s)


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


# --------------------------------------------------------------------------- heads
class Head(keras.layers.Layer):
    """Base class of likelihood heads (the last layer of a model).

    Subclasses set ``_loss_class`` (whose ``_distribution(owner, params)``
    builds the distribution from the head's output, for the head and the loss
    alike) and define the Monte Carlo reduction
    ``_predictive(sample_params, return_samples)`` and ``_mc_plan``.
    """

    _loss_class: type[_HeadNLL]
    #: Name of the inverse link applied to each MC draw (``"softmax"``/``"sigmoid"``), or None.
    _mc_link: str | None = None

    def __init__(self, **kwargs: Any) -> None:
        if "dtype" not in kwargs and keras.mixed_precision.global_policy().compute_dtype in (
            "float16",
            "bfloat16",
        ):
            kwargs["dtype"] = "float32"  # likelihood parameters in float32 under mixed precision
        super().__init__(**kwargs)

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def loss(self) -> keras.losses.Loss:
        """The matching negative log-likelihood loss (a new instance), for ``model.compile(loss=...)``."""
        return self._loss_class()

    def distribution(self, params: ArrayLike) -> tfd.Distribution:
        """The ``tfp.distributions`` distribution described by the head's output ``params``.

        Args:
            params: the head's output (e.g. ``model.predict(x)``), see the module table.

        Returns:
            A distribution with ``batch_shape`` = ``params.shape[:-1]`` (Gaussian,
            Student-t, categorical) or ``params.shape`` (Bernoulli).
        """
        params = tf.convert_to_tensor(params, dtype_hint=tf.float32)
        if not params.dtype.is_floating:
            params = tf.cast(params, tf.float32)
        return self._loss_class._distribution(self._owner, params)

    def _predictive(self, sample_params, return_samples: bool):  # pragma: no cover - abstract
        raise NotImplementedError

    def _mc_plan(self, return_samples: bool, from_logits: bool):
        """How :func:`bayesflip.uncertainty.mc_predict` samples this head.

        Returns ``(link, return_samples, finish)``: the inverse link applied to
        each draw, whether to keep all draws, and the reduction of the NumPy
        result (or None).
        """
        raise NotImplementedError  # pragma: no cover - abstract


class _RegressionHead(Head):
    _num_params = 2

    def __init__(
        self,
        units: int = 1,
        noise: str = "heteroscedastic",
        min_scale: float = 1e-3,
        init_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        owner = self._owner
        self.units = check_positive_int(owner, "units", units)
        if noise not in _NOISE:
            raise ValueError(f"{owner}: `noise` must be 'heteroscedastic' or 'homoscedastic', got {noise!r}.")
        self.noise = noise
        self.min_scale = _check_number(owner, "min_scale", min_scale, 0.0, inclusive=True)
        self.init_scale = _check_number(owner, "init_scale", init_scale, 0.0, inclusive=False)
        if self.init_scale <= self.min_scale:
            raise ValueError(
                f"{owner}: `init_scale` must be greater than `min_scale` ({self.min_scale!r}), "
                f"got {self.init_scale!r}."
            )

    def build(self, input_shape: tuple) -> None:
        shape = tuple(input_shape)
        hetero = self.noise == "heteroscedastic"
        expected = 2 * self.units if hetero else self.units
        if len(shape) < 2 or shape[-1] != expected:
            what = (
                f"2 * units = {expected} (loc and raw scale, noise='heteroscedastic')"
                if hetero
                else f"units = {expected} (loc, noise='homoscedastic')"
            )
            raise ValueError(
                f"{self._owner} expects inputs (batch, ..., {expected}) with last dimension {what}, "
                f"got shape {shape}."
            )
        if not hetero:
            self.raw_scale = self.add_weight(
                name="raw_scale",
                shape=(self.units,),
                initializer=keras.initializers.Constant(_softplus_inverse(self.init_scale - self.min_scale)),
            )

    def _loc_scale(self, inputs) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.convert_to_tensor(inputs)
        if not x.dtype.is_floating:
            x = tf.cast(x, self.compute_dtype)
        if self.noise == "heteroscedastic":
            loc, raw = x[..., : self.units], x[..., self.units :]
            return loc, self.min_scale + tf.math.softplus(raw)
        scale = self.min_scale + tf.math.softplus(tf.cast(self.raw_scale, x.dtype))
        return x, tf.broadcast_to(scale, tf.shape(x))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*tuple(input_shape)[:-1], self.units, self._num_params)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "noise": self.noise,
                "min_scale": self.min_scale,
                "init_scale": self.init_scale,
            }
        )
        return config

    def _predictive(self, sample_params, return_samples: bool = False) -> RegressionPredictive:
        return _regression_predictive(f"{self._owner} predictive", sample_params, self._num_params)

    def _mc_plan(self, return_samples: bool, from_logits: bool):
        if from_logits:
            raise ValueError(
                f"mc_predict: `from_logits` does not apply to a model ending in {self._owner} "
                f"(it returns the head's regression predictive)."
            )
        return None, True, self._predictive


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GaussianHead(_RegressionHead):
    """Gaussian likelihood head ``y ~ N(loc, scale²)`` per output unit.

    Args:
        units: number of regression targets per example.
        noise: ``"heteroscedastic"``: the input is ``(..., 2·units)``, first half
            ``loc``, second half a raw scale mapped to ``scale = min_scale +
            softplus(raw)`` (put e.g. ``DenseFlipout(2 * units)`` before the head).
            ``"homoscedastic"``: the input ``(..., units)`` is ``loc``, and each
            unit has one learned scale (a saved weight), initialised to
            ``init_scale``.
        min_scale: floor added to every scale (>= 0).
        init_scale: initial learned scale of a homoscedastic head (> ``min_scale``;
            unused with ``noise="heteroscedastic"``).
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype`` …).

    Output: ``(..., units, 2)``, ``[..., 0]`` = loc, ``[..., 1]`` = scale. Loss:
    :class:`GaussianNLL` (``head.loss()``).

    Example:
    >>> import numpy as np
    >>> head = GaussianHead(units=1)
    >>> params = head(np.array([[0.5, 0.0]], "float32"))    # loc 0.5, raw scale 0
    >>> params.shape
    TensorShape([1, 1, 2])
    >>> round(float(params[0, 0, 1]), 4)                    # 1e-3 + softplus(0)
    0.6941
    >>> round(float(head.loss()(np.array([0.5]), params)), 4)  # -log N(0.5 | 0.5, 0.6941²)
    0.5539
    """

    _num_params = 2
    _loss_class = GaussianNLL

    def __init__(
        self,
        units: int = 1,
        noise: str = "heteroscedastic",
        min_scale: float = 1e-3,
        init_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(units=units, noise=noise, min_scale=min_scale, init_scale=init_scale, **kwargs)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        loc, scale = self._loc_scale(inputs)
        return tf.stack([loc, scale], axis=-1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StudentTHead(_RegressionHead):
    """Student-t likelihood head ``y ~ t_df(loc, scale)`` per output unit (robust regression).

    Args:
        units, noise, min_scale, init_scale: as in :class:`GaussianHead`.
        df: degrees of freedom. ``None``: learned, one per unit (a saved weight),
            ``df = 2 + 0.001 + softplus(raw)`` so the variance stays finite,
            starting at 5. A positive number: fixed (``df <= 2`` is allowed, e.g.
            1 for a Cauchy likelihood; the predictive variance is then infinite).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Output: ``(..., units, 3)`` = ``[loc, scale, df]``. Loss: :class:`StudentTNLL`.

    Example:
    >>> import numpy as np
    >>> head = StudentTHead(units=1, df=4.0)
    >>> params = head(np.array([[0.0, 0.0]], "float32"))
    >>> params.shape, float(params[0, 0, 2])
    (TensorShape([1, 1, 3]), 4.0)
    >>> head.distribution(params).df.shape
    TensorShape([1, 1])
    """

    _num_params = 3
    _loss_class = StudentTNLL

    def __init__(
        self,
        units: int = 1,
        noise: str = "heteroscedastic",
        df: float | None = None,
        min_scale: float = 1e-3,
        init_scale: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(units=units, noise=noise, min_scale=min_scale, init_scale=init_scale, **kwargs)
        self.df = None if df is None else _check_number(self._owner, "df", df, 0.0, inclusive=False)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        if self.df is None:
            self.raw_df = self.add_weight(
                name="raw_df",
                shape=(self.units,),
                initializer=keras.initializers.Constant(_softplus_inverse(_INIT_DF - 2.0 - _DF_FLOOR)),
            )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        loc, scale = self._loc_scale(inputs)
        if self.df is None:
            df = 2.0 + _DF_FLOOR + tf.math.softplus(tf.cast(self.raw_df, loc.dtype))
        else:
            df = tf.constant(self.df, loc.dtype)
        return tf.stack([loc, scale, tf.broadcast_to(df, tf.shape(loc))], axis=-1)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["df"] = self.df
        return config


class _LogitsHead(Head):
    """Heads whose output is the input logits, unchanged."""

    _mc_link: str  # "softmax" or "sigmoid", set by each subclass
    _min_last_dim = 1

    def build(self, input_shape: tuple) -> None:
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[-1] is None or shape[-1] < self._min_last_dim:
            raise ValueError(
                f"{self._owner} expects logits (batch, ..., {self._last_dim_name}) with a known last "
                f"dimension >= {self._min_last_dim}, got shape {shape}.{self._hint}"
            )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.convert_to_tensor(inputs)
        return x if x.dtype.is_floating else tf.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def _predictive(self, sample_params, return_samples: bool = False) -> np.ndarray:
        owner = f"{self._owner} predictive"
        s = tf.convert_to_tensor(sample_params, dtype_hint=tf.float32)
        if s.shape.rank is None or s.shape.rank < 3:
            raise ValueError(
                f"{owner}: expected MC draws of logits with shape "
                f"(num_samples, N, ..., {self._last_dim_name}), "
                f"got shape {_shape(s)}."
            )
        probs = _LINKS[self._mc_link](tf.cast(s, tf.float32))
        return (probs if return_samples else tf.reduce_mean(probs, axis=0)).numpy()

    def _mc_plan(self, return_samples: bool, from_logits: bool):
        return self._mc_link, return_samples, None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CategoricalHead(_LogitsHead):
    """Categorical likelihood head over ``K >= 2`` classes; input and output are logits ``(batch, K)``.

    The output is the input unchanged (put e.g. ``DenseFlipout(K)`` without
    activation before it); the head fixes the likelihood, the loss
    (:class:`CategoricalNLL`, integer labels) and the MC predictive (mean of
    the per-draw softmax).

    Args:
        **kwargs: base ``keras.layers.Layer`` arguments.

    Example:
    >>> import numpy as np
    >>> head = CategoricalHead()
    >>> logits = head(np.log(np.array([[0.2, 0.8]], "float32")))
    >>> round(float(head.loss()(np.array([1]), logits)), 4)          # -log 0.8
    0.2231
    >>> head.distribution(logits).probs_parameter().numpy().astype("float64").round(2).tolist()
    [[0.2, 0.8]]
    """

    _mc_link = "softmax"
    _loss_class = CategoricalNLL
    _min_last_dim = 2
    _last_dim_name = "K"
    _hint = " Use BernoulliHead for binary outputs with one logit."


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BernoulliHead(_LogitsHead):
    """Independent Bernoulli likelihoods (binary, multi-label); input and output: logits ``(batch, units)``.

    Args:
        **kwargs: base ``keras.layers.Layer`` arguments.

    Loss: :class:`BernoulliNLL` (0/1 labels). MC predictive: mean of the per-draw sigmoid.

    Example:
    >>> import numpy as np
    >>> head = BernoulliHead()
    >>> logits = head(np.array([[0.0, 2.0]], "float32"))
    >>> round(float(head.loss()(np.array([[1, 0]]), logits)), 4)     # log 2 + log(1 + e²)
    2.8201
    """

    _mc_link = "sigmoid"
    _loss_class = BernoulliNLL
    _last_dim_name = "units"
    _hint = ""


# --------------------------------------------------------------------------- functions
def output_head(model: keras.layers.Layer) -> Head | None:
    """The head that produces ``model``'s single output, or ``None``.

    A head itself, the last layer of a ``Sequential`` (recursively), or the
    layer producing the one output of a functional model. Multi-output and
    subclassed models give ``None``.

    Args:
        model: a Keras layer or model.

    Returns:
        The :class:`Head`, or ``None``.

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), GaussianHead()])
    >>> type(output_head(model)).__name__
    'GaussianHead'
    """
    if isinstance(model, Head):
        return model
    if isinstance(model, keras.Sequential):
        return output_head(model.layers[-1]) if model.layers else None
    if isinstance(model, keras.Model):
        try:
            outputs = model.outputs
        except (AttributeError, ValueError):
            return None
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 1:
            return None
        history = getattr(outputs[0], "_keras_history", None)
        layer = getattr(history, "operation", None) if history is not None else None
        if isinstance(layer, keras.layers.Layer) and layer is not model:
            return output_head(layer)
    return None


def predictive(
    model_or_head: keras.layers.Layer, sample_params: ArrayLike, return_samples: bool = False
) -> RegressionPredictive | np.ndarray:
    """Reduce Monte Carlo draws of a head's output to its predictive.

    Args:
        model_or_head: a :class:`Head`, or a model whose output layer is one
            (see :func:`output_head`).
        sample_params: ``T`` draws of the head's output, sample axis first:
            ``(T, N, ..., units, 2 | 3)`` for Gaussian/Student-t heads, logits
            ``(T, N, ..., K)`` for categorical/Bernoulli heads (e.g.
            ``mc_predict(model, x, return_samples=True)`` of a model without the
            head reduction, or a stack of ``model(x)`` calls).
        return_samples: classification heads only: return the per-draw
            probabilities ``(T, N, ...)`` instead of their mean.

    Returns:
        Gaussian/Student-t: :class:`RegressionPredictive`. Categorical/Bernoulli:
        float32 probabilities ``(N, ..., K)``, the mean over draws of the
        per-draw softmax/sigmoid (``(T, N, ..., K)`` with ``return_samples``).

    Example:
    >>> import numpy as np
    >>> draws = np.array([[[[0.0, 1.0]]], [[[2.0, 1.0]]]])   # T=2, N=1, units=1: (loc, scale)
    >>> p = predictive(GaussianHead(), draws)
    >>> p.mean.tolist(), p.aleatoric_variance.tolist(), p.epistemic_variance.tolist()
    ([[1.0]], [[1.0]], [[1.0]])
    >>> predictive(CategoricalHead(), np.zeros((4, 1, 2))).tolist()
    [[0.5, 0.5]]
    """
    head = output_head(model_or_head) if isinstance(model_or_head, keras.layers.Layer) else None
    if head is None:
        what = (
            f"{type(model_or_head).__name__} '{model_or_head.name}'"
            if isinstance(model_or_head, keras.layers.Layer)
            else repr(type(model_or_head).__name__)
        )
        raise ValueError(
            f"predictive: `model_or_head` must be a likelihood head or a model whose single output "
            f"layer is one, "
            f"got {what}."
        )
    return head._predictive(sample_params, bool(return_samples))

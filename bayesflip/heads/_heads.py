"""Likelihood head layers: :class:`Head` and :class:`GaussianHead`, :class:`StudentTHead`,
:class:`CategoricalHead`, :class:`BernoulliHead`."""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_positive_int, is_real
from bayesflip._predictive_core import LINKS, RegressionPredictive
from bayesflip._tfp import tfd
from bayesflip._typing import ArrayLike
from bayesflip.heads._common import _PACKAGE, _shape
from bayesflip.heads._losses import BernoulliNLL, CategoricalNLL, GaussianNLL, StudentTNLL, _HeadNLL
from bayesflip.random import softplus_inverse

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


# --------------------------------------------------------------------------- protocol
#: What a model's output can predict (:attr:`PredictiveSpec.task`, ``bayesflip.export(task=)``):
#: ``"classification"`` (categorical probabilities over the last axis), ``"binary"``
#: (independent Bernoulli probabilities per unit) or ``"regression"``.
TASKS: tuple[str, ...] = ("classification", "binary", "regression")


class PredictiveSpec(NamedTuple):
    """How Monte Carlo draws of a model's output are sampled and summarised.

    The protocol between a :class:`Head` and the code that samples it
    (:func:`bayesflip.uncertainty.mc_predict`, :func:`bayesflip.export`): a
    head describes itself with :attr:`Head.predictive_spec` and reduces draws
    with :meth:`Head.predictive`; the samplers read nothing else of it.

    Example:
    >>> GaussianHead().predictive_spec
    PredictiveSpec(task='regression', link=None, num_params=2)
    >>> CategoricalHead().predictive_spec
    PredictiveSpec(task='classification', link='softmax', num_params=None)
    """

    #: ``"classification"``, ``"binary"`` or ``"regression"`` (one of :data:`TASKS`).
    task: Literal["classification", "binary", "regression"]
    #: Inverse link applied to each draw before averaging (``"softmax"``, ``"sigmoid"``),
    #: or ``None`` (the draws are averaged as they are).
    link: Literal["softmax", "sigmoid"] | None = None
    #: For a distributional regression output, the parameters per unit on its last axis
    #: (``[loc, scale]``: 2, ``[loc, scale, df]``: 3); ``None`` for any other output.
    num_params: int | None = None


# --------------------------------------------------------------------------- heads
class Head(keras.layers.Layer):
    """Base class of likelihood heads (the last layer of a model).

    Subclasses set ``_loss_class`` (whose ``_distribution(owner, params)``
    builds the distribution from the head's output, for the head and the loss
    alike) and implement the Monte Carlo protocol: :attr:`predictive_spec` and
    :meth:`predictive`.
    """

    _loss_class: type[_HeadNLL]

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

    @property
    def predictive_spec(self) -> PredictiveSpec:
        """The head's :class:`PredictiveSpec`: its task, per-draw link and parameters per unit."""
        raise NotImplementedError  # pragma: no cover - abstract

    def predictive(
        self, sample_params: ArrayLike, return_samples: bool = False
    ) -> RegressionPredictive | np.ndarray:
        """Reduce ``T`` Monte Carlo draws of the head's output (sample axis first) to its predictive.

        Args:
            sample_params: the draws, ``(T, N, ..., units, 2 | 3)`` for regression
                heads, logits ``(T, N, ..., K)`` for classification heads.
            return_samples: classification heads: the per-draw probabilities
                instead of their mean (ignored by regression heads).

        Returns:
            A :class:`~bayesflip.heads.RegressionPredictive` (regression heads), or
            float32 probabilities (classification heads). See :func:`bayesflip.heads.predictive`.
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
                initializer=keras.initializers.Constant(softplus_inverse(self.init_scale - self.min_scale)),
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

    @property
    def predictive_spec(self) -> PredictiveSpec:
        return PredictiveSpec("regression", None, self._num_params)

    def predictive(self, sample_params: ArrayLike, return_samples: bool = False) -> RegressionPredictive:
        owner = f"{self._owner} predictive"
        num_params = self._num_params
        s = np.asarray(sample_params.numpy() if tf.is_tensor(sample_params) else sample_params)
        if s.ndim < 4 or s.shape[-1] != num_params:
            raise ValueError(
                f"{owner}: expected MC draws of the head's output with shape "
                f"(num_samples, N, ..., units, {num_params}), "
                f"got shape {s.shape}."
            )
        s64 = s.astype(np.float64)
        if not np.all(np.isfinite(s64)):
            raise ValueError(f"{owner}: the draws contain NaN or infinite values.")
        scale = s64[..., 1]
        if np.any(scale <= 0):
            raise ValueError(f"{owner}: every scale must be > 0, got a minimum of {scale.min():.4g}.")
        return RegressionPredictive.from_draws(s)


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
                initializer=keras.initializers.Constant(softplus_inverse(_INIT_DF - 2.0 - _DF_FLOOR)),
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

    _task: Literal["classification", "binary"]  # set by each subclass
    _link: Literal["softmax", "sigmoid"]  # the inverse link of each subclass
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

    @property
    def predictive_spec(self) -> PredictiveSpec:
        return PredictiveSpec(self._task, self._link, None)

    def predictive(self, sample_params: ArrayLike, return_samples: bool = False) -> np.ndarray:
        owner = f"{self._owner} predictive"
        s = tf.convert_to_tensor(sample_params, dtype_hint=tf.float32)
        if s.shape.rank is None or s.shape.rank < 3:
            raise ValueError(
                f"{owner}: expected MC draws of logits with shape "
                f"(num_samples, N, ..., {self._last_dim_name}), "
                f"got shape {_shape(s)}."
            )
        probs = LINKS[self._link](tf.cast(s, tf.float32))
        return (probs if return_samples else tf.reduce_mean(probs, axis=0)).numpy()


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

    _task = "classification"
    _link = "softmax"
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

    _task = "binary"
    _link = "sigmoid"
    _loss_class = BernoulliNLL
    _last_dim_name = "units"
    _hint = ""

"""Serializable priors over weights.

A prior is a small Keras-serializable object that builds a
``tfp.distributions.Distribution`` with the shape of the weight it governs.
The KL term of a layer is analytic whenever ``tfp.distributions.kl_divergence``
knows the (posterior, prior) pair, and a single-sample Monte Carlo estimate
otherwise (see :func:`bayesflip.layers.GaussianPosterior.kl_divergence`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import keras
import tensorflow as tf

from bayesflip._checks import is_real, resolve_registered
from bayesflip._tfp import tfd

__all__ = [
    "Prior",
    "Normal",
    "ScaleMixtureNormal",
    "TFPPrior",
    "Laplace",
    "StudentT",
    "LearnableNormal",
    "CenteredNormal",
    "get",
]

_PACKAGE = "bayesflip"


def _check_positive(owner: str, name: str, value: Any) -> float:
    if not is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a positive number, got {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive finite number, got {value!r}.")
    return float(value)


def _check_finite(owner: str, name: str, value: Any) -> float:
    if not is_real(value):
        raise TypeError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    return float(value)


class Prior:
    """Base class: a factory of a weight's prior distribution.

    Subclasses implement :meth:`distribution` and ``get_config``, and are
    registered with ``keras.saving.register_keras_serializable`` so that models
    holding them load with ``safe_mode=True``.
    """

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        """Return a distribution whose ``batch_shape`` is ``shape``."""
        raise NotImplementedError

    def build(self, layer: keras.layers.Layer, shape: Sequence[int], name: str) -> Prior | None:
        """Create any variables of the prior on ``layer`` (learnable priors).

        Called once per Bayesian weight ``name`` of ``layer``. A prior with
        per-weight state returns a prior bound to that state, which the
        weight's posterior then uses; stateless priors return ``None``.
        """
        return None

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:  # pragma: no cover - priors are small value objects
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Normal(Prior):
    """Fully factorized Gaussian prior ``N(loc, scale²)`` on every weight.

    KL against the Gaussian posterior is analytic.

    Args:
        loc: prior mean.
        scale: prior standard deviation (> 0).

    Example:
    >>> Normal(0.0, 1.0).distribution([2, 3]).batch_shape
    TensorShape([2, 3])
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        self.loc = _check_finite("Normal prior", "loc", loc)
        self.scale = _check_positive("Normal prior", "scale", scale)

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        loc = tf.fill(shape, tf.constant(self.loc, dtype))
        return tfd.Normal(loc=loc, scale=tf.constant(self.scale, dtype))

    def kl_from_normal(self, loc: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
        """``sum KL(N(loc, scale²) ‖ self)`` over all elements.

        The closed form of ``tfd.kl_divergence`` for this pair (tested against
        it, values and gradients), with a hand-written gradient: it runs on every
        training step, and this keeps the op count low and no weight-sized
        temporaries alive until the backward pass.
        """
        return _normal_kl_sum(loc, scale, self.loc, self.scale)

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "scale": self.scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaleMixtureNormal(Prior):
    """Scale mixture of two zero-mean Gaussians (Blundell et al., 2015).

    ``p(w) = pi · N(0, scale_1²) + (1 - pi) · N(0, scale_2²)``; typically
    ``scale_1 > scale_2`` gives a heavy-tailed prior with a spike at zero. No
    analytic KL exists against a Gaussian posterior, so the KL term is a
    (unbiased) Monte Carlo estimate.

    Args:
        pi: mixture weight of the first component, in (0, 1).
        scale_1: standard deviation of the first component (> 0).
        scale_2: standard deviation of the second component (> 0).

    Example:
    >>> p = ScaleMixtureNormal(0.5, 1.0, 0.0025)
    >>> float(p.distribution([1]).log_prob([0.0])[0]) > 0
    True
    """

    def __init__(self, pi: float = 0.5, scale_1: float = 1.0, scale_2: float = 0.0025):
        pi = _check_finite("ScaleMixtureNormal prior", "pi", pi)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"ScaleMixtureNormal prior: `pi` must lie in (0, 1), got {pi!r}.")
        self.pi = pi
        self.scale_1 = _check_positive("ScaleMixtureNormal prior", "scale_1", scale_1)
        self.scale_2 = _check_positive("ScaleMixtureNormal prior", "scale_2", scale_2)

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        shape = list(shape)
        probs = tf.constant([self.pi, 1.0 - self.pi], dtype)
        scales = tf.constant([self.scale_1, self.scale_2], dtype)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(probs=tf.broadcast_to(probs, shape + [2])),
            components_distribution=tfd.Normal(
                loc=tf.zeros(shape + [2], dtype), scale=tf.broadcast_to(scales, shape + [2])
            ),
        )

    def get_config(self) -> dict[str, Any]:
        return {"pi": self.pi, "scale_1": self.scale_1, "scale_2": self.scale_2}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TFPPrior(Prior):
    """Any univariate ``tfp.distributions`` family as a serializable prior.

    ``TFPPrior("Laplace", loc=0.0, scale=0.1)`` puts an independent
    ``tfd.Laplace(0, 0.1)`` on every weight. The distribution is named by its
    class name in ``tfp.distributions`` and its parameters are plain numbers,
    so the config is JSON and a ``.keras`` file holding it loads with
    ``safe_mode=True``. The KL term is analytic when TFP knows
    ``KL(Normal ‖ family)`` and a single-sample Monte Carlo estimate otherwise.

    Args:
        distribution: class name in ``tfp.distributions`` (``"Laplace"``,
            ``"StudentT"``, ``"Cauchy"``, ``"Normal"`` …) of a univariate
            distribution over the real line.
        **parameters: its numeric constructor arguments.

    Example:
    >>> p = TFPPrior("Laplace", loc=0.0, scale=0.5)
    >>> p.distribution([2, 3]).batch_shape
    TensorShape([2, 3])
    >>> round(float(p.distribution([]).log_prob(0.0)), 4)  # log(1 / (2 * 0.5))
    0.0
    """

    def __init__(self, distribution: str, **parameters: float):
        owner = "TFPPrior"
        if not isinstance(distribution, str):
            raise TypeError(
                f"{owner}: `distribution` must be a tfp.distributions class name, got {distribution!r}."
            )
        family = getattr(tfd, distribution, None)
        if not (isinstance(family, type) and issubclass(family, tfd.Distribution)):
            raise ValueError(
                f"{owner}: `distribution` must name a class of tfp.distributions, got {distribution!r}."
            )
        for name, value in parameters.items():
            if not is_real(value) or not math.isfinite(value):
                raise TypeError(f"{owner}: parameter `{name}` must be a finite number, got {value!r}.")
        self.distribution_name = distribution
        self.parameters = {k: float(v) for k, v in parameters.items()}
        try:
            probe = family(**self.parameters, validate_args=True)
            log_p = float(probe.log_prob(0.0))
        except Exception as err:  # noqa: BLE001 - TFP raises many kinds of errors
            raise ValueError(
                f"{owner}: cannot build tfp.distributions.{distribution}(**{self.parameters}): {err}"
            ) from None
        if probe.event_shape.rank != 0 or probe.batch_shape.rank != 0:
            raise ValueError(
                f"{owner}: {distribution} with {self.parameters} is not a scalar univariate distribution "
                f"(event shape {probe.event_shape}, batch shape {probe.batch_shape})."
            )
        if not math.isfinite(log_p):
            raise ValueError(
                f"{owner}: {distribution} with {self.parameters} has no finite density at 0; a prior over "
                "weights must support the whole real line."
            )
        self._family = family

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        params = {k: tf.fill(shape, tf.constant(v, dtype)) for k, v in self.parameters.items()}
        if not params:
            return tfd.BatchBroadcast(self._family(), shape)
        return self._family(**params)

    def get_config(self) -> dict[str, Any]:
        return {"distribution": self.distribution_name, **self.parameters}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        config = dict(config)
        return cls(config.pop("distribution"), **config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Laplace(TFPPrior):
    """Laplace prior ``p(w) ∝ exp(-|w - loc| / scale)`` (sparsity-promoting; Monte Carlo KL).

    Args:
        loc: location.
        scale: scale (> 0).

    Example:
    >>> Laplace(0.0, 0.1)
    Laplace(loc=0.0, scale=0.1)
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        loc = _check_finite("Laplace prior", "loc", loc)
        scale = _check_positive("Laplace prior", "scale", scale)
        super().__init__("Laplace", loc=loc, scale=scale)
        self.loc, self.scale = loc, scale

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "scale": self.scale}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StudentT(TFPPrior):
    """Heavy-tailed Student-t prior (``df=1`` is the Cauchy; Monte Carlo KL).

    Args:
        df: degrees of freedom (> 0).
        loc: location.
        scale: scale (> 0).

    Example:
    >>> StudentT(3.0).distribution([4]).batch_shape
    TensorShape([4])
    """

    def __init__(self, df: float = 3.0, loc: float = 0.0, scale: float = 1.0):
        df = _check_positive("StudentT prior", "df", df)
        loc = _check_finite("StudentT prior", "loc", loc)
        scale = _check_positive("StudentT prior", "scale", scale)
        super().__init__("StudentT", df=df, loc=loc, scale=scale)
        self.df, self.loc, self.scale = df, loc, scale

    def get_config(self) -> dict[str, Any]:
        return {"df": self.df, "loc": self.loc, "scale": self.scale}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LearnableNormal(Prior):
    """Gaussian prior whose scale (and optionally mean) is learned: empirical Bayes.

    Each Bayesian weight tensor ``W`` of a layer gets its own scalar prior
    ``N(m_W, s_W²)`` with ``s_W = 1e-6 + softplus(ρ_W)``; ``ρ_W`` (and ``m_W``
    when ``learn_loc``) are trainable variables of the layer, named
    ``{weight}_prior_rho`` / ``{weight}_prior_loc``, saved with the model and
    trained by the same optimizer through the (analytic) KL term. For a fixed
    posterior the KL is minimised by ``s_W² = mean((μ - m_W)² + σ²)``.

    Args:
        loc: initial (or fixed) prior mean.
        scale: initial prior standard deviation (> 0).
        learn_loc: whether the mean is learned too.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(2, prior=LearnableNormal(scale=0.5), seed=0)
    >>> _ = layer(np.ones((1, 3), "float32"))
    >>> sorted(w.path.split("/")[-1] for w in layer.trainable_weights if "prior" in w.path)
    ['kernel_prior_rho']
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0, learn_loc: bool = False):
        self.loc = _check_finite("LearnableNormal prior", "loc", loc)
        self.scale = _check_positive("LearnableNormal prior", "scale", scale)
        if not isinstance(learn_loc, bool):
            raise TypeError(f"LearnableNormal prior: `learn_loc` must be a bool, got {learn_loc!r}.")
        self.learn_loc = learn_loc

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        """The prior at its initial values (the learned one lives on each layer)."""
        return Normal(self.loc, self.scale).distribution(shape, dtype)

    def build(self, layer: keras.layers.Layer, shape: Sequence[int], name: str) -> Prior:
        """Create this weight's prior variables on ``layer``; returns the bound prior."""
        rho = layer.add_weight(
            name=f"{name}_prior_rho",
            shape=(),
            initializer=keras.initializers.Constant(self.scale + math.log(-math.expm1(-self.scale))),
            trainable=True,
        )
        loc = None
        if self.learn_loc:
            loc = layer.add_weight(
                name=f"{name}_prior_loc",
                shape=(),
                initializer=keras.initializers.Constant(self.loc),
                trainable=True,
            )
        return _BoundLearnableNormal(self, rho, loc)

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "scale": self.scale, "learn_loc": self.learn_loc}


class _BoundLearnableNormal(Prior):
    """A :class:`LearnableNormal` bound to one weight's variables (not serialized)."""

    def __init__(self, spec: LearnableNormal, rho, loc):
        self.spec, self.rho, self.loc_variable = spec, rho, loc

    def scale(self, dtype: str | tf.DType = "float32") -> tf.Tensor:
        return 1e-6 + tf.nn.softplus(tf.cast(tf.convert_to_tensor(self.rho.value), dtype))

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        if self.loc_variable is None:
            loc = tf.fill(shape, tf.constant(self.spec.loc, dtype))
        else:
            loc = tf.fill(shape, tf.cast(tf.convert_to_tensor(self.loc_variable.value), dtype))
        return tfd.Normal(loc=loc, scale=self.scale(dtype))

    def get_config(self) -> dict[str, Any]:
        return self.spec.get_config()

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CenteredNormal(Prior):
    """Gaussian prior ``N(w₀, scale²)`` centred on per-weight values ``w₀``.

    ``w₀`` is stored on the layer as a non-trainable variable
    ``{weight}_prior_loc`` with the weight's shape (initialised to zero), so it
    is saved with the model. :func:`bayesflip.convert.to_bayesian` sets it to
    a deterministic network's trained weights (the MOPED prior of Krishnan et
    al. 2020). The KL term is analytic.

    Args:
        scale: prior standard deviation (> 0).

    Example:
    >>> import numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(2, prior=CenteredNormal(0.1), seed=0)
    >>> _ = layer(np.ones((1, 3), "float32"))
    >>> tuple(layer.kernel_posterior.prior.loc_variable.shape)
    (3, 2)
    """

    def __init__(self, scale: float = 1.0):
        self.scale = _check_positive("CenteredNormal prior", "scale", scale)

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        """The prior before its centre is set (centred on zero)."""
        return Normal(0.0, self.scale).distribution(shape, dtype)

    def build(self, layer: keras.layers.Layer, shape: Sequence[int], name: str) -> Prior:
        """Create this weight's centre ``{name}_prior_loc`` on ``layer``; returns the bound prior."""
        loc = layer.add_weight(name=f"{name}_prior_loc", shape=shape, initializer="zeros", trainable=False)
        return _BoundCenteredNormal(self, loc)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale}


class _BoundCenteredNormal(Prior):
    """A :class:`CenteredNormal` bound to one weight's centre variable (not serialized)."""

    def __init__(self, spec: CenteredNormal, loc):
        self.spec, self.loc_variable = spec, loc

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        loc = tf.cast(tf.convert_to_tensor(self.loc_variable.value), dtype)
        return tfd.Normal(loc=loc, scale=tf.constant(self.spec.scale, dtype))

    def get_config(self) -> dict[str, Any]:
        return self.spec.get_config()

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


def _normal_kl_sum(loc, scale, prior_loc: float, prior_scale: float) -> tf.Tensor:
    inv_var = 1.0 / prior_scale**2
    const = math.log(prior_scale) - 0.5

    @tf.custom_gradient
    def kl(loc, scale):
        centred = loc - prior_loc if prior_loc else loc
        n = tf.cast(tf.size(loc), loc.dtype)
        value = (
            0.5 * inv_var * (tf.reduce_sum(tf.square(scale)) + tf.reduce_sum(tf.square(centred)))
            - tf.reduce_sum(tf.math.log(scale))
            + n * const
        )

        def grad(upstream):
            d_loc = (upstream * inv_var) * (loc - prior_loc if prior_loc else loc)
            d_scale = upstream * (inv_var * scale - tf.math.reciprocal(scale))
            return d_loc, d_scale

        return value, grad

    return kl(loc, scale)


_ALIASES = {
    "normal": Normal,
    "scale_mixture_normal": ScaleMixtureNormal,
    "laplace": Laplace,
    "student_t": StudentT,
    "learnable_normal": LearnableNormal,
    "centered_normal": CenteredNormal,
}


def get(identifier: Any, caller: str | None = None) -> Prior:
    """Resolve a prior from an instance, a name, a config dict, or ``None``.

    ``None`` gives the default ``Normal(0, 1)``. Errors name ``caller`` (e.g. a layer's
    ``"DenseFlipout 'dense'"``; default ``"priors.get"``) and the argument ``prior``.

    Example:
    >>> get("normal")
    Normal(loc=0.0, scale=1.0)
    """
    if identifier is None:
        return Normal()
    who = f"{caller or 'priors.get'}: invalid `prior`"
    return resolve_registered(identifier, base=Prior, aliases=_ALIASES, who=who, kind="prior")

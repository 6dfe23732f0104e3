"""Serializable priors over weights.

A prior is a small Keras-serializable object that builds a
``tfp.distributions.Distribution`` with the shape of the weight it governs.
The KL term of a layer is analytic whenever ``tfp.distributions.kl_divergence``
knows the (posterior, prior) pair, and a single-sample Monte Carlo estimate
otherwise (see :func:`bayesflip.layers.GaussianPosterior.kl_divergence`).
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from bayesflip._tfp import tfd

__all__ = ["Prior", "Normal", "ScaleMixtureNormal", "get"]

_PACKAGE = "bayesflip"


def _check_positive(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: `{name}` must be a positive number, got {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{owner}: `{name}` must be a positive finite number, got {value!r}.")
    return float(value)


def _check_finite(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: `{name}` must be a finite number, got {value!r}.")
    return float(value)


class Prior:
    """Base class: a factory of a weight's prior distribution.

    Subclasses implement :meth:`distribution` and :meth:`get_config`, and are
    registered with ``keras.saving.register_keras_serializable`` so that models
    holding them load with ``safe_mode=True``.
    """

    def distribution(self, shape, dtype="float32") -> tfd.Distribution:
        """Return a distribution whose ``batch_shape`` is ``shape``."""
        raise NotImplementedError

    def build(self, layer: keras.layers.Layer, shape, name: str) -> None:
        """Create any variables of the prior on ``layer`` (learnable priors)."""

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> "Prior":
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

    def distribution(self, shape, dtype="float32"):
        loc = tf.fill(shape, tf.constant(self.loc, dtype))
        return tfd.Normal(loc=loc, scale=tf.constant(self.scale, dtype))

    def kl_from_normal_sum(self, loc: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
        """``sum KL(N(loc, scale²) ‖ self)``: the closed form of
        ``tfd.kl_divergence`` for this pair (tested against it), written with
        fewer ops because it runs on every training step.
        """
        n = tf.cast(tf.size(loc), loc.dtype)
        quad = tf.reduce_sum(tf.square(scale) + tf.square(loc - self.loc)) / (2.0 * self.scale**2)
        return quad - tf.reduce_sum(tf.math.log(scale)) + n * (math.log(self.scale) - 0.5)

    def get_config(self):
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

    def distribution(self, shape, dtype="float32"):
        shape = list(shape)
        probs = tf.constant([self.pi, 1.0 - self.pi], dtype)
        scales = tf.constant([self.scale_1, self.scale_2], dtype)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(probs=tf.broadcast_to(probs, shape + [2])),
            components_distribution=tfd.Normal(
                loc=tf.zeros(shape + [2], dtype), scale=tf.broadcast_to(scales, shape + [2])
            ),
        )

    def get_config(self):
        return {"pi": self.pi, "scale_1": self.scale_1, "scale_2": self.scale_2}


_ALIASES = {"normal": Normal, "scale_mixture_normal": ScaleMixtureNormal}


def get(identifier: Any) -> Prior:
    """Resolve a prior from an instance, a name, a config dict, or ``None``.

    ``None`` gives the default ``Normal(0, 1)``.

    Example:
    >>> get("normal")
    Normal(loc=0.0, scale=1.0)
    """
    if identifier is None:
        return Normal()
    if isinstance(identifier, Prior):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _ALIASES:
            raise ValueError(
                f"Unknown prior {identifier!r}; expected one of {sorted(_ALIASES)} or a "
                "bayesflip.priors.Prior instance."
            )
        return _ALIASES[key]()
    if isinstance(identifier, dict):
        obj = keras.saving.deserialize_keras_object(identifier)
        if not isinstance(obj, Prior):
            raise TypeError(f"Config {identifier!r} does not describe a bayesflip prior.")
        return obj
    raise TypeError(
        f"A prior must be a bayesflip.priors.Prior, a name or a config dict, got {identifier!r}."
    )

"""Priors with variables on the layer: ``LearnableNormal`` (empirical Bayes) and ``CenteredNormal``
(MOPED), and the per-weight priors they bind (re-exported by ``bayesflip.priors``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from bayesflip import random as rnd
from bayesflip._checks import check_real
from bayesflip._tfp import tfd
from bayesflip.priors._base import _PACKAGE, Prior
from bayesflip.priors._fixed import Normal


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
        self.loc = check_real("LearnableNormal prior", "loc", loc)
        self.scale = check_real("LearnableNormal prior", "scale", scale, low=0)
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
            initializer=keras.initializers.Constant(rnd.softplus_inverse(self.scale)),
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
        self.scale = check_real("CenteredNormal prior", "scale", scale, low=0)

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

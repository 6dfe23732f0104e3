"""Multiplicative Gaussian weight noise ``W = θ ∘ (1 + √α ε)`` and its sparsity.

:class:`MultiplicativePosterior` is the per-weight posterior of Gaussian
DropConnect (fixed ``α``, no KL) and of variational dropout (learned ``α``,
Molchanov et al.'s log-uniform KL, :func:`log_uniform_kl`); :func:`sparsity`
counts the weights variational dropout prunes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip._keras_compat import flatten_layers
from bayesflip.posteriors._gaussian import WeightPosterior

#: Published constants of the log-uniform KL approximation (Molchanov et al. 2017, eq. 14).
MOLCHANOV_K1, MOLCHANOV_K2, MOLCHANOV_K3 = 0.63576, 1.87320, 1.48695
#: ``log α`` range of variational dropout (as Molchanov et al.'s code clips it).
LOG_ALPHA_RANGE = (-8.0, 8.0)
_EPS = 1e-8


def _log_square(theta: tf.Tensor) -> tf.Tensor:
    """``log θ²`` (``θ² + 1e-8``: finite at ``θ = 0``), the ``θ`` side of ``log α = log σ² − log θ²``."""
    return tf.math.log(tf.square(theta) + _EPS)


def log_uniform_kl(log_alpha: tf.Tensor) -> tf.Tensor:
    """Elementwise ``KL(N(θ, αθ²) ‖ log-uniform)``, Molchanov et al.'s approximation (eq. 14).

    ``KL ≈ k1 − k1 σ(k2 + k3 log α) + ½ log(1 + 1/α)``, with ``k1, k2, k3 =
    0.63576, 1.87320, 1.48695``; it tends to 0 as ``α → ∞`` and its error
    against the exact (improper-prior) KL is below 0.01 nats up to a constant.

    Args:
        log_alpha: ``log α`` (any shape, float32).

    Returns:
        The KL of each entry, same shape.

    Example:
    >>> log_uniform_kl(tf.constant([-8.0, 0.0, 8.0])).numpy().round(3)
    array([4.636, 0.431, 0.   ], dtype=float32)
    """
    log_alpha = tf.convert_to_tensor(log_alpha, tf.float32)
    neg_kl = (
        MOLCHANOV_K1 * tf.sigmoid(MOLCHANOV_K2 + MOLCHANOV_K3 * log_alpha)
        - 0.5 * tf.math.softplus(-log_alpha)
        - MOLCHANOV_K1
    )
    return -neg_kl


class MultiplicativePosterior(WeightPosterior):
    """``W = θ ∘ (1 + √α ε)``: Gaussian DropConnect (fixed ``α``) or variational dropout (learned).

    Variables on ``layer``: ``<name>_loc`` (``θ``) and, when ``α`` is learned,
    ``<name>_log_sigma2`` (per weight: ``log α = log σ² − log θ²``, the
    additive reparameterisation of Molchanov et al. 2017, whose gradient
    w.r.t. ``θ`` carries no noise) or ``<name>_log_alpha`` (per unit, one per
    slice along ``output_axis``, Kingma et al. 2015). ``log α`` is clipped to
    ``[-8, 8]`` wherever it is used.

    Args:
        layer: the owning Keras layer.
        name: weight name.
        shape: weight shape.
        loc_initializer: Keras initializer of ``θ``.
        fixed_alpha: Gaussian DropConnect's ``α``; ``None`` learns ``α`` (variational dropout).
        granularity: a learned ``α`` per ``"weight"`` or per ``"unit"``.
        init_log_alpha: a learned ``log α`` at initialisation.
        prune_threshold: prune weights with a learned ``log α`` above it in
            posterior-mean mode (``None``: never).
        output_axis: axis of the output units (per-unit ``α``).

    :class:`~bayesflip.posteriors.GaussianDropConnect` and
    :class:`~bayesflip.posteriors.VariationalDropout` build it from their settings.
    """

    def __init__(
        self,
        layer,
        name: str,
        shape,
        loc_initializer,
        *,
        fixed_alpha: float | None = None,
        granularity: str = "weight",
        init_log_alpha: float = -4.0,
        prune_threshold: float | None = None,
        output_axis: int = -1,
    ):
        self.name = name
        self.shape = tuple(shape)
        self.loc = layer.add_weight(
            name=f"{name}_loc", shape=shape, initializer=loc_initializer, trainable=True, autocast=False
        )
        #: The fixed ``α`` of Gaussian DropConnect, ``None`` when ``α`` is learned.
        self.fixed_alpha: float | None = fixed_alpha
        #: Variational dropout's ``log α`` above which a weight is pruned (``None``: never, or ``α`` fixed).
        self.prune_threshold: float | None = None if fixed_alpha is not None else prune_threshold
        self.has_kl = fixed_alpha is None  # a learned α has the log-uniform KL
        self.output_axis = output_axis % len(self.shape) if self.shape else 0
        self.log_sigma2: Any = None
        self.log_alpha_unit: Any = None
        if fixed_alpha is not None:
            return
        if granularity == "weight":
            init = init_log_alpha
            loc = self.loc

            def log_sigma2_init(shape, dtype=None):  # log α₀ + log θ₀²: the same α₀ for every weight
                theta = tf.cast(tf.convert_to_tensor(loc.value), tf.float32)
                return tf.cast(init + _log_square(theta), dtype or "float32")

            self.log_sigma2 = layer.add_weight(
                name=f"{name}_log_sigma2",
                shape=shape,
                initializer=log_sigma2_init,
                trainable=True,
                autocast=False,
            )
        else:
            units = self.shape[self.output_axis] if self.shape else 1
            self.log_alpha_unit = layer.add_weight(
                name=f"{name}_log_alpha",
                shape=(units,),
                initializer=keras.initializers.Constant(init_log_alpha),
                trainable=True,
                autocast=False,
            )

    def log_alpha(self) -> tf.Tensor:
        """``log α`` of every weight (broadcast to the weight's shape), clipped, float32."""
        low, high = LOG_ALPHA_RANGE
        if self.fixed_alpha is not None:
            return tf.fill(self.shape, tf.constant(math.log(self.fixed_alpha), tf.float32))
        if self.log_sigma2 is not None:
            raw = tf.convert_to_tensor(self.log_sigma2.value, tf.float32) - _log_square(self.mean())
        else:
            per_unit = tf.convert_to_tensor(self.log_alpha_unit.value, tf.float32)
            shape = [1] * len(self.shape)
            if shape:
                shape[self.output_axis] = -1
            raw = tf.broadcast_to(tf.reshape(per_unit, shape), self.shape)
        return tf.clip_by_value(raw, low, high)

    def noise_scale(self) -> tf.Tensor:
        """``√α ∘ θ`` (so ``θ + ΔW = θ ∘ (1 + √α ε)``), float32."""
        if self.fixed_alpha is not None:
            return math.sqrt(self.fixed_alpha) * self.mean()
        if self.log_sigma2 is None:
            return tf.exp(0.5 * self.log_alpha()) * self.mean()
        # Per weight, σ² is the free parameter (the additive reparameterisation):
        # s = sign(θ) σ with log σ² kept within log θ² + [low, high], i.e. log α
        # clipped. min/max route the gradient to log σ² alone inside the range,
        # so ∂s/∂θ is exactly zero there, not zero up to rounding.
        low, high = LOG_ALPHA_RANGE
        theta = self.mean()
        log_theta2 = _log_square(theta)
        log_sigma2 = tf.convert_to_tensor(self.log_sigma2.value, tf.float32)
        log_sigma2 = tf.minimum(tf.maximum(log_sigma2, log_theta2 + low), log_theta2 + high)
        return tf.sign(theta) * tf.exp(0.5 * log_sigma2)

    def keep_mask(self) -> tf.Tensor:
        """1.0 where the weight is kept (``log α ≤ prune_threshold``), 0.0 where pruned."""
        if self.prune_threshold is None:
            return tf.ones(self.shape, tf.float32)
        return tf.cast(self.log_alpha() <= self.prune_threshold, tf.float32)

    def point_estimate(self) -> tf.Tensor:
        if self.prune_threshold is not None:
            return self.mean() * self.keep_mask()
        return self.mean()

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Sum of :func:`log_uniform_kl` over the weight (0 for a fixed ``α``)."""
        if not self.has_kl:
            return tf.constant(0.0, tf.float32)
        return tf.reduce_sum(log_uniform_kl(self.log_alpha()))


# ---------------------------------------------------------------------------
# Sparsity of variational dropout
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SparsityReport:
    """Weights pruned by variational dropout (``log α > prune_threshold``).

    Attributes:
        pruned: number of pruned weights.
        total: number of weights under a variational-dropout posterior that prunes (``prune_threshold`` set).
        by_weight: ``{"layer/weight": (pruned, total)}``.
    """

    pruned: int
    total: int
    by_weight: dict

    @property
    def fraction(self) -> float:
        """Fraction of weights pruned (0.0 when no weight has a learned ``α``)."""
        return self.pruned / self.total if self.total else 0.0


def sparsity(model: keras.layers.Layer) -> SparsityReport:
    """Count the weights that posterior-mean predictions prune (variational dropout only).

    Args:
        model: a built model or layer.

    Returns:
        A :class:`SparsityReport`.

    Example:
    >>> import numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(2, posterior="variational_dropout", seed=0)
    >>> _ = layer(np.ones((1, 3), "float32"))
    >>> sparsity(layer).fraction
    0.0
    """
    layers = flatten_layers(model, include_self=True)
    pruned = total = 0
    by_weight = {}
    for layer in layers:
        for post in getattr(layer, "posteriors", []):
            if not isinstance(post, MultiplicativePosterior) or post.prune_threshold is None:
                continue
            n = int(np.prod(post.shape))
            p = n - int(round(float(tf.reduce_sum(post.keep_mask()))))
            by_weight[f"{layer.name}/{post.name}"] = (p, n)
            pruned += p
            total += n
    return SparsityReport(pruned, total, by_weight)

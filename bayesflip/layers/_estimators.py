"""The estimators' arithmetic: one posterior draw of a layer's weights, applied to inputs.

:class:`Perturbation` is what one call draws (``ΔW = s ∘ ε`` per weight, the
flipout sign rows, the KL's inputs); :class:`LinearSample` applies a draw to
any number of inputs: ``op(x, W)`` for the posterior mean or the ``shared``
estimator, ``op(x, loc) + op(x ∘ S, ΔW) ∘ R`` for ``flipout``. The layer
that draws and chooses is :class:`~bayesflip.layers.VariationalLayer`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow as tf

__all__ = ["ESTIMATORS", "LinearSample", "Perturbation", "broadcast_signs"]

#: The weight-sampling estimators a variational layer accepts as ``estimator=``: ``"flipout"``
#: (per-example pseudo-independent perturbations), ``"shared"`` (one weight sample per
#: mini-batch) and ``"local"`` (local reparameterization, sampling the pre-activations).
ESTIMATORS = ("flipout", "shared", "local")


def broadcast_signs(signs: tf.Tensor, rank: int, channel_axis: int = -1) -> tf.Tensor:
    """Reshape ``(batch, channels)`` signs to broadcast over the other axes of a rank-``rank`` tensor."""
    if rank == 2:
        return signs
    axis = channel_axis % rank
    shape = [-1] + [1] * (rank - 1)
    shape[axis] = signs.shape[-1]
    return tf.reshape(signs, shape)


def _add_bias(y: tf.Tensor, b: tf.Tensor, channel_axis: int) -> tf.Tensor:
    if channel_axis in (-1, y.shape.rank - 1):
        return y + b
    shape = [1] * y.shape.rank
    shape[channel_axis] = -1
    return y + tf.reshape(b, shape)


@dataclass
class Perturbation:
    """One posterior draw of a layer's Bayesian weights for one call (see ``begin_forward``).

    Attributes:
        kl_seed: seed of a Monte Carlo KL estimate.
        seeds: the call's seeds by weight slot (the ``local`` estimator draws
            its per-output noise from the kernel's).
        deltas: ``ΔW = scale ∘ ε`` by posterior name, compute dtype (empty for ``local``).
        signs: flipout sign rows ``(batch, w)``, one per requested width (empty
            unless the estimator is ``flipout``).
        scales: this call's posterior scales by name, float32 (shared with the KL).
        samples: float32 weight samples ``loc + ΔW`` by name, only for priors
            whose KL is a Monte Carlo estimate.
        factors: per-example factors by name
            (:class:`~bayesflip.posteriors.ExampleFactors`), for families that
            draw them instead of a shared ``ΔW`` (rank-1).
        kls: KL terms by name computed together with the draw
            (:meth:`~bayesflip.posteriors.WeightPosterior.sample_delta_and_kl`).
    """

    kl_seed: tf.Tensor
    seeds: dict = field(default_factory=dict)
    deltas: dict = field(default_factory=dict)
    signs: tuple = ()
    scales: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    factors: dict = field(default_factory=dict)
    kls: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LinearSample:
    """The weights of one linear op for one call: apply it to any number of inputs.

    ``sample(op, x)`` is ``op(x, weight) (+ bias)`` when ``delta`` is ``None``
    (posterior mean, or the ``shared`` estimator's ``weight = loc + ΔW``), else
    the flipout form ``op(x, loc) + (op(x ∘ S, ΔW) + Δb) ∘ R + b``. ``S``/``R``
    are ``(batch, channels)`` rows broadcast over every other axis; an input
    side without signs (``sign_in=None``, e.g. a lookup) skips ``S``.

    The same form with ``weight=None``, real-valued rows and a per-example
    bias is a rank-1 draw: ``op(x ∘ s, W) ∘ r + b_k + b`` (``delta = W``,
    ``sign_in = s``, ``sign_out = r``, ``example_bias = b_k``).
    """

    weight: tf.Tensor | None
    bias: tf.Tensor | None = None
    delta: tf.Tensor | None = None
    bias_delta: tf.Tensor | None = None
    sign_in: tf.Tensor | None = None
    sign_out: tf.Tensor | None = None
    example_bias: tf.Tensor | None = None

    def __call__(self, op: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], x: tf.Tensor, channel_axis: int = -1):
        y = None if self.weight is None else op(x, self.weight)
        if self.delta is not None:
            x_in = (
                x if self.sign_in is None else x * broadcast_signs(self.sign_in, x.shape.rank, channel_axis)
            )
            perturbation = op(x_in, self.delta)
            if self.bias_delta is not None:
                perturbation = _add_bias(perturbation, self.bias_delta, channel_axis)
            perturbation = perturbation * broadcast_signs(
                self.sign_out, perturbation.shape.rank, channel_axis
            )
            y = perturbation if y is None else y + perturbation
        if y is None:
            raise ValueError("LinearSample: neither a weight nor a perturbation to apply.")
        if self.example_bias is not None:
            y = y + broadcast_signs(self.example_bias, y.shape.rank, channel_axis)
        return y if self.bias is None else _add_bias(y, self.bias, channel_axis)


def _safe_sqrt(var: tf.Tensor) -> tf.Tensor:
    """``sqrt(max(var, 0))`` with a zero (not NaN) gradient where ``var <= 0``.

    The local estimator's pre-activation variance is exactly 0 for an all-zero
    input row (e.g. a blank image), where ``d sqrt(v)/dv`` is infinite and the
    chain rule gives ``inf · 0 = NaN`` for every ``rho``.
    """
    positive = var > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, var, tf.ones_like(var))), tf.zeros_like(var))

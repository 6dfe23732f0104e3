"""The per-weight posterior the variational core asks for, and the mean-field Gaussian one.

A :class:`WeightPosterior` holds the variables of one weight tensor of a layer
and answers the core's four questions: the mean ``θ``, the signed noise scale
``s`` of one draw ``ΔW = s ∘ ε``, the KL term, and the point estimate of
posterior-mean mode. :class:`GaussianPosterior` is the default family's
(``W ~ N(θ, σ²)``, KL against the layer's prior).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from bayesflip import priors as priors_lib
from bayesflip import random as rnd
from bayesflip._tfp import tfd

# ---------------------------------------------------------------------------
# Analytic KL availability (Gaussian posterior vs a prior)
# ---------------------------------------------------------------------------
# Weak keys: an entry lives as long as its prior. Priors bound to one layer's
# variables (``LearnableNormal``, ``CenteredNormal``) hash by identity, so a
# plain dict kept every such layer's prior — and its variables — alive forever.
_ANALYTIC_KL_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@tf.autograph.experimental.do_not_convert
def analytic_kl_available(prior: priors_lib.Prior | None) -> bool:
    """Whether TFP's KL registry has ``KL(Normal ‖ prior.distribution)`` (``False`` for no prior)."""
    if prior is None:
        return False
    # Keyed by the prior's value (priors hash by type and config): one class
    # such as ``TFPPrior`` may build families with and without an analytic KL.
    try:
        available = _ANALYTIC_KL_CACHE.get(prior)
    except TypeError:  # a prior that cannot be weakly referenced: not cached
        return _probe_analytic_kl(prior)
    if available is None:
        available = _probe_analytic_kl(prior)
        _ANALYTIC_KL_CACHE[prior] = available
    return available


@tf.autograph.experimental.do_not_convert
def _probe_analytic_kl(prior: priors_lib.Prior) -> bool:
    try:
        tfd.kl_divergence(tfd.Normal(0.0, 1.0), prior.distribution([], "float32"))
        return True
    except NotImplementedError:
        return False


@dataclass(frozen=True)
class ExampleFactors:
    """One call's per-example draw of a rank-1 weight: the output is ``op(x ∘ inputs, weight) ∘ outputs + bias``.

    Attributes:
        weight: the shared weight ``W`` (float32, the weight's shape).
        inputs: ``(batch, in_channels)`` factors ``s`` of each example's draw.
        outputs: ``(batch, out_channels)`` factors ``r``.
        bias: ``(batch, out_channels)`` per-example bias (its component's), or ``None``.
    """

    weight: tf.Tensor
    inputs: tf.Tensor
    outputs: tf.Tensor
    bias: tf.Tensor | None = None


class WeightPosterior:
    """The posterior of one weight tensor of a layer (built by a :class:`PosteriorFamily`).

    What the core needs of it: the mean ``θ`` (``loc``), one draw — ``ΔW``
    shared by the batch (:meth:`sample_delta`, by default ``s ∘ ε`` with the
    signed noise scale ``s`` of :meth:`noise_scale`, ``|s|`` the standard
    deviation) or, for a family with ``per_example = True``, per-example
    factors (:meth:`sample_factors`) — the KL term, and the point estimate
    used in posterior-mean mode. A family whose ``ΔW`` is not ``s ∘ ε`` with
    independent entries (a matrix-normal posterior) overrides
    :meth:`sample_delta` and leaves ``"local"`` out of its family's
    ``supported_estimators``: the estimators ``flipout`` and ``shared`` need
    only that ``ΔW`` is symmetric and shared by the batch.

    Attributes:
        name: weight name (``"kernel"``, ``"bias"`` …).
        shape: weight shape.
        loc: the Keras variable holding ``θ``.
        has_kl: whether :meth:`kl_divergence` can be non-zero.
        kl_needs_sample: whether the KL is a Monte Carlo estimate at a posterior draw.
    """

    name: str
    shape: tuple
    loc: Any
    has_kl: bool = True
    kl_needs_sample: bool = False
    #: Whether a draw is per-example factors (:meth:`sample_factors`) instead of a shared ``ΔW``.
    per_example: bool = False

    def mean(self) -> tf.Tensor:
        """Posterior mean ``θ``, float32."""
        return tf.convert_to_tensor(self.loc.value, tf.float32)

    def noise_scale(self) -> tf.Tensor:
        """Signed scale ``s`` of ``ΔW = s ∘ ε``, float32."""
        raise NotImplementedError

    def sample_delta(self, seed: tf.Tensor, scale: tf.Tensor | None = None) -> tf.Tensor:
        """One draw of ``ΔW`` shared by the batch, float32, the weight's shape.

        It must be symmetric in distribution (``ΔW`` and ``−ΔW`` equally likely),
        which is all flipout needs. The default is ``s ∘ ε``, ``ε ~ N(0, I)``
        from ``seed``, with ``scale`` this call's :meth:`noise_scale` (reused
        when given).
        """
        s = self.noise_scale() if scale is None else scale
        return s * rnd.standard_normal(self.shape, seed)

    def sample_delta_and_kl(self, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | None:
        """``(ΔW, KL)`` of one draw from one fused op, or ``None`` (the default) when not fused.

        A family that can compute the KL together with ``ΔW`` (and so keep fewer
        weight-sized tensors alive for the backward pass) returns both; the
        core then uses this KL instead of calling :meth:`kl_divergence`.
        Otherwise the core draws with :meth:`noise_scale` and :meth:`sample_delta`.
        """
        return None

    def sample_factors(
        self, batch_size: Any, seed: tf.Tensor, counter: tf.Tensor, independent: bool
    ) -> ExampleFactors:
        """One call's per-example draw (families with ``per_example = True`` only).

        Args:
            batch_size: number of examples (int or scalar tensor).
            seed: this weight's seed for the call.
            counter: the call's RNG counter (int64 scalar), the same in every
                layer of a forward pass: it addresses per-call choices that all
                layers must agree on (a mixture component).
            independent: ``True`` for a fresh draw per example (the ``flipout``
                estimator), ``False`` for one draw shared by the batch (``shared``).
        """
        raise NotImplementedError(f"{type(self).__name__} draws a shared ΔW, not per-example factors.")

    def point_estimate(self) -> tf.Tensor:
        """The weight used in posterior-mean mode, float32 (``θ`` unless pruned)."""
        return self.mean()

    def mean_output_offset(self) -> tf.Tensor | None:
        """A bias (float32, ``(out_channels,)``) added in posterior-mean mode, or ``None``.

        A mixture with a bias per component adds the components' mean bias.
        """
        return None

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``KL(q ‖ p)`` summed over the weight, float32."""
        raise NotImplementedError


#: Weights with at least this many entries (2**20: 4 MiB of float32) draw with the fused op and its
#: XLA backward pass (:meth:`GaussianPosterior.sample_delta_and_kl`). Below it the separate ops'
#: temporaries are small, and the fused op costs more than it saves: an XLA compile per weight
#: shape at the first step. On TFP's LeNet-5 example the fused op on every weight traced about
#: 0.35 s slower than the separate ops (medians of 4 interleaved fresh-process runs), and on its
#: one dense kernel of 493,920 entries alone 0.21 s slower (1.82 s against 1.61 s, medians of 5).
FUSED_MIN_SIZE = 2**20


class GaussianPosterior(WeightPosterior):
    """Mean-field Gaussian posterior over one weight tensor of a layer.

    Holds two trainable variables of ``layer``: ``loc`` and ``rho``, with
    ``scale = min_scale + softplus(rho)``; ``rho`` is initialised so that the
    initial scale equals ``init_scale``.

    Args:
        layer: the owning Keras layer (variables are created with ``add_weight``).
        name: weight name, e.g. ``"kernel"``; variables are ``kernel_loc``/``kernel_rho``.
        shape: weight shape.
        loc_initializer: Keras initializer of the posterior mean.
        init_scale: posterior standard deviation at initialisation (> min_scale).
        min_scale: floor of the posterior standard deviation (>= 0).
        prior: a :class:`bayesflip.priors.Prior`.
    """

    def __init__(self, layer, name: str, shape, loc_initializer, init_scale: float, min_scale: float, prior):
        self.name = name
        self.shape = tuple(shape)
        self.min_scale = float(min_scale)
        self.loc = layer.add_weight(
            name=f"{name}_loc", shape=shape, initializer=loc_initializer, trainable=True, autocast=False
        )
        self.rho = layer.add_weight(
            name=f"{name}_rho",
            shape=shape,
            initializer=keras.initializers.Constant(rnd.softplus_inverse(init_scale - min_scale)),
            trainable=True,
            # read in float32 even inside the autocast scope Keras opens for a
            # top-level call of a mixed-policy layer (it ignores autocast=False there)
            autocast=False,
        )
        # A prior with per-weight state (e.g. LearnableNormal) returns a prior
        # bound to the variables it created for this weight.
        self.prior = prior.build(layer, shape, name) or prior
        self.kl_needs_sample = not analytic_kl_available(self.prior)

    def scale(self) -> tf.Tensor:
        """Posterior standard deviation, float32."""
        return self.min_scale + tf.nn.softplus(tf.convert_to_tensor(self.rho.value, tf.float32))

    def noise_scale(self) -> tf.Tensor:
        return self.scale()

    def sample_delta_and_kl(self, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor] | None:
        """``ΔW = σ ∘ ε`` and the closed-form KL from one op with a hand-written gradient.

        Used for weights of at least ``FUSED_MIN_SIZE`` entries when the prior
        has a closed-form KL with a gradient formula
        (:meth:`bayesflip.priors.Normal.kl_from_normal_gradient`); ``None``
        otherwise (the core then calls ``sample_delta`` and ``kl_divergence``).
        The values are theirs, bit for bit. The backward pass keeps ``ε`` from
        the forward pass, recomputes ``σ = min_scale + softplus(ρ)`` and returns
        the gradients of ``θ`` and ``ρ`` as one XLA computation, a fused loop: as
        separate TensorFlow ops its temporaries (``σ``, its sigmoid, ``1/σ``,
        the KL's ``θ``-term), each the weight's size, met the weight gradients
        at the training step's peak memory. The gradients equal those of the
        separate ops up to float rounding (tested).
        """
        backward = self._fused_backward()
        if backward is None:
            return None
        kl_of, min_scale = self.prior.kl_from_normal, self.min_scale
        eps = rnd.standard_normal(self.shape, seed)

        @tf.custom_gradient
        def draw(loc, rho):
            scale = min_scale + tf.nn.softplus(rho)

            def grad(d_delta, d_kl):
                return backward(d_delta, d_kl, eps, loc, rho)

            return (scale * eps, kl_of(loc, scale)), grad

        return draw(self.mean(), tf.convert_to_tensor(self.rho.value, tf.float32))

    def _fused_backward(self):
        """The XLA backward pass of :meth:`sample_delta_and_kl` (built once), or ``None`` when not fused:
        ``(d_ΔW, d_KL, ε, θ, ρ) -> (d_θ, d_ρ)``."""
        if not hasattr(self, "_backward"):
            gradient_of_kl = getattr(self.prior, "kl_from_normal_gradient", None)
            large = math.prod(int(d) for d in self.shape) >= FUSED_MIN_SIZE
            if gradient_of_kl is None or self.kl_needs_sample or not large:
                self._backward = None
                return None
            min_scale = self.min_scale

            @tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
            def backward(d_delta, d_kl, eps, loc, rho):
                scale = min_scale + tf.nn.softplus(rho)
                d_loc, d_scale = gradient_of_kl(loc, scale, d_kl)
                return d_loc, (d_scale + d_delta * eps) * tf.math.sigmoid(rho)

            self._backward = backward
        return self._backward

    def distribution(self) -> tfd.Normal:
        return tfd.Normal(loc=self.mean(), scale=self.scale())

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``KL(q ‖ prior)`` summed over the weight, computed in float32.

        Analytic when the prior has a closed form (``kl_from_normal``) or TFP's
        KL registry knows the pair; otherwise the unbiased single-sample
        estimate ``log q(w) - log p(w)`` at ``sample`` (a posterior draw, e.g.
        the one used in the forward pass) or at a fresh draw from ``seed``.
        ``scale`` may pass the already computed :meth:`scale` of this call.
        """
        closed_form = getattr(self.prior, "kl_from_normal", None)
        if closed_form is not None:
            return closed_form(self.mean(), self.scale() if scale is None else scale)
        q = self.distribution()
        p = self.prior.distribution(self.shape, "float32")
        if analytic_kl_available(self.prior):
            return tf.reduce_sum(tfd.kl_divergence(q, p))
        if sample is None:
            if seed is None:
                raise ValueError(f"Monte Carlo KL of '{self.name}' needs a posterior sample or a seed.")
            sample = q.loc + q.scale * rnd.standard_normal(self.shape, seed)
        sample = tf.cast(sample, tf.float32)
        return tf.reduce_sum(q.log_prob(sample) - p.log_prob(sample))

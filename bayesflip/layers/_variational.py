"""The variational core shared by every bayesflip layer.

One place knows how to sample a linear op ``y = op(x, W)`` when ``W = loc + ΔW``
with a symmetric perturbation ``ΔW = s ∘ ε`` shared by the batch. The layer's
posterior family (:mod:`bayesflip.posteriors`) gives ``s``: ``scale = min_scale +
softplus(rho)`` for the default mean-field Gaussian, ``√α ∘ loc`` for the
multiplicative families (Gaussian DropConnect, variational dropout); the
estimators are the same for all:

=============  ==============================================  =========
estimator      forward                                         ops
=============  ==============================================  =========
``flipout``    ``op(x, loc) + op(x ∘ S, ΔW) ∘ R``               2
``shared``     ``op(x, loc + ΔW)`` (one draw for the batch)     1
``local``      ``op(x, loc) + sqrt(op(x², scale²)) ∘ η``         2
=============  ==============================================  =========

with ``ΔW = s ∘ ε`` (``scale = |s|``), ``ε ~ N(0, I)`` drawn once per call, ``S``/``R``
per-example random signs over the input/output channel axis (broadcast over
spatial or time axes) and ``η ~ N(0, I)`` per output element.

Layer classes are thin: ``build`` creates :class:`GaussianPosterior` weights and
``call`` hands its op to :meth:`VariationalLayer.sample_linear`. Layers that
apply one weight many times use its two halves: :meth:`VariationalLayer.begin_forward`
(the one prologue of every call: posterior-mean mode, one RNG advance, the
draw, the KL term) and :meth:`VariationalLayer.linear_sample`, a
:class:`LinearSample` that applies that draw to any input (every time step of
a recurrent layer, every position of an embedding). No other module branches
on the estimator: the draw's arithmetic is in ``_estimators.py``,
the checks of the layer's arguments in ``_layer_args.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from bayesflip import posteriors as posteriors_lib
from bayesflip import priors as priors_lib
from bayesflip import random as rnd
from bayesflip.layers._estimators import ESTIMATORS, LinearSample, Perturbation, _add_bias, _safe_sqrt
from bayesflip.layers._layer_args import (
    _check_estimator,
    _check_scale,
    _warn_when_differentiated,
    check_kl_weight,
)
from bayesflip.posteriors import GaussianPosterior, PosteriorFamily, WeightPosterior, analytic_kl_available
from bayesflip.priors import Prior

__all__ = [
    "ESTIMATORS",
    "GaussianPosterior",
    "LinearSample",
    "WeightPosterior",
    "Perturbation",
    "VariationalLayer",
    "analytic_kl_available",
]


class VariationalLayer(keras.layers.Layer):
    """Base class of bayesflip layers: posterior weights, KL term, RNG state, modes.

    Subclasses call ``add_posterior`` in ``build`` (once per Bayesian weight)
    and :meth:`sample_linear` in ``call``.

    Args:
        estimator: ``"flipout"`` (default), ``"shared"`` or ``"local"``.
        prior: prior of every Bayesian weight: a :mod:`bayesflip.priors` object,
            its name, or its config; default ``Normal(0, 1)``.
        init_scale: posterior standard deviation at initialisation.
        min_scale: floor added to ``softplus(rho)``.
        kl_weight: factor of the KL term added with ``add_loss``, usually
            ``1 / num_training_examples`` (see :func:`bayesflip.set_kl_weight`).
            Stored in a saved non-trainable variable. ``None`` (default) means
            *unset*: the layer then uses ``1.0`` — the KL of a one-example data
            set, which swamps the data term — and warns once, when the model is
            first differentiated (the first training step), with the exact fix.
            Pass ``kl_weight=1.0`` explicitly to use the unscaled KL silently.
        seed: seed of the layer's random stream; ``None`` draws one at random.
        posterior: the posterior family of the Bayesian weights
            (:mod:`bayesflip.posteriors`): ``"gaussian"`` (default, additive
            mean-field Gaussian), ``GaussianDropConnect(rate=p)`` (fixed
            multiplicative noise, no KL) or ``"variational_dropout"`` /
            ``VariationalDropout(...)`` (learned multiplicative noise, log-uniform
            prior). ``prior``, ``init_scale`` and ``min_scale`` configure the
            Gaussian family only; the multiplicative families refuse a ``prior``.
    """

    supported_estimators: tuple[str, ...] = ESTIMATORS
    #: Whether the layer can take a family that draws per-example factors
    #: (:class:`~bayesflip.posteriors.Rank1`): layers applying one linear op per call.
    accepts_per_example_posteriors: bool = True

    def __init__(
        self,
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        # Variables are read in float32 and cast to the compute dtype explicitly,
        # so the KL is always float32 under mixed precision.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        self.estimator = _check_estimator(owner, estimator, self.supported_estimators)
        self.posterior = posteriors_lib.get(posterior, caller=owner)
        self.prior: priors_lib.Prior | None
        if self.posterior.uses_prior:
            self.prior = priors_lib.get(prior, caller=owner)
        elif prior is not None:
            raise ValueError(
                f"{owner}: `prior` does not apply to posterior={self.posterior!r} (its prior is fixed by the "
                "family: log-uniform for variational dropout, none for Gaussian DropConnect, the factors' "
                "prior_mean/prior_scale for Rank1); drop `prior=`."
            )
        else:
            self.prior = None
        supported = self.posterior.supported_estimators
        if supported is not None and self.estimator not in supported:
            raise ValueError(
                f"{owner}: estimator={self.estimator!r} has no meaning for posterior={self.posterior!r}; "
                f"use one of {list(supported)}."
            )
        if self.posterior.per_example and not self.accepts_per_example_posteriors:
            raise ValueError(
                f"{owner}: posterior={self.posterior!r} draws per-example factors of one dense or "
                f"convolution kernel applied once per call; {type(self).__name__} applies its weights "
                "differently (per time step, by lookup or per channel) and does not support it. Use a "
                "Gaussian or multiplicative family here."
            )
        self.init_scale, self.min_scale = _check_scale(owner, init_scale, min_scale)
        #: Whether a KL weight was given (constructor, ``set_kl_weight``, annealing).
        self.kl_weight_is_set = kl_weight is not None
        self._initial_kl_weight = 1.0 if kl_weight is None else check_kl_weight(owner, kl_weight)
        self.seed = None if seed is None else rnd.resolve_seed(seed, caller=owner)
        self._resolved_seed = rnd.resolve_seed(seed, caller=owner)
        self.posteriors: list[WeightPosterior] = []
        #: When True, ``call`` returns the posterior-mean prediction (no sampling).
        #: Prefer :func:`bayesflip.posterior_mean` which also resets compiled functions.
        self.use_posterior_mean = False

    # ------------------------------------------------------------------ build
    @property
    def _owner(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def build_variational_state(self) -> None:
        """Create the saved ``kl_weight`` and ``rng_state`` variables."""
        self._kl_weight = self.add_weight(
            name="kl_weight",
            shape=(),
            dtype="float32",
            initializer=keras.initializers.Constant(self._initial_kl_weight),
            trainable=False,
            aggregation="only_first_replica",
        )
        self.rng_state = rnd.add_state_variable(self, self._resolved_seed)

    def add_posterior(self, name: str, shape, loc_initializer, output_axis: int = -1) -> WeightPosterior:
        """Create the posterior of one Bayesian weight with the layer's family.

        ``output_axis`` is the weight's axis of output units (per-unit noise of
        :class:`~bayesflip.posteriors.VariationalDropout`).
        """
        posterior = self.posterior.build(self, name, shape, loc_initializer, output_axis)
        self.posteriors.append(posterior)
        return posterior

    # --------------------------------------------------------------- kl_weight
    @property
    def kl_weight(self) -> float:
        if not self.built:
            return self._initial_kl_weight
        return float(self._kl_weight.numpy())  # .value is a MirroredVariable inside strategy.scope()

    @kl_weight.setter
    def kl_weight(self, value: float) -> None:
        value = check_kl_weight(self._owner, value)
        self._initial_kl_weight = value
        self.kl_weight_is_set = True
        if self.built:
            self._kl_weight.assign(value)

    def kl_divergence(
        self,
        samples: dict | None = None,
        seed: tf.Tensor | None = None,
        scales: dict | None = None,
        kls: dict | None = None,
    ) -> tf.Tensor:
        """Unweighted ``KL(q ‖ p)`` of all Bayesian weights of this layer (float32).

        ``samples``/``scales`` map weight names to this call's posterior draw and
        scale (reused instead of recomputed); ``kls`` to KL terms already
        computed with the draw (``sample_delta_and_kl``).
        """
        samples = samples or {}
        scales = scales or {}
        kls = kls or {}
        total = tf.constant(0.0, tf.float32)
        seeds = rnd.split_seed(seed, len(self.posteriors)) if seed is not None else None
        for i, post in enumerate(self.posteriors):
            if post.name in kls:
                total += kls[post.name]
                continue
            total += post.kl_divergence(
                sample=samples.get(post.name),
                seed=None if seeds is None else seeds[i],
                scale=scales.get(post.name),
            )
        return total

    # ------------------------------------------------------------------ input
    def cast_inputs(self, inputs) -> tf.Tensor:
        """Cast numeric inputs to the compute dtype; refuse anything else."""
        x = inputs
        if not tf.is_tensor(x):
            try:
                x = tf.convert_to_tensor(x)
            except (TypeError, ValueError) as err:
                raise TypeError(
                    f"{self._owner} expects numeric inputs, got {type(inputs).__name__}: {err}"
                ) from None
        dtype = tf.as_dtype(x.dtype)
        if not (dtype.is_floating or dtype.is_integer or dtype.is_bool):
            raise TypeError(
                f"{self._owner} expects numeric (float or integer) inputs, got dtype {dtype.name}."
            )
        return tf.cast(x, self.compute_dtype)

    # ------------------------------------------------------- sampling pieces
    # Every forward pass is ``begin_forward`` (the one prologue: posterior-mean
    # mode, one RNG advance, the draw, the KL) followed by one or more
    # ``LinearSample``s applied to inputs. ``sample_linear`` is that for a
    # single op; recurrent layers apply their two samples at every time step.
    #: Names of the weights that may carry a posterior, in the order their seeds
    #: are split from the call's seed (a slot is kept for a deterministic bias).
    weight_slots: tuple[str, ...] = ("kernel", "bias")
    #: Position of the flipout signs' seed among the split seeds (the KL's is last).
    #: Both are part of each layer's random stream and must not change.
    sign_seed_slot: int = 1

    def draw_seeds(self, num: int) -> tuple[list[tf.Tensor], tf.Tensor]:
        """Advance the layer's RNG state once; ``num`` independent seeds and the call's counter."""
        seed, counter = rnd.next_seed_and_counter(self.rng_state)
        return rnd.split_seed(seed, num), counter

    def fixed_seed(self, stream: int) -> tf.Tensor:
        """A seed that does not advance the RNG state: ``[saved seed, stream]`` (``stream < 0``).

        For draws that must be the same at every call, and after a reload, e.g.
        the Monte Carlo KL of posterior-mean mode; built from the saved state, not
        from the constructor's ``seed`` (which is ``None`` for a random seed).
        """
        return tf.stack([tf.convert_to_tensor(self.rng_state)[0], tf.constant(stream, tf.int64)])

    def draw_perturbation(self, batch_size, sign_widths: Sequence[int]) -> Perturbation:
        """Draw one perturbation of every Bayesian weight (advances the RNG once).

        Args:
            batch_size: number of examples (int or scalar tensor).
            sign_widths: static widths of the flipout sign rows ``(batch, w)`` to
                draw (used by the ``flipout`` estimator only).

        Returns:
            A :class:`Perturbation`: each posterior's own draw — ``ΔW`` shared by the
            batch (:meth:`~bayesflip.posteriors.WeightPosterior.sample_delta`; not for
            ``local``, whose noise is per output) or per-example factors
            (:meth:`~bayesflip.posteriors.WeightPosterior.sample_factors`) — the
            sign rows, and what the KL needs.
        """
        slots = list(self.weight_slots)
        names = slots[: self.sign_seed_slot] + ["__signs__"] + slots[self.sign_seed_slot :] + ["__kl__"]
        seed_list, counter = self.draw_seeds(len(names))
        seeds = dict(zip(names, seed_list))
        pert = Perturbation(kl_seed=seeds["__kl__"], seeds=seeds)
        for post in self.posteriors:
            if post.per_example:
                pert.factors[post.name] = post.sample_factors(
                    batch_size, seeds[post.name], counter, independent=self.estimator == "flipout"
                )
                continue
            fused = None if self.estimator == "local" else post.sample_delta_and_kl(seeds[post.name])
            if fused is not None:
                noise, pert.kls[post.name] = fused
            else:
                pert.scales[post.name] = post.noise_scale()
                if self.estimator == "local":
                    continue
                noise = post.sample_delta(seeds[post.name], pert.scales[post.name])
                if post.kl_needs_sample:  # the Monte Carlo KL's weight sample
                    pert.samples[post.name] = post.mean() + noise
            pert.deltas[post.name] = tf.cast(noise, self.compute_dtype)
        if self.estimator == "flipout" and not all(post.per_example for post in self.posteriors):
            pert.signs = tuple(
                rnd.rademacher_rows(batch_size, list(sign_widths), seeds["__signs__"], self.compute_dtype)
            )
        return pert

    def begin_forward(self, batch_size, sign_widths: Sequence[int] = ()) -> Perturbation | None:
        """The prologue of every forward pass: draw (unless in posterior-mean mode) and add the KL.

        Returns ``None`` in posterior-mean mode (nothing is drawn, the RNG does not
        advance), else this call's :class:`Perturbation`. Either way the layer's
        ``kl_weight · KL(q ‖ p)`` is added with ``add_loss``.
        """
        if self.use_posterior_mean:
            self._add_kl()
            return None
        pert = self.draw_perturbation(batch_size, sign_widths)
        self._add_kl(samples=pert.samples, seed=pert.kl_seed, scales=pert.scales, kls=pert.kls)
        return pert

    def posterior_mean_weight(self, weight, point: bool = False) -> tf.Tensor | None:
        """Mean of a posterior (its ``point_estimate`` when ``point``) or value of a plain variable, compute dtype."""
        if weight is None:
            return None
        if isinstance(weight, WeightPosterior):
            value = weight.point_estimate() if point else weight.mean()
        else:
            value = weight.value
        return tf.cast(value, self.compute_dtype)

    def linear_sample(
        self,
        pert: Perturbation | None,
        kernel: WeightPosterior,
        bias=None,
        signs: tuple[int | None, int] = (0, 1),
        bias_index: int | None = None,
    ) -> LinearSample:
        """The weights of one linear op for this call, ready to apply to any number of inputs.

        Args:
            pert: this call's :meth:`begin_forward` result (``None``: posterior mean).
            kernel: the op's weight posterior.
            bias: ``None``, a plain Keras variable or a :class:`~bayesflip.posteriors.WeightPosterior`.
            signs: positions in ``pert.signs`` of the input-side ``S`` and
                output-side ``R`` rows (``None`` for an input side without signs,
                e.g. a lookup).
            bias_index: use ``bias[bias_index]`` (a row of a stacked bias).
        """

        def part(value):
            return value if value is None or bias_index is None else value[bias_index]

        if pert is None:  # posterior-mean mode (pruned weights of variational dropout are zero)
            bias_mean = part(self.posterior_mean_weight(bias, point=True))
            offset = kernel.mean_output_offset()  # a mixture's mean per-component bias
            if offset is not None:
                offset = tf.cast(offset, self.compute_dtype)
                bias_mean = offset if bias_mean is None else bias_mean + offset
            return LinearSample(self.posterior_mean_weight(kernel, point=True), bias_mean)
        bias_mean = part(self.posterior_mean_weight(bias))
        if kernel.per_example:  # op(x ∘ s, W) ∘ r + b_k: the factors are the noise, exact per example
            factors = pert.factors[kernel.name]
            return LinearSample(
                None,
                bias_mean,
                delta=tf.cast(factors.weight, self.compute_dtype),
                sign_in=tf.cast(factors.inputs, self.compute_dtype),
                sign_out=tf.cast(factors.outputs, self.compute_dtype),
                example_bias=None if factors.bias is None else tf.cast(factors.bias, self.compute_dtype),
            )
        loc = self.posterior_mean_weight(kernel)
        bias_delta = None
        if isinstance(bias, WeightPosterior):
            bias_delta = part(pert.deltas[bias.name])
        if self.estimator == "local":
            raise ValueError(f"{self._owner}: the local estimator samples outputs, not weights.")
        delta = pert.deltas[kernel.name]
        if self.estimator == "shared":  # one weight sample for the whole batch
            return LinearSample(loc + delta, bias_mean if bias_delta is None else bias_mean + bias_delta)
        sign_in = None if signs[0] is None else pert.signs[signs[0]]
        return LinearSample(loc, bias_mean, delta, bias_delta, sign_in, pert.signs[signs[1]])

    # ----------------------------------------------------------------- sample
    def sample_linear(
        self,
        op: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
        x: tf.Tensor,
        kernel: WeightPosterior,
        bias=None,
        channel_axis: int = -1,
        out_channels: int | None = None,
    ) -> tf.Tensor:
        """``op(x, W) (+ b)`` with ``W ~ q`` sampled by ``self.estimator``.

        Also adds ``kl_weight · KL(q ‖ p)`` of the layer with ``add_loss``.

        Args:
            op: linear in its second argument, ``op(x, W)``.
            x: inputs, already cast to the compute dtype.
            kernel: posterior of ``W``.
            bias: ``None``, a Keras variable (deterministic bias), or a
                :class:`~bayesflip.posteriors.WeightPosterior` (Bayesian bias).
            channel_axis: axis of the input/output channels (signs broadcast
                over every other non-batch axis).
            out_channels: number of output channels (default ``W``'s last axis).

        Returns:
            The layer's pre-activation output.
        """
        out_channels = kernel.shape[-1] if out_channels is None else out_channels
        pert = self.begin_forward(tf.shape(x)[0], [x.shape[channel_axis], out_channels])
        if pert is not None and self.estimator == "local":
            return self._local_reparameterization(op, x, kernel, bias, channel_axis, pert)
        return self.linear_sample(pert, kernel, bias)(op, x, channel_axis)

    def _local_reparameterization(self, op, x, kernel, bias, channel_axis, pert: Perturbation) -> tf.Tensor:
        """``op(x, loc) + sqrt(op(x², scale²)) ∘ η`` (+ b), ``η`` per output element."""
        dtype = self.compute_dtype
        mean = op(x, self.posterior_mean_weight(kernel))
        var = op(tf.square(x), tf.square(tf.cast(pert.scales[kernel.name], dtype)))
        if isinstance(bias, WeightPosterior):
            var = _add_bias(var, tf.cast(tf.square(pert.scales[bias.name]), dtype), channel_axis)
        eta = rnd.standard_normal(tf.shape(mean), pert.seeds[kernel.name], dtype)
        y = mean + _safe_sqrt(var) * eta
        return y if bias is None else _add_bias(y, self.posterior_mean_weight(bias), channel_axis)

    def _add_kl(
        self,
        samples: dict | None = None,
        seed: tf.Tensor | None = None,
        scales: dict | None = None,
        kls: dict | None = None,
    ) -> None:
        if not any(post.has_kl for post in self.posteriors):
            return  # e.g. Gaussian DropConnect: a regularizer with no KL term
        if seed is None and any(post.kl_needs_sample for post in self.posteriors):
            # Posterior-mean mode with a Monte Carlo KL: use a fixed draw so the
            # loss stays deterministic in this mode (and the same after a reload).
            seed = self.fixed_seed(-1)
        kl = self.kl_divergence(samples=samples, seed=seed, scales=scales, kls=kls)
        if not self.kl_weight_is_set:
            kl = _warn_when_differentiated(kl, self)
        self.add_loss(self._kl_weight * kl)

    # ----------------------------------------------------------------- config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "estimator": self.estimator,
                "prior": keras.saving.serialize_keras_object(self.prior),
                "init_scale": self.init_scale,
                "min_scale": self.min_scale,
                "kl_weight": self.kl_weight if self.kl_weight_is_set else None,
                "seed": self.seed,
                "posterior": keras.saving.serialize_keras_object(self.posterior),
            }
        )
        return config

"""Depthwise and depthwise-separable convolutional variational layers.

Both ops are linear in their kernels, so they go through the one core like
every other layer:

* **Depthwise** ``y[..., c·M + m] = Σ_k x[.. + k, c] W[k, c, m]`` (``M`` the
  depth multiplier). Flipout: ``op(x, loc) + op(x, ΔW) ∘ R`` with ``R`` one
  sign per example and output channel (width ``channels · M``). The input-side
  signs ``S`` of the general form ``op(x ∘ S, ΔW) ∘ R`` are left out: output
  ``c·M + m`` sees input channel ``c`` only, so the perturbation each example
  gets is ``ΔW[k, c, m]·S_c·R_{c·M+m}``, and the signs ``S_c R_{c·M+m}`` are
  i.i.d. ±1 over ``(c, m)`` exactly like ``R_{c·M+m}`` alone — the same
  distribution without multiplying the input. ``local``: each output sums
  distinct independent weights, so ``op(x², scale²)`` is its exact variance.
* **Separable**: depthwise, then a pointwise (1×1) convolution, then the bias.
  Either kernel may be Bayesian or deterministic. One call draws the
  perturbations of both (one RNG advance, one KL term) and applies them as two
  linear samples: ``R₁`` on the depthwise perturbation, ``S₂``/``R₂`` on the
  pointwise one. ``local`` samples the depthwise outputs, then the pointwise
  outputs given them: exact per position, since the depthwise outputs of one
  position come from distinct independent weights.

In posterior-mean mode the layers call exactly the ops of
``keras.layers.DepthwiseConv1D/2D`` and ``SeparableConv1D/2D``
(``keras.ops.depthwise_conv``, ``keras.ops.separable_conv``) and equal them
for the same weights. The depthwise kernel has Keras' layout
``kernel_size + (channels, depth_multiplier)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int
from bayesflip.layers import _conv_base, _estimators
from bayesflip.layers._estimators import LinearSample
from bayesflip.layers._variational import VariationalLayer
from bayesflip.posteriors import PosteriorFamily, VariationalDropout, WeightPosterior
from bayesflip.priors import Prior

__all__ = [
    "DepthwiseConv1DFlipout",
    "DepthwiseConv2DFlipout",
    "SeparableConv1DFlipout",
    "SeparableConv2DFlipout",
]

Initializer: TypeAlias = str | keras.initializers.Initializer


class _DepthwiseBase(VariationalLayer):
    """Arguments, checks and the depthwise op shared by the depthwise and separable layers."""

    rank: int = 2
    # A depthwise kernel is diagonal in the channels: rank-1 factors over its input and
    # output channels would be one per-channel scale, not the rank-1 family's W ∘ (s rᵀ).
    accepts_per_example_posteriors = False

    def __init__(
        self,
        kernel_size,
        strides,
        padding: str,
        depth_multiplier: int,
        data_format: str | None,
        dilation_rate,
        activation,
        use_bias: bool,
        bayesian_bias: bool,
        depthwise_initializer,
        bias_initializer,
        estimator: str,
        prior,
        init_scale: float,
        min_scale: float,
        kl_weight: float | None,
        seed: int | None,
        posterior,
        **kwargs,
    ):
        super().__init__(
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )
        owner, rank = self._owner, self.rank
        self.kernel_size = _conv_base._int_tuple(owner, "kernel_size", kernel_size, rank)
        self.strides = _conv_base._int_tuple(owner, "strides", strides, rank)
        self.dilation_rate = _conv_base._int_tuple(owner, "dilation_rate", dilation_rate, rank)
        self.depth_multiplier = check_positive_int(owner, "depth_multiplier", depth_multiplier)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{owner}: `padding` must be one of ['valid', 'same'], got {padding!r}.")
        self.padding = padding.lower()
        if data_format is None:
            data_format = keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"{owner}: `data_format` must be 'channels_last' or 'channels_first', got {data_format!r}."
            )
        self.data_format = data_format
        self.channel_axis = -1 if data_format == "channels_last" else 1
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bayesian_bias = bool(bayesian_bias)
        self.depthwise_initializer = keras.initializers.get(depthwise_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=rank + 2)

    def _check_unit_noise(self, bayesian_depthwise: bool = True) -> None:
        # Per-unit noise needs one axis of output units. The depthwise kernel
        # (k…, channels, multiplier) has one when the multiplier is 1 (the
        # channels axis, -2); otherwise an output unit is a (channel, multiplier) pair.
        if (
            bayesian_depthwise
            and self.depth_multiplier > 1
            and isinstance(self.posterior, VariationalDropout)
            and self.posterior.granularity == "unit"
        ):
            raise ValueError(
                f"{self._owner}: per-unit variational dropout on a depthwise kernel needs depth_multiplier=1 "
                f"(each output channel is then one input channel's filter), got "
                f"depth_multiplier={self.depth_multiplier}; use granularity='weight'."
            )

    def _input_channels(self, input_shape) -> int:
        if len(input_shape) != self.rank + 2:
            raise ValueError(
                f"{self._owner} expects inputs of rank {self.rank + 2} (batch, {self.rank} spatial axes, "
                f"channels), got shape {tuple(input_shape)}."
            )
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ValueError(
                f"{self._owner} needs a known channel dimension (axis {self.channel_axis}), "
                f"got input shape {tuple(input_shape)}."
            )
        return int(channels)

    def _check_fits(self, shape) -> None:
        """With ``padding='valid'`` the dilated kernel must fit in every spatial axis."""
        if self.padding != "valid":
            return
        first = 1 if self.data_format == "channels_last" else 2
        dilated = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate))
        for size, need in zip(tuple(shape)[first : first + self.rank], dilated):
            if size is not None and size < need:
                raise ValueError(
                    f"{self._owner}: with padding='valid' every spatial size must be >= the dilated kernel "
                    f"size {dilated}, got input shape {tuple(shape)}."
                )

    def _depthwise_op(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return keras.ops.depthwise_conv(
            x,
            kernel,
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )

    def _add_weight_or_posterior(self, name: str, shape, initializer, bayesian: bool, output_axis: int = -1):
        if bayesian:
            return self.add_posterior(name, shape, initializer, output_axis=output_axis)
        return self.add_weight(name=name, shape=shape, initializer=initializer)

    def _build_bias(self, units: int) -> None:
        self.bias = None
        if self.use_bias:
            self.bias = self._add_weight_or_posterior(
                "bias", (units,), self.bias_initializer, self.bayesian_bias
            )

    def _finish(self, y: tf.Tensor) -> tf.Tensor:
        return self.activation(y) if self.activation is not None else y

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "depth_multiplier": self.depth_multiplier,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "bayesian_bias": self.bayesian_bias,
                "depthwise_initializer": keras.initializers.serialize(self.depthwise_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


# --------------------------------------------------------------------------- depthwise
class _BaseDepthwiseConvFlipout(_DepthwiseBase):
    """Shared implementation of ``DepthwiseConv1D/2DFlipout``."""

    def __init__(
        self,
        kernel_size,
        strides=1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate=1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            depth_multiplier,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bayesian_bias,
            depthwise_initializer,
            bias_initializer,
            estimator,
            prior,
            init_scale,
            min_scale,
            kl_weight,
            seed,
            posterior,
            **kwargs,
        )
        self._check_unit_noise()

    def build(self, input_shape: tuple) -> None:
        channels = self._input_channels(input_shape)
        self._check_fits(input_shape)
        self.out_channels = channels * self.depth_multiplier
        # With depth_multiplier=1 the channels axis (-2) is the axis of output units.
        self.kernel_posterior = self.add_posterior(
            "kernel",
            self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer,
            output_axis=-2,
        )
        self._build_bias(self.out_channels)
        self.build_variational_state()
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = self.cast_inputs(inputs)
        self._check_fits(x.shape)
        pert = self.begin_forward(tf.shape(x)[0], [self.out_channels])
        if pert is not None and self.estimator == "local":
            y = self._local_reparameterization(
                self._depthwise_op, x, self.kernel_posterior, self.bias, self.channel_axis, pert
            )
        else:  # output signs only (see the module docstring)
            sample = self.linear_sample(pert, self.kernel_posterior, self.bias, signs=(None, 0))
            y = sample(self._depthwise_op, x, self.channel_axis)
        return self._finish(y)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        channels = input_shape[self.channel_axis] or 1
        kernel = keras.KerasTensor(self.kernel_size + (channels, self.depth_multiplier))
        shape = list(input_shape)
        shape[self.channel_axis] = channels
        return tuple(self._depthwise_op(keras.KerasTensor(tuple(shape)), kernel).shape)


_DEPTHWISE_ARGS = """
    Args:
        kernel_size: int or tuple of {rank} ints, the size of the depthwise window.
        strides: int or tuple of {rank} ints, the stride of the convolution.
        padding: ``"valid"`` or ``"same"``.
        depth_multiplier: number of output channels per input channel (the
            output has ``channels * depth_multiplier`` channels).
        data_format: ``"channels_last"`` or ``"channels_first"`` (default:
            ``keras.config.image_data_format()``).
        dilation_rate: int or tuple of {rank} ints, the dilation rate.
        activation: Keras activation (name or callable), default linear.
        use_bias: whether to add a bias.
        bayesian_bias: when True the bias has its own posterior; by default it
            is a deterministic (point-estimate) weight.
        depthwise_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (posterior mean).
        estimator: ``"flipout"``, ``"shared"`` (one draw per batch) or
            ``"local"`` (local reparameterization).
        posterior: the posterior family of the Bayesian weights (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config (not ``Rank1``: a
            depthwise kernel is diagonal in the channels). Per-unit noise
            (``VariationalDropout(granularity="unit")``) needs ``depth_multiplier=1``.
        prior: prior of the Bayesian weights (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype`` …).

    Input shape:
        ``(batch, {spatial}, channels)`` (``channels_last``) or
        ``(batch, channels, {spatial})`` (``channels_first``).

    Output shape:
        ``(batch, {new_spatial}, channels * depth_multiplier)`` (or channels first).

    Call arguments:
        inputs: a numeric tensor of the input shape.
"""


@keras.saving.register_keras_serializable(package="bayesflip")
class DepthwiseConv1DFlipout(_BaseDepthwiseConvFlipout):
    __doc__ = (
        """1D depthwise convolution with a posterior over its kernel.

    Computes ``activation(depthwise_conv(x, W) + b)`` with ``W ~ q(W)``: every
    input channel is convolved with its own ``depth_multiplier`` filters. With
    the default ``estimator="flipout"`` each example gets its own
    pseudo-independent kernel perturbation (random signs per example and
    output channel, broadcast over the steps). Every forward pass is a
    posterior sample; :func:`bayesflip.posterior_mean` gives the posterior-mean
    prediction, which equals ``keras.layers.DepthwiseConv1D`` with
    ``kernel = loc``.
"""
        + _DEPTHWISE_ARGS.format(rank=1, spatial="steps", new_spatial="new_steps")
        + """
    Example:
    >>> import numpy as np
    >>> layer = DepthwiseConv1DFlipout(3, depth_multiplier=2, padding="same", seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 5, 8])
    """
    )

    rank = 1

    def __init__(
        self,
        kernel_size: int | tuple[int],
        strides: int | tuple[int] = 1,
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | tuple[int] = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides=strides,
            padding=padding,
            depth_multiplier=depth_multiplier,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class DepthwiseConv2DFlipout(_BaseDepthwiseConvFlipout):
    __doc__ = (
        """2D depthwise convolution with a posterior over its kernel.

    Computes ``activation(depthwise_conv(x, W) + b)`` with ``W ~ q(W)``: every
    input channel is convolved with its own ``depth_multiplier`` filters. With
    the default ``estimator="flipout"`` each example gets its own
    pseudo-independent kernel perturbation (random signs per example and
    output channel, broadcast over the spatial positions). Every forward pass
    is a posterior sample; :func:`bayesflip.posterior_mean` gives the
    posterior-mean prediction, which equals ``keras.layers.DepthwiseConv2D``
    with ``kernel = loc``.
"""
        + _DEPTHWISE_ARGS.format(rank=2, spatial="rows, cols", new_spatial="new_rows, new_cols")
        + """
    Example:
    >>> import numpy as np
    >>> layer = DepthwiseConv2DFlipout(3, strides=2, padding="same", seed=0)
    >>> layer(np.ones((2, 6, 6, 4), "float32")).shape
    TensorShape([2, 3, 3, 4])
    """
    )

    rank = 2

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, int] = (1, 1),
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides=strides,
            padding=padding,
            depth_multiplier=depth_multiplier,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            depthwise_initializer=depthwise_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )


# --------------------------------------------------------------------------- separable
class _BaseSeparableConvFlipout(_DepthwiseBase):
    """Shared implementation of ``SeparableConv1D/2DFlipout``."""

    weight_slots = ("depthwise_kernel", "pointwise_kernel", "bias")

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides=1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate=1,
        depth_multiplier: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_depthwise: bool = True,
        bayesian_pointwise: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        pointwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            kernel_size,
            strides,
            padding,
            depth_multiplier,
            data_format,
            dilation_rate,
            activation,
            use_bias,
            bayesian_bias,
            depthwise_initializer,
            bias_initializer,
            estimator,
            prior,
            init_scale,
            min_scale,
            kl_weight,
            seed,
            posterior,
            **kwargs,
        )
        owner = self._owner
        self.filters = check_positive_int(owner, "filters", filters)
        self.bayesian_depthwise = bool(bayesian_depthwise)
        self.bayesian_pointwise = bool(bayesian_pointwise)
        if not (self.bayesian_depthwise or self.bayesian_pointwise):
            raise ValueError(
                f"{owner}: at least one of `bayesian_depthwise` and `bayesian_pointwise` must be True "
                "(with both False the layer is keras.layers.SeparableConv"
                f"{self.rank}D)."
            )
        if self.bayesian_bias and self.use_bias and not self.bayesian_pointwise:
            raise ValueError(
                f"{owner}: a Bayesian bias is perturbed together with the pointwise kernel; "
                "`bayesian_bias=True` needs `bayesian_pointwise=True`."
            )
        self._check_unit_noise(self.bayesian_depthwise)
        self.pointwise_initializer = keras.initializers.get(pointwise_initializer)

    def build(self, input_shape: tuple) -> None:
        channels = self._input_channels(input_shape)
        self._check_fits(input_shape)
        self.mid_channels = channels * self.depth_multiplier
        self.depthwise_kernel = self._add_weight_or_posterior(
            "depthwise_kernel",
            self.kernel_size + (channels, self.depth_multiplier),
            self.depthwise_initializer,
            self.bayesian_depthwise,
            output_axis=-2,
        )
        self.pointwise_kernel = self._add_weight_or_posterior(
            "pointwise_kernel",
            (1,) * self.rank + (self.mid_channels, self.filters),
            self.pointwise_initializer,
            self.bayesian_pointwise,
        )
        self._build_bias(self.filters)
        self.build_variational_state()
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})

    def _pointwise_op(self, h: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        return keras.ops.conv(h, kernel, strides=1, padding="valid", data_format=self.data_format)

    def _sign_widths(self) -> list[int]:
        """``R₁`` (depthwise outputs), then ``S₂`` and ``R₂`` (pointwise input and output)."""
        widths = [self.mid_channels] if self.bayesian_depthwise else []
        if self.bayesian_pointwise:
            widths += [self.mid_channels, self.filters]
        return widths

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = self.cast_inputs(inputs)
        self._check_fits(x.shape)
        axis = self.channel_axis
        pert = self.begin_forward(tf.shape(x)[0], self._sign_widths())
        if pert is None:  # posterior mean: Keras' own op
            y = keras.ops.separable_conv(
                x,
                self.posterior_mean_weight(self.depthwise_kernel, point=True),
                self.posterior_mean_weight(self.pointwise_kernel, point=True),
                strides=self.strides,
                padding=self.padding,
                data_format=self.data_format,
                dilation_rate=self.dilation_rate,
            )
            if self.bias is not None:
                y = _estimators._add_bias(y, self.posterior_mean_weight(self.bias, point=True), axis)
            return self._finish(y)
        ops = ((self._depthwise_op, self.depthwise_kernel), (self._pointwise_op, self.pointwise_kernel))
        h = x
        if self.estimator == "local":
            for i, (op, kernel) in enumerate(ops):
                bias = self.bias if i == 1 else None
                if isinstance(kernel, WeightPosterior):
                    h = self._local_reparameterization(op, h, kernel, bias, axis, pert)
                else:
                    h = LinearSample(self.posterior_mean_weight(kernel), self.posterior_mean_weight(bias))(
                        op, h, axis
                    )
            return self._finish(h)
        first = 1 if self.bayesian_depthwise else 0  # position of S₂ among the sign rows
        samples = [
            self._sample(pert, self.depthwise_kernel, None, (None, 0)),
            self._sample(pert, self.pointwise_kernel, self.bias, (first, first + 1)),
        ]
        for (op, _), sample in zip(ops, samples):
            h = sample(op, h, axis)
        return self._finish(h)

    def _sample(self, pert, kernel, bias, signs) -> LinearSample:
        if isinstance(kernel, WeightPosterior):
            return self.linear_sample(pert, kernel, bias, signs=signs)
        return LinearSample(self.posterior_mean_weight(kernel), self.posterior_mean_weight(bias))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        channels = input_shape[self.channel_axis] or 1
        shape = list(input_shape)
        shape[self.channel_axis] = channels
        y = keras.ops.separable_conv(
            keras.KerasTensor(tuple(shape)),
            keras.KerasTensor(self.kernel_size + (channels, self.depth_multiplier)),
            keras.KerasTensor((1,) * self.rank + (channels * self.depth_multiplier, self.filters)),
            strides=self.strides,
            padding=self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )
        return tuple(y.shape)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "bayesian_depthwise": self.bayesian_depthwise,
                "bayesian_pointwise": self.bayesian_pointwise,
                "pointwise_initializer": keras.initializers.serialize(self.pointwise_initializer),
            }
        )
        return config


_SEPARABLE_ARGS = """
    Args:
        filters: positive int, number of output channels (of the pointwise step).
        kernel_size: int or tuple of {rank} ints, the size of the depthwise window.
        strides: int or tuple of {rank} ints, the stride of the depthwise step.
        padding: ``"valid"`` or ``"same"``.
        data_format: ``"channels_last"`` or ``"channels_first"`` (default:
            ``keras.config.image_data_format()``).
        dilation_rate: int or tuple of {rank} ints, the dilation rate.
        depth_multiplier: depthwise output channels per input channel.
        activation: Keras activation (name or callable), default linear.
        use_bias: whether to add a bias (after the pointwise step).
        bayesian_depthwise: whether the depthwise kernel has a posterior (else
            it is a deterministic weight).
        bayesian_pointwise: whether the pointwise kernel has a posterior. At
            least one of the two kernels must be Bayesian.
        bayesian_bias: when True the bias has its own posterior (needs
            ``bayesian_pointwise``); by default it is a deterministic weight.
        depthwise_initializer: initializer of the depthwise kernel (posterior mean).
        pointwise_initializer: initializer of the pointwise kernel (posterior mean).
        bias_initializer: initializer of the bias (posterior mean).
        estimator: ``"flipout"``, ``"shared"`` (one draw per batch) or
            ``"local"`` (local reparameterization).
        posterior: the posterior family of the Bayesian weights (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config (not ``Rank1``: a
            depthwise kernel is diagonal in the channels). Per-unit noise
            (``VariationalDropout(granularity="unit")``) on a Bayesian depthwise kernel needs
            ``depth_multiplier=1``. These settings apply to every Bayesian weight.
        prior: prior of the Bayesian weights (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype`` …).

    Input shape:
        ``(batch, {spatial}, channels)`` (``channels_last``) or
        ``(batch, channels, {spatial})`` (``channels_first``).

    Output shape:
        ``(batch, {new_spatial}, filters)`` (or channels first).

    Call arguments:
        inputs: a numeric tensor of the input shape.
"""


@keras.saving.register_keras_serializable(package="bayesflip")
class SeparableConv1DFlipout(_BaseSeparableConvFlipout):
    __doc__ = (
        """1D depthwise-separable convolution with posteriors over its kernels.

    A depthwise convolution (each input channel with its own
    ``depth_multiplier`` filters), then a pointwise (1-wide) convolution to
    ``filters`` channels, then the bias and activation. Either kernel may be
    Bayesian (default: both); one call draws the perturbations of all of them.
    With the default ``estimator="flipout"`` each example gets its own
    pseudo-independent perturbation of each kernel. Every forward pass is a
    posterior sample; :func:`bayesflip.posterior_mean` gives the posterior-mean
    prediction, which equals ``keras.layers.SeparableConv1D`` with the
    kernels' posterior means.
"""
        + _SEPARABLE_ARGS.format(rank=1, spatial="steps", new_spatial="new_steps")
        + """
    Example:
    >>> import numpy as np
    >>> layer = SeparableConv1DFlipout(6, 3, bayesian_pointwise=False, seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 3, 6])
    """
    )

    rank = 1

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int],
        strides: int | tuple[int] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int] = 1,
        depth_multiplier: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_depthwise: bool = True,
        bayesian_pointwise: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        pointwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            depth_multiplier=depth_multiplier,
            activation=activation,
            use_bias=use_bias,
            bayesian_depthwise=bayesian_depthwise,
            bayesian_pointwise=bayesian_pointwise,
            bayesian_bias=bayesian_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class SeparableConv2DFlipout(_BaseSeparableConvFlipout):
    __doc__ = (
        """2D depthwise-separable convolution with posteriors over its kernels.

    A depthwise convolution (each input channel with its own
    ``depth_multiplier`` filters), then a pointwise (1×1) convolution to
    ``filters`` channels, then the bias and activation. Either kernel may be
    Bayesian (default: both); one call draws the perturbations of all of them.
    With the default ``estimator="flipout"`` each example gets its own
    pseudo-independent perturbation of each kernel. Every forward pass is a
    posterior sample; :func:`bayesflip.posterior_mean` gives the posterior-mean
    prediction, which equals ``keras.layers.SeparableConv2D`` with the
    kernels' posterior means.
"""
        + _SEPARABLE_ARGS.format(rank=2, spatial="rows, cols", new_spatial="new_rows, new_cols")
        + """
    Example:
    >>> import numpy as np
    >>> layer = SeparableConv2DFlipout(8, 3, padding="same", seed=0)
    >>> layer(np.ones((2, 5, 5, 4), "float32")).shape
    TensorShape([2, 5, 5, 8])
    """
    )

    rank = 2

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, int] = (1, 1),
        depth_multiplier: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_depthwise: bool = True,
        bayesian_pointwise: bool = True,
        bayesian_bias: bool = False,
        depthwise_initializer: Initializer = "glorot_uniform",
        pointwise_initializer: Initializer = "glorot_uniform",
        bias_initializer: Initializer = "zeros",
        estimator: str = "flipout",
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        posterior: PosteriorFamily | str | dict | None = None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            depth_multiplier=depth_multiplier,
            activation=activation,
            use_bias=use_bias,
            bayesian_depthwise=bayesian_depthwise,
            bayesian_pointwise=bayesian_pointwise,
            bayesian_bias=bayesian_bias,
            depthwise_initializer=depthwise_initializer,
            pointwise_initializer=pointwise_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )

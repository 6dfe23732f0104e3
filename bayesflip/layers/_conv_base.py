"""The shared implementation of the convolutional and transposed-convolutional layers.

Each layer is a thin wrapper over
:meth:`~bayesflip.layers.VariationalLayer.sample_linear` with
``op = keras.ops.conv`` (or ``keras.ops.conv_transpose``): flipout signs are
drawn per example and per channel and broadcast over the spatial positions,
so a batch costs two convolutions (mean and perturbation) instead of one.
The posterior-mean prediction uses exactly the op of ``keras.layers.ConvND``
(``ConvNDTranspose``) and therefore equals it for the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int, is_int
from bayesflip.layers._variational import VariationalLayer
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["BaseConvFlipout"]


def _int_tuple(owner: str, name: str, value, rank: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int or a length-``rank`` sequence of ints) as a tuple of ints."""
    items = (value,) * rank if is_int(value) else value
    try:
        items = tuple(items)
    except TypeError:
        items = None
    if items is None or len(items) != rank or any(not is_int(v) or v < minimum for v in items):
        raise ValueError(
            f"{owner}: `{name}` must be an int >= {minimum} or a tuple of {rank} such ints, got {value!r}."
        )
    return tuple(int(v) for v in items)


class BaseConvFlipout(VariationalLayer):
    """Shared implementation of the ``ConvND(Transpose)Flipout`` layers (arguments: see :class:`Conv2DFlipout`)."""

    rank: int = 2
    transpose: bool = False

    def __init__(
        self,
        filters: int,
        kernel_size,
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
        output_padding: int | tuple[int, ...] | None = None,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
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
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            posterior=posterior,
            **kwargs,
        )
        owner = self._owner
        rank = self.rank
        filters = check_positive_int(owner, "filters", filters)
        groups = check_positive_int(owner, "groups", groups)
        if filters % groups:
            raise ValueError(f"{owner}: `filters`={filters} must be divisible by `groups`={groups}.")
        if self.transpose and groups != 1:
            raise ValueError(f"{owner}: transposed convolutions support only groups=1, got {groups}.")
        self.filters = filters
        self.groups = groups
        self.kernel_size = _int_tuple(owner, "kernel_size", kernel_size, rank)
        self.strides = _int_tuple(owner, "strides", strides, rank)
        self.dilation_rate = _int_tuple(owner, "dilation_rate", dilation_rate, rank)
        allowed = ("valid", "same", "causal") if rank == 1 and not self.transpose else ("valid", "same")
        if not isinstance(padding, str) or padding.lower() not in allowed:
            raise ValueError(f"{owner}: `padding` must be one of {list(allowed)}, got {padding!r}.")
        self.padding = padding.lower()
        if data_format is None:
            data_format = keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                f"{owner}: `data_format` must be 'channels_last' or 'channels_first', got {data_format!r}."
            )
        self.data_format = data_format
        if output_padding is not None:
            if not self.transpose:
                raise ValueError(f"{owner}: `output_padding` applies only to transposed convolutions.")
            output_padding = _int_tuple(owner, "output_padding", output_padding, rank, minimum=0)
            for p, s in zip(output_padding, self.strides):
                if p >= s:
                    raise ValueError(
                        f"{owner}: `output_padding` {output_padding} must be smaller than `strides` "
                        f"{self.strides} in every dimension."
                    )
        self.output_padding = output_padding
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bayesian_bias = bool(bayesian_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.channel_axis = -1 if data_format == "channels_last" else 1
        self.input_spec = keras.layers.InputSpec(ndim=rank + 2)

    # ----------------------------------------------------------------- build
    def build(self, input_shape: tuple) -> None:
        channels = input_shape[self.channel_axis]
        if channels is None:
            raise ValueError(
                f"{self._owner} needs a known channel dimension (axis {self.channel_axis}), "
                f"got input shape {input_shape}."
            )
        if channels % self.groups:
            raise ValueError(
                f"{self._owner}: input channels ({channels}) must be divisible by `groups`={self.groups}."
            )
        if self.transpose:
            shape = self.kernel_size + (self.filters, channels)
        else:
            shape = self.kernel_size + (channels // self.groups, self.filters)
        # a transposed kernel is (..., filters, in_channels): its output units are axis -2
        self.kernel_posterior = self.add_posterior(
            "kernel", shape, self.kernel_initializer, output_axis=-2 if self.transpose else -1
        )
        self.bias = None
        if self.use_bias:
            if self.bayesian_bias:
                self.bias = self.add_posterior("bias", (self.filters,), self.bias_initializer)
            else:
                self.bias = self.add_weight(
                    name="bias", shape=(self.filters,), initializer=self.bias_initializer
                )
        self.build_variational_state()
        self.input_spec = keras.layers.InputSpec(ndim=self.rank + 2, axes={self.channel_axis: channels})

    # ------------------------------------------------------------------ call
    def _op(self, x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
        if self.transpose:
            return keras.ops.conv_transpose(
                x,
                kernel,
                strides=self.strides,
                padding=self.padding,
                output_padding=self.output_padding,
                data_format=self.data_format,
                dilation_rate=self.dilation_rate,
            )
        return keras.ops.conv(
            x,
            kernel,
            strides=self.strides,
            padding="valid" if self.padding == "causal" else self.padding,
            data_format=self.data_format,
            dilation_rate=self.dilation_rate,
        )

    def _causal_pad(self, x: tf.Tensor) -> tf.Tensor:
        left = self.dilation_rate[0] * (self.kernel_size[0] - 1)
        if self.data_format == "channels_last":
            pad = [[0, 0], [left, 0], [0, 0]]
        else:
            pad = [[0, 0], [0, 0], [left, 0]]
        return tf.pad(x, pad)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = self.cast_inputs(inputs)
        if self.padding == "valid" and not self.transpose:
            first = 1 if self.data_format == "channels_last" else 2
            for size, k, d in zip(x.shape[first : first + self.rank], self.kernel_size, self.dilation_rate):
                if size is not None and size < d * (k - 1) + 1:
                    raise ValueError(
                        f"{self._owner}: with padding='valid' every spatial size must be >= the dilated "
                        f"kernel size {tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation_rate))}, "
                        f"got input shape {tuple(x.shape)}."
                    )
        if self.padding == "causal":
            x = self._causal_pad(x)
        y = self.sample_linear(
            self._op,
            x,
            self.kernel_posterior,
            self.bias,
            channel_axis=self.channel_axis,
            out_channels=self.filters,
        )
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        # Keras' own shape inference: the op on symbolic tensors (no computation).
        channels = input_shape[self.channel_axis] or 1
        if self.transpose:
            kernel = keras.KerasTensor(self.kernel_size + (self.filters, channels))
        else:
            kernel = keras.KerasTensor(self.kernel_size + (channels, self.filters))
        shape = list(input_shape)
        shape[self.channel_axis] = channels
        if self.padding == "causal":
            i = 1 if self.data_format == "channels_last" else 2
            if shape[i] is not None:
                shape[i] += self.dilation_rate[0] * (self.kernel_size[0] - 1)
        return tuple(self._op(keras.KerasTensor(tuple(shape)), kernel).shape)

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "strides": self.strides,
                "padding": self.padding,
                "data_format": self.data_format,
                "dilation_rate": self.dilation_rate,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "bayesian_bias": self.bayesian_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        if self.transpose:
            config["output_padding"] = self.output_padding
        else:
            config["groups"] = self.groups
        return config

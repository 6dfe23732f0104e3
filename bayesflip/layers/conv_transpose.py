"""Transposed-convolutional variational layers.

Thin wrappers over the convolutional core of ``bayesflip.layers.conv``
with ``op = keras.ops.conv_transpose``: the kernel has shape ``kernel_size +
(filters, in_channels)``, flipout signs are drawn per example and channel and
broadcast over the spatial positions, and the posterior-mean prediction equals
``keras.layers.ConvNDTranspose`` for the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from bayesflip.layers.conv import _BaseConvFlipout

__all__ = ["Conv1DTransposeFlipout", "Conv2DTransposeFlipout", "Conv3DTransposeFlipout"]


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv1DTransposeFlipout(_BaseConvFlipout):
    """1D transposed convolution with a Gaussian posterior over its kernel.

    The variational counterpart of ``keras.layers.Conv1DTranspose`` (same
    arguments, kernel shape ``kernel_size + (filters, in_channels)``); flipout
    signs per example and channel, broadcast over positions.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, activation, use_bias: as in
            ``keras.layers.Conv1DTranspose``.
        **kwargs: ``bayesian_bias``, ``kernel_initializer``,
            ``bias_initializer``, ``estimator``, ``prior``, ``init_scale``,
            ``min_scale``, ``kl_weight``, ``seed``: see :class:`Conv2DFlipout`.

    Example:
    >>> import numpy as np
    >>> layer = Conv1DTransposeFlipout(2, 3, strides=2, padding="same", seed=0)
    >>> layer(np.ones((1, 4, 3), "float32")).shape
    TensorShape([1, 8, 2])
    """

    rank = 1
    transpose = True

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        output_padding: int | tuple[int, ...] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv2DTransposeFlipout(_BaseConvFlipout):
    """2D transposed convolution with a Gaussian posterior over its kernel.

    The variational counterpart of ``keras.layers.Conv2DTranspose`` (same
    arguments, kernel shape ``kernel_size + (filters, in_channels)``); flipout
    signs per example and channel, broadcast over positions.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, activation, use_bias: as in
            ``keras.layers.Conv2DTranspose``.
        **kwargs: ``bayesian_bias``, ``kernel_initializer``,
            ``bias_initializer``, ``estimator``, ``prior``, ``init_scale``,
            ``min_scale``, ``kl_weight``, ``seed``: see :class:`Conv2DFlipout`.

    Example:
    >>> import numpy as np
    >>> layer = Conv2DTransposeFlipout(2, 3, strides=2, padding="same", seed=0)
    >>> layer(np.ones((1, 4, 4, 3), "float32")).shape
    TensorShape([1, 8, 8, 2])
    """

    rank = 2
    transpose = True

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        output_padding: int | tuple[int, ...] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv3DTransposeFlipout(_BaseConvFlipout):
    """3D transposed convolution with a Gaussian posterior over its kernel.

    The variational counterpart of ``keras.layers.Conv3DTranspose`` (same
    arguments, kernel shape ``kernel_size + (filters, in_channels)``); flipout
    signs per example and channel, broadcast over positions.

    Args:
        filters, kernel_size, strides, padding, output_padding, data_format,
            dilation_rate, activation, use_bias: as in
            ``keras.layers.Conv3DTranspose``.
        **kwargs: ``bayesian_bias``, ``kernel_initializer``,
            ``bias_initializer``, ``estimator``, ``prior``, ``init_scale``,
            ``min_scale``, ``kl_weight``, ``seed``: see :class:`Conv2DFlipout`.

    Example:
    >>> import numpy as np
    >>> layer = Conv3DTransposeFlipout(2, 3, strides=2, padding="same", seed=0)
    >>> layer(np.ones((1, 4, 4, 4, 3), "float32")).shape
    TensorShape([1, 8, 8, 8, 2])
    """

    rank = 3
    transpose = True

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        output_padding: int | tuple[int, ...] | None = None,
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            output_padding=output_padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            activation=activation,
            use_bias=use_bias,
            **kwargs,
        )

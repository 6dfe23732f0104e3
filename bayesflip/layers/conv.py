"""Convolutional variational layers (the transposed ones are in ``conv_transpose.py``).

Thin wrappers over the shared convolutional layer of ``bayesflip/layers/_conv_base.py``, which
hands ``keras.ops.conv`` to :meth:`~bayesflip.layers.VariationalLayer.sample_linear`: flipout
signs are drawn per example and per channel and broadcast over the spatial positions, so a batch
costs two convolutions (mean and perturbation) instead of one. The posterior-mean prediction uses
exactly the op of ``keras.layers.ConvND`` and therefore equals it for the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from bayesflip.layers._conv_base import BaseConvFlipout
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["Conv1DFlipout", "Conv2DFlipout", "Conv3DFlipout"]


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv1DFlipout(BaseConvFlipout):
    """1D convolution with a posterior over its kernel.

    Computes ``activation(conv(x, W) + b)`` with ``W`` drawn from the layer's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian) in every forward pass,
    in training and inference alike. With ``estimator="flipout"`` each example gets its own
    pseudo-independent kernel perturbation, with random signs per example and channel
    broadcast over the spatial positions (Wen et al. 2018). :func:`bayesflip.posterior_mean`
    gives the posterior-mean prediction, which equals ``keras.layers.Conv1D`` with ``kernel = loc``.
    The layer adds ``kl_weight · KL(q ‖ p)`` to the model's losses.

    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of 1 ints, the size of the convolution window.
        strides: int or tuple of 1 ints, the stride of the convolution.
        padding: ``"valid"``, ``"same"`` or ``"causal"`` (output step ``t`` sees inputs up to ``t``).
        data_format: ``"channels_last"`` (``(batch, steps, channels)``) or
            ``"channels_first"``; default ``keras.config.image_data_format()``.
        dilation_rate: int or tuple of 1 ints, the dilation of the convolution window.
        groups: positive int dividing ``filters`` and the input channels: the number of
            groups the channels are split into, each convolved with its own filters.
        activation: activation function (name or callable); default none (linear).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (its posterior mean when Bayesian).
        estimator: ``"flipout"`` (default: every example its own pseudo-independent
            perturbation), ``"shared"`` (one weight draw for the whole batch) or ``"local"``
            (local reparameterization: pre-activations sampled per example).
        posterior: the posterior family of the Bayesian weights (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the Bayesian weights (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        3D tensor ``(batch_size, steps, channels)`` (``channels_last``) or ``(batch_size, channels, steps)``.

    Output shape:
        3D tensor ``(batch_size, new_steps, filters)`` (``channels_last``) or ``(batch_size, filters, new_steps)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = Conv1DFlipout(4, 3, padding="same", seed=0)
    >>> layer(np.ones((2, 4, 3), "float32")).shape
    TensorShape([2, 4, 4])
    """

    rank = 1
    transpose = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        estimator: str = "flipout",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv2DFlipout(BaseConvFlipout):
    """2D convolution with a posterior over its kernel.

    Computes ``activation(conv(x, W) + b)`` with ``W`` drawn from the layer's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian) in every forward pass,
    in training and inference alike. With ``estimator="flipout"`` each example gets its own
    pseudo-independent kernel perturbation, with random signs per example and channel
    broadcast over the spatial positions (Wen et al. 2018). :func:`bayesflip.posterior_mean`
    gives the posterior-mean prediction, which equals ``keras.layers.Conv2D`` with ``kernel = loc``.
    The layer adds ``kl_weight · KL(q ‖ p)`` to the model's losses.

    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of 2 ints, the size of the convolution window.
        strides: int or tuple of 2 ints, the stride of the convolution.
        padding: ``"valid"``, ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (``(batch, rows, cols, channels)``) or
            ``"channels_first"``; default ``keras.config.image_data_format()``.
        dilation_rate: int or tuple of 2 ints, the dilation of the convolution window.
        groups: positive int dividing ``filters`` and the input channels: the number of
            groups the channels are split into, each convolved with its own filters.
        activation: activation function (name or callable); default none (linear).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (its posterior mean when Bayesian).
        estimator: ``"flipout"`` (default: every example its own pseudo-independent
            perturbation), ``"shared"`` (one weight draw for the whole batch) or ``"local"``
            (local reparameterization: pre-activations sampled per example).
        posterior: the posterior family of the Bayesian weights (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the Bayesian weights (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        4D tensor ``(batch_size, rows, cols, channels)`` (``channels_last``) or ``(batch_size, channels, rows, cols)``.

    Output shape:
        4D tensor ``(batch_size, new_rows, new_cols, filters)`` (``channels_last``) or ``(batch_size, filters, new_rows, new_cols)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = Conv2DFlipout(4, 3, padding="same", seed=0)
    >>> layer(np.ones((2, 4, 4, 3), "float32")).shape
    TensorShape([2, 4, 4, 4])
    """

    rank = 2
    transpose = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        estimator: str = "flipout",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package="bayesflip")
class Conv3DFlipout(BaseConvFlipout):
    """3D convolution with a posterior over its kernel.

    Computes ``activation(conv(x, W) + b)`` with ``W`` drawn from the layer's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian) in every forward pass,
    in training and inference alike. With ``estimator="flipout"`` each example gets its own
    pseudo-independent kernel perturbation, with random signs per example and channel
    broadcast over the spatial positions (Wen et al. 2018). :func:`bayesflip.posterior_mean`
    gives the posterior-mean prediction, which equals ``keras.layers.Conv3D`` with ``kernel = loc``.
    The layer adds ``kl_weight · KL(q ‖ p)`` to the model's losses.

    Args:
        filters: positive int, the number of output channels.
        kernel_size: int or tuple of 3 ints, the size of the convolution window.
        strides: int or tuple of 3 ints, the stride of the convolution.
        padding: ``"valid"``, ``"same"`` (case-insensitive).
        data_format: ``"channels_last"`` (``(batch, dim1, dim2, dim3, channels)``) or
            ``"channels_first"``; default ``keras.config.image_data_format()``.
        dilation_rate: int or tuple of 3 ints, the dilation of the convolution window.
        groups: positive int dividing ``filters`` and the input channels: the number of
            groups the channels are split into, each convolved with its own filters.
        activation: activation function (name or callable); default none (linear).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (its posterior mean when Bayesian).
        estimator: ``"flipout"`` (default: every example its own pseudo-independent
            perturbation), ``"shared"`` (one weight draw for the whole batch) or ``"local"``
            (local reparameterization: pre-activations sampled per example).
        posterior: the posterior family of the Bayesian weights (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the Bayesian weights (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        5D tensor ``(batch_size, dim1, dim2, dim3, channels)`` (``channels_last``) or ``(batch_size, channels, dim1, dim2, dim3)``.

    Output shape:
        5D tensor ``(batch_size, new_dim1, new_dim2, new_dim3, filters)`` (``channels_last``) or ``(batch_size, filters, new_dim1, new_dim2, new_dim3)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = Conv3DFlipout(4, 3, padding="same", seed=0)
    >>> layer(np.ones((2, 4, 4, 4, 3), "float32")).shape
    TensorShape([2, 4, 4, 4, 4])
    """

    rank = 3
    transpose = False

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, ...],
        strides: int | tuple[int, ...] = 1,
        padding: str = "valid",
        data_format: str | None = None,
        dilation_rate: int | tuple[int, ...] = 1,
        groups: int = 1,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        estimator: str = "flipout",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            data_format=data_format,
            dilation_rate=dilation_rate,
            groups=groups,
            activation=activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )

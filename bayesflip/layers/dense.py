"""Densely connected variational layers."""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int
from bayesflip.layers import _ops
from bayesflip.layers._variational import VariationalLayer
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["DenseFlipout", "DenseReparameterization", "DenseLocalReparameterization"]


@keras.saving.register_keras_serializable(package="bayesflip")
class DenseFlipout(VariationalLayer):
    """Densely connected layer with a posterior over its kernel.

    Computes ``activation(x W + b)`` with ``W`` drawn from the layer's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian ``N(θ, σ²)``). By default
    each example of a batch sees its own pseudo-independent perturbation of ``W`` (flipout,
    Wen et al. 2018). Every forward pass draws a posterior sample, in training and inference
    alike; use :func:`bayesflip.posterior_mean` for the posterior-mean prediction, which
    equals ``keras.layers.Dense`` with ``kernel = loc``. The layer adds
    ``kl_weight · KL(q ‖ p)`` to the model's losses.

    Args:
        units: positive int, the output dimension.
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
        N-D tensor ``(batch_size, ..., input_dim)``; the most common case is a 2D input
        ``(batch_size, input_dim)``.

    Output shape:
        N-D tensor ``(batch_size, ..., units)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = DenseFlipout(3, seed=0)
    >>> layer(np.ones((2, 4), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(
        self,
        units: int,
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
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )
        self.units = check_positive_int(self._owner, "units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bayesian_bias = bool(bayesian_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)

    def build(self, input_shape: tuple) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{self._owner} needs a known last input dimension, got input shape {input_shape}."
            )
        self.kernel_posterior = self.add_posterior("kernel", (input_dim, self.units), self.kernel_initializer)
        self.bias = None
        if self.use_bias:
            if self.bayesian_bias:
                self.bias = self.add_posterior("bias", (self.units,), self.bias_initializer)
            else:
                self.bias = self.add_weight(
                    name="bias", shape=(self.units,), initializer=self.bias_initializer
                )
        self.build_variational_state()
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = self.cast_inputs(inputs)
        y = self.sample_linear(_ops.matmul, x, self.kernel_posterior, self.bias)
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "bayesian_bias": self.bayesian_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class DenseReparameterization(DenseFlipout):
    """:class:`DenseFlipout` with ``estimator="shared"`` by default.

    One weight sample is shared by the whole mini-batch (the plain reparameterization trick,
    Kingma & Welling 2014; the baseline the flipout paper compares against). All arguments
    are those of :class:`DenseFlipout`.

    Args:
        units: positive int, the output dimension.
        activation: activation function (name or callable); default none (linear).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (its posterior mean when Bayesian).
        estimator: ``"shared"`` (default here: one weight draw for the whole batch),
            ``"flipout"`` or ``"local"``.
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
        N-D tensor ``(batch_size, ..., input_dim)``; the most common case is a 2D input
        ``(batch_size, input_dim)``.

    Output shape:
        N-D tensor ``(batch_size, ..., units)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = DenseReparameterization(2, seed=0)
    >>> layer.estimator, layer(np.ones((3, 4), "float32")).shape
    ('shared', TensorShape([3, 2]))
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        estimator: str = "shared",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            units,
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
class DenseLocalReparameterization(DenseFlipout):
    """:class:`DenseFlipout` with ``estimator="local"`` by default.

    Samples pre-activations instead of weights (Kingma, Salimans & Welling 2015):
    ``x loc + sqrt(x² scale²) ∘ η``, independent per example. All arguments are those of
    :class:`DenseFlipout`.

    Args:
        units: positive int, the output dimension.
        activation: activation function (name or callable); default none (linear).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the kernel's posterior mean.
        bias_initializer: initializer of the bias (its posterior mean when Bayesian).
        estimator: ``"local"`` (default here: pre-activations sampled per example),
            ``"flipout"`` or ``"shared"``.
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
        N-D tensor ``(batch_size, ..., input_dim)``; the most common case is a 2D input
        ``(batch_size, input_dim)``.

    Output shape:
        N-D tensor ``(batch_size, ..., units)``.

    Call arguments:
        inputs: the input tensor; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = DenseLocalReparameterization(2, seed=0)
    >>> layer.estimator, layer(np.ones((3, 4), "float32")).shape
    ('local', TensorShape([3, 2]))
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable | None = None,
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        estimator: str = "local",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            units,
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

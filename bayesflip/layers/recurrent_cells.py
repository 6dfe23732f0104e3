"""Recurrent flipout *cells* for ``keras.layers.RNN``: :class:`LSTMFlipoutCell`, :class:`GRUFlipoutCell`.

Keras 3's ``RNN`` calls its cell once per step and has no public per-sequence
hook; these cells use the one it gives ``DropoutRNNCell`` cells (dropout masks
are requested once before the loop and reset after it) to draw their
perturbation, which makes ``RNN(cell)`` equal to the layer of
``bayesflip.layers.recurrent``. That hook is Keras-internal, and a cell
cannot precompute the input projection of all steps, so the layers are the
faster and sturdier choice.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from bayesflip._keras_compat import DropoutRNNCell
from bayesflip.layers import _ops
from bayesflip.layers.recurrent import GRUFlipout, LSTMFlipout
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["LSTMFlipoutCell", "GRUFlipoutCell"]


class _FlipoutCell(DropoutRNNCell):
    """Makes a recurrent flipout layer usable as a cell of ``keras.layers.RNN``.

    ``keras.layers.RNN`` asks a ``DropoutRNNCell`` for its dropout masks once
    per call, *before* its time loop, and resets them after it; these cells
    use that hook to draw their per-sequence perturbation (and add the KL
    term), so every step of a sequence reuses it. Called directly outside
    ``keras.layers.RNN``, a cell draws a fresh perturbation per call (i.e. per
    step). ``DropoutRNNCell`` is Keras-internal (``keras.src``), hence these
    cells depend on that Keras 3 behaviour; the layers do not.
    """

    dropout = 0.0
    recurrent_dropout = 0.0

    def __init__(self, units: int, **kwargs):
        for key in ("return_sequences", "return_state", "go_backwards", "unroll"):
            if kwargs.pop(key, False):
                raise ValueError(
                    f"{type(self).__name__}: `{key}` is an argument of keras.layers.RNN, not of the cell."
                )
        super().__init__(units, **kwargs)
        self._projections = None
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape: tuple) -> None:
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: input_shape[-1]})

    @property
    def output_size(self) -> int:
        return self.units

    def get_dropout_mask(self, step_input: tf.Tensor) -> None:
        # keras.layers.RNN calls this once per call, before the time loop.
        self._projections = self.draw_projections(tf.shape(step_input)[0])
        return None

    def get_recurrent_dropout_mask(self, step_input: tf.Tensor) -> None:
        return None

    def reset_dropout_mask(self) -> None:
        self._projections = None

    def reset_recurrent_dropout_mask(self) -> None:
        return None

    def call(self, inputs: tf.Tensor, states: list, training: bool | None = None) -> tuple:
        x = self.cast_inputs(inputs)
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        projections = self._projections
        if projections is None:  # used outside keras.layers.RNN: one draw per call
            projections = self.draw_projections(tf.shape(x)[0])
        inputs, recurrent = projections
        step = self._step_function(lambda h: recurrent(tf.matmul, h))
        return step(inputs(_ops.matmul, x), states)

    def get_config(self) -> dict:
        config = super().get_config()
        for key in ("return_sequences", "return_state", "go_backwards", "unroll"):
            config.pop(key)
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
# The cell's ``call(inputs, states)`` is Keras' RNN-cell protocol, not the layer's
# ``call(sequences, ...)``: a different contract by design.
class LSTMFlipoutCell(_FlipoutCell, LSTMFlipout):  # type: ignore[misc]
    """The cell of :class:`LSTMFlipout`, for ``keras.layers.RNN``.

    One perturbation of the kernels, drawn from the cell's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian), per sequence: drawn by
    ``keras.layers.RNN`` through its (Keras-internal) dropout-mask hook before the time
    loop. Prefer :class:`LSTMFlipout`, which also computes the input projection of all
    steps at once. The arguments are those of :class:`LSTMFlipout` except
    ``return_sequences``, ``return_state``, ``go_backwards`` and ``unroll`` (arguments of
    ``keras.layers.RNN``).

    Args:
        units: positive int, the size of the hidden state.
        activation: activation of the candidate state and output (default ``"tanh"``).
        recurrent_activation: activation of the gates (default ``"sigmoid"``).
        use_bias: whether the cell adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the input kernel's posterior mean.
        recurrent_initializer: initializer of the recurrent kernel's posterior mean.
        bias_initializer: initializer of the bias.
        unit_forget_bias: add 1 to the forget gate's bias at initialisation.
        estimator: ``"flipout"`` (default: every sequence its own pseudo-independent
            perturbation) or ``"shared"`` (one weight draw for the whole batch).
        posterior: the posterior family of the kernels (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the kernels (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``);
            the ``keras.layers.RNN`` arguments (``return_sequences`` …) are refused.

    Input shape:
        One time step ``(batch_size, features)`` (``keras.layers.RNN`` feeds the steps of
        ``(batch_size, timesteps, features)``).

    Output shape:
        ``(batch_size, units)`` and the new state(s) ``[h, c]``.

    Call arguments:
        inputs: the input of one time step ``(batch_size, features)``.
        states: the previous state(s) ``[h, c]``, each ``(batch_size, units)``.
        training: accepted for Keras compatibility; the perturbation is drawn per sequence.

    Example:
    >>> import keras, numpy as np
    >>> rnn = keras.layers.RNN(LSTMFlipoutCell(3, seed=0), return_sequences=True)
    >>> rnn(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 5, 3])
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        recurrent_initializer: str | keras.initializers.Initializer = "orthogonal",
        bias_initializer: str | keras.initializers.Initializer = "zeros",
        unit_forget_bias: bool = True,
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
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            unit_forget_bias=unit_forget_bias,
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
class GRUFlipoutCell(_FlipoutCell, GRUFlipout):  # type: ignore[misc]
    """The cell of :class:`GRUFlipout`, for ``keras.layers.RNN`` (see :class:`LSTMFlipoutCell`).

    The arguments are those of :class:`GRUFlipout` except ``return_sequences``,
    ``return_state``, ``go_backwards`` and ``unroll`` (arguments of ``keras.layers.RNN``).

    Args:
        units: positive int, the size of the hidden state.
        activation: activation of the candidate state and output (default ``"tanh"``).
        recurrent_activation: activation of the gates (default ``"sigmoid"``).
        use_bias: whether the cell adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the input kernel's posterior mean.
        recurrent_initializer: initializer of the recurrent kernel's posterior mean.
        bias_initializer: initializer of the bias.
        estimator: ``"flipout"`` (default: every sequence its own pseudo-independent
            perturbation) or ``"shared"`` (one weight draw for the whole batch).
        posterior: the posterior family of the kernels (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the kernels (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``);
            the ``keras.layers.RNN`` arguments (``return_sequences`` …) are refused.

    Input shape:
        One time step ``(batch_size, features)`` (``keras.layers.RNN`` feeds the steps of
        ``(batch_size, timesteps, features)``).

    Output shape:
        ``(batch_size, units)`` and the new state(s) ``[h]``.

    Call arguments:
        inputs: the input of one time step ``(batch_size, features)``.
        states: the previous state(s) ``[h]``, each ``(batch_size, units)``.
        training: accepted for Keras compatibility; the perturbation is drawn per sequence.

    Example:
    >>> import keras, numpy as np
    >>> keras.layers.RNN(GRUFlipoutCell(3, seed=0))(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 3])
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable = "tanh",
        recurrent_activation: str | Callable = "sigmoid",
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer: str | keras.initializers.Initializer = "glorot_uniform",
        recurrent_initializer: str | keras.initializers.Initializer = "orthogonal",
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
            units,
            activation=activation,
            recurrent_activation=recurrent_activation,
            use_bias=use_bias,
            bayesian_bias=bayesian_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
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

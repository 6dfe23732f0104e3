"""Recurrent variational layers: LSTM and GRU with flipout.

Both the input-to-hidden kernel ``W`` and the hidden-to-hidden kernel ``U``
have posteriors (the family chosen with ``posterior=``; default mean-field Gaussian). As in the flipout paper's LSTM
experiments, **one** perturbation (``ΔW``, ``ΔU``, and the per-example signs
``S``/``R`` of each kernel) is drawn per sequence and reused at every time
step, so example ``b`` of a batch runs a deterministic recurrence with weights

    ``W_b = loc_W + diag(S_x[b]) ΔW diag(R_x[b])``,
    ``U_b = loc_U + diag(S_h[b]) ΔU diag(R_h[b])``.

The time loop is cheap: the input projection ``x W_b + b`` of all time steps
is computed before the loop with two large matmuls (mean and flipout term),
and each step adds ``h U_loc + ((h ∘ S_h) ΔU) ∘ R_h``. The loop itself is
Keras' backend ``rnn`` (a ``tf.while_loop``), which handles masking,
``go_backwards`` and ``unroll`` exactly like ``keras.layers.LSTM``/``GRU``.

Two forms: drop-in *layers* (:class:`LSTMFlipout`, :class:`GRUFlipout`,
recommended; this module) and *cells* for ``keras.layers.RNN``
(:class:`~bayesflip.layers.LSTMFlipoutCell`, :class:`~bayesflip.layers.GRUFlipoutCell`,
in ``bayesflip.layers.recurrent_cells``).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int
from bayesflip._keras_compat import rnn
from bayesflip.layers import _ops
from bayesflip.layers._variational import LinearSample, VariationalLayer
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["LSTMFlipout", "GRUFlipout"]


class _RecurrentFlipout(VariationalLayer):
    """Shared machinery of :class:`LSTMFlipout` and :class:`GRUFlipout`."""

    supported_estimators = ("flipout", "shared")
    accepts_per_example_posteriors = False  # one weight, applied at every time step
    weight_slots = ("kernel", "recurrent_kernel", "bias")
    sign_seed_slot = 3
    gates: int = 4
    #: Row of the bias added to the input projection (``None``: the whole bias)
    #: and, for a GRU, the row added to the recurrent projection.
    bias_rows: tuple = (None,)

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
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: bool = False,
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
        self.units = check_positive_int(self._owner, "units", units)
        self.activation = keras.activations.get(activation)
        self.recurrent_activation = keras.activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.bayesian_bias = bool(bayesian_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = bool(unroll)
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(ndim=3)

    # ----------------------------------------------------------------- build
    @property
    def state_size(self) -> list[int]:
        return [self.units]

    def _bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape: tuple) -> None:
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(f"{self._owner} needs a known feature dimension, got input shape {input_shape}.")
        width = self.gates * self.units
        self.kernel_posterior = self.add_posterior("kernel", (input_dim, width), self.kernel_initializer)
        self.recurrent_posterior = self.add_posterior(
            "recurrent_kernel", (self.units, width), self.recurrent_initializer
        )
        self.bias = None
        if self.use_bias:
            if self.bayesian_bias:
                self.bias = self.add_posterior("bias", self._bias_shape(), self._bias_init())
            else:
                self.bias = self.add_weight(
                    name="bias", shape=self._bias_shape(), initializer=self._bias_init()
                )
        self.build_variational_state()
        self.input_spec = keras.layers.InputSpec(ndim=3, axes={-1: input_dim})

    # ----------------------------------------------------------- perturbation
    def draw_projections(self, batch_size) -> tuple[LinearSample, LinearSample]:
        """This call's input and recurrent projections (draws once; adds the KL).

        Returns ``(input, recurrent)``: ``input(_ops.matmul, x)`` is ``x W_b + b_input``
        for all steps at once (``x``: ``(batch, time, features)``, or one step
        ``(batch, features)``) and ``recurrent(tf.matmul, h)`` is ``h U_b`` (+ the
        recurrent bias of a GRU); both reuse one draw at every step.
        """
        width = self.gates * self.units
        pert = self.begin_forward(batch_size, [self.kernel_posterior.shape[0], width, self.units, width])
        inputs = self.linear_sample(
            pert, self.kernel_posterior, self.bias, signs=(0, 1), bias_index=self.bias_rows[0]
        )
        recurrent_bias = self.bias if len(self.bias_rows) > 1 else None
        recurrent = self.linear_sample(
            pert, self.recurrent_posterior, recurrent_bias, signs=(2, 3), bias_index=self.bias_rows[-1]
        )
        return inputs, recurrent

    # ------------------------------------------------------------------ call
    def get_initial_state(self, batch_size) -> list[tf.Tensor]:
        return [tf.zeros([batch_size, n], self.compute_dtype) for n in self.state_size]

    def call(
        self,
        sequences: tf.Tensor,
        initial_state: list | None = None,
        mask: tf.Tensor | None = None,
        training: bool | None = None,
    ) -> tf.Tensor | list:
        x = self.cast_inputs(sequences)
        batch_size = tf.shape(x)[0]
        if initial_state is None:
            states = self.get_initial_state(batch_size)
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(self.state_size):
                raise ValueError(
                    f"{self._owner} expects {len(self.state_size)} initial state tensor(s), "
                    f"got {len(states)}."
                )
            states = [tf.cast(s, self.compute_dtype) for s in states]
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if self.unroll and x.shape[1] is None:
            raise ValueError(f"{self._owner}: `unroll=True` needs a known number of time steps.")

        inputs, recurrent = self.draw_projections(batch_size)
        step = self._step_function(lambda h: recurrent(tf.matmul, h))
        last, outputs, states = rnn(
            step,
            inputs(_ops.matmul, x),
            states,
            go_backwards=self.go_backwards,
            mask=mask,
            unroll=self.unroll,
            input_length=x.shape[1],
            return_all_outputs=self.return_sequences,
        )
        output = outputs if self.return_sequences else last
        if self.return_state:
            return [output] + list(states)
        return output

    def compute_mask(self, sequences: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor | list | None:
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def compute_output_shape(
        self, sequences_shape: tuple, initial_state_shape: tuple | None = None
    ) -> tuple | list:
        batch, time = sequences_shape[0], sequences_shape[1]
        output = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output] + [(batch, n) for n in self.state_size]
        return output

    # ---------------------------------------------------------------- config
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "activation": keras.activations.serialize(self.activation),
                "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
                "use_bias": self.use_bias,
                "bayesian_bias": self.bayesian_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "unroll": self.unroll,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class LSTMFlipout(_RecurrentFlipout):
    """LSTM with posteriors over its input and recurrent kernels.

    Same equations, weight layout (gates ``i, f, c, o``) and arguments as
    ``keras.layers.LSTM``; the kernels are drawn from the layer's posterior
    (:mod:`bayesflip.posteriors`; default the mean-field Gaussian), one flipout
    perturbation per sequence reused at every time step (see the module docstring).
    In posterior-mean mode (:func:`bayesflip.posterior_mean`) it equals
    ``keras.layers.LSTM`` with ``kernel``/``recurrent_kernel`` set to the posterior means.

    Args:
        units: positive int, the size of the hidden state.
        activation: activation of the candidate state and output (default ``"tanh"``).
        recurrent_activation: activation of the gates (default ``"sigmoid"``).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the input kernel's posterior mean.
        recurrent_initializer: initializer of the recurrent kernel's posterior mean.
        bias_initializer: initializer of the bias.
        unit_forget_bias: add 1 to the forget gate's bias at initialisation (as
            ``keras.layers.LSTM``).
        return_sequences: return the output of every time step, not only the last.
        return_state: also return the final state(s).
        go_backwards: process the sequences backwards (and return the reversed sequence).
        unroll: unroll the time loop (faster for short sequences, more memory).
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
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, units)``, or ``(batch_size, timesteps, units)`` with
        ``return_sequences``; with ``return_state`` a list: the output, then the final
        state(s) ``[h, c]``, each ``(batch_size, units)``.

    Call arguments:
        sequences: the input sequences ``(batch_size, timesteps, features)``.
        initial_state: optional initial state(s) ``[h, c]``, each ``(batch_size, units)``.
        mask: optional boolean ``(batch_size, timesteps)``; masked steps keep the state.
        training: accepted for Keras compatibility; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = LSTMFlipout(3, return_sequences=True, seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 5, 3])
    """

    gates = 4

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
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: bool = False,
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
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            unroll=unroll,
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self) -> list[int]:
        return [self.units, self.units]

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        units, init = self.units, self.bias_initializer

        def initializer(shape, dtype=None):
            return tf.concat(
                [
                    init((units,), dtype=dtype),
                    tf.ones((units,), dtype=dtype),
                    init((2 * units,), dtype=dtype),
                ],
                0,
            )

        return initializer

    def _step_function(self, recurrent):
        act, rec_act = self.activation, self.recurrent_activation

        def step(z_x, states):
            h, c = states
            z = z_x + recurrent(h)
            z_i, z_f, z_c, z_o = tf.split(z, 4, axis=-1)
            c = rec_act(z_f) * c + rec_act(z_i) * act(z_c)
            h = rec_act(z_o) * act(c)
            return h, [h, c]

        return step

    def get_config(self) -> dict:
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class GRUFlipout(_RecurrentFlipout):
    """GRU with posteriors over its input and recurrent kernels.

    Same equations, weight layout (gates ``z, r, h``; bias of shape
    ``(2, 3·units)``) and arguments as ``keras.layers.GRU`` with its default
    ``reset_after=True`` (the only variant implemented); the kernels are drawn from the
    layer's posterior (:mod:`bayesflip.posteriors`; default the mean-field Gaussian), one
    flipout perturbation per sequence reused at every time step.

    Args:
        units: positive int, the size of the hidden state.
        activation: activation of the candidate state and output (default ``"tanh"``).
        recurrent_activation: activation of the gates (default ``"sigmoid"``).
        use_bias: whether the layer adds a bias.
        bayesian_bias: when ``True`` the bias has its own posterior and prior; by default
            it is a deterministic (point-estimate) weight.
        kernel_initializer: initializer of the input kernel's posterior mean.
        recurrent_initializer: initializer of the recurrent kernel's posterior mean.
        bias_initializer: initializer of the bias.
        return_sequences: return the output of every time step, not only the last.
        return_state: also return the final state(s).
        go_backwards: process the sequences backwards (and return the reversed sequence).
        unroll: unroll the time loop (faster for short sequences, more memory).
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
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        3D tensor ``(batch_size, timesteps, features)``.

    Output shape:
        ``(batch_size, units)``, or ``(batch_size, timesteps, units)`` with
        ``return_sequences``; with ``return_state`` a list: the output, then the final
        state(s) ``[h]``, each ``(batch_size, units)``.

    Call arguments:
        sequences: the input sequences ``(batch_size, timesteps, features)``.
        initial_state: optional initial state(s) ``[h]``, each ``(batch_size, units)``.
        mask: optional boolean ``(batch_size, timesteps)``; masked steps keep the state.
        training: accepted for Keras compatibility; every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = GRUFlipout(3, seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
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
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: bool = False,
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
            return_sequences=return_sequences,
            return_state=return_state,
            go_backwards=go_backwards,
            unroll=unroll,
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )

    gates = 3

    bias_rows = (0, 1)

    def _bias_shape(self):
        return (2, self.gates * self.units)

    def _step_function(self, recurrent):
        act, rec_act = self.activation, self.recurrent_activation

        def step(z_x, states):
            h = states[0]
            x_z, x_r, x_h = tf.split(z_x, 3, axis=-1)
            r_z, r_r, r_h = tf.split(recurrent(h), 3, axis=-1)
            z = rec_act(x_z + r_z)
            r = rec_act(x_r + r_r)
            hh = act(x_h + r * r_h)
            h = z * h + (1.0 - z) * hh
            return h, [h]

        return step

"""Recurrent variational layers: LSTM and GRU with flipout.

Both the input-to-hidden kernel ``W`` and the hidden-to-hidden kernel ``U``
have mean-field Gaussian posteriors. As in the flipout paper's LSTM
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
recommended) and *cells* for ``keras.layers.RNN`` (:class:`LSTMFlipoutCell`,
:class:`GRUFlipoutCell`). Keras 3's ``RNN`` calls its cell once per step and
has no public per-sequence hook; the cells use the one it gives
``DropoutRNNCell`` cells (dropout masks are requested once before the loop and
reset after it) to draw their perturbation, which makes ``RNN(cell)`` equal to
the layer. That hook is Keras-internal, and a cell cannot precompute the input
projection of all steps, so the layers are the faster and sturdier choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import tensorflow as tf
from keras.src import backend as _keras_backend
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from bayesflip._checks import check_positive_int
from bayesflip.layers._variational import GaussianPosterior, VariationalLayer

__all__ = ["LSTMFlipout", "GRUFlipout", "LSTMFlipoutCell", "GRUFlipoutCell", "RecurrentPerturbation"]


@dataclass
class RecurrentPerturbation:
    """One posterior draw for a batch of sequences (``None`` fields: not used).

    Attributes:
        kernel_delta: ``ΔW`` of the input kernel, ``(input_dim, gates·units)``.
        recurrent_delta: ``ΔU`` of the recurrent kernel, ``(units, gates·units)``.
        bias_delta: ``Δb`` of a Bayesian bias (its shape), else ``None``.
        sign_x, sign_x_out: flipout signs of ``W``, ``(batch, input_dim)`` and
            ``(batch, gates·units)``; ``None`` for the ``shared`` estimator.
        sign_h, sign_h_out: flipout signs of ``U``, ``(batch, units)`` and
            ``(batch, gates·units)``.
        samples: the float32 weight samples ``loc + Δ`` by weight name (for the
            Monte Carlo KL).
    """

    kernel_delta: tf.Tensor
    recurrent_delta: tf.Tensor
    bias_delta: tf.Tensor | None = None
    sign_x: tf.Tensor | None = None
    sign_x_out: tf.Tensor | None = None
    sign_h: tf.Tensor | None = None
    sign_h_out: tf.Tensor | None = None
    samples: dict = field(default_factory=dict)


def _matmul(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    if x.shape.rank == 2:
        return tf.matmul(x, w)
    return tf.tensordot(x, w, axes=[[x.shape.rank - 1], [0]])


class _RecurrentFlipout(VariationalLayer):
    """Shared machinery of :class:`LSTMFlipout` and :class:`GRUFlipout`."""

    supported_estimators = ("flipout", "shared")
    gates: int = 4

    def __init__(
        self,
        units: int,
        activation="tanh",
        recurrent_activation="sigmoid",
        use_bias: bool = True,
        bayesian_bias: bool = False,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        unroll: bool = False,
        estimator: str = "flipout",
        prior=None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            estimator=estimator,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
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

    def build(self, input_shape):
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
    def draw_perturbation(self, batch_size) -> tuple[RecurrentPerturbation, tf.Tensor]:
        """Draw one perturbation for ``batch_size`` sequences (advances the RNG once).

        Returns:
            ``(perturbation, kl_seed)``; ``kl_seed`` seeds a Monte Carlo KL.
        """
        w_seed, u_seed, b_seed, sign_seed, kl_seed = self.draw_seeds(5)
        samples = {}
        dw, samples["kernel"] = self.draw_weight_noise(self.kernel_posterior, w_seed)
        du, samples["recurrent_kernel"] = self.draw_weight_noise(self.recurrent_posterior, u_seed)
        db = None
        if isinstance(self.bias, GaussianPosterior):
            db, samples["bias"] = self.draw_weight_noise(self.bias, b_seed)
        pert = RecurrentPerturbation(dw, du, db, samples=samples)
        if self.estimator == "flipout":
            width = self.gates * self.units
            pert.sign_x, pert.sign_x_out, pert.sign_h, pert.sign_h_out = self.draw_signs(
                batch_size, [self.kernel_posterior.shape[0], width, self.units, width], sign_seed
            )
        return pert, kl_seed

    def _input_projection(self, x, pert: RecurrentPerturbation | None) -> tf.Tensor:
        """``x W + b_input`` for all steps at once (``x``: ``(batch, time, features)``,
        or ``(batch, features)`` for one step)."""
        loc = self.posterior_mean_weight(self.kernel_posterior)
        bias = self._input_bias(self.posterior_mean_weight(self.bias))
        if pert is None:
            z = _matmul(x, loc)
        elif pert.sign_x is None:  # shared
            z = _matmul(x, loc + pert.kernel_delta)
            if pert.bias_delta is not None:
                bias = bias + self._input_bias(pert.bias_delta)
        else:
            # signs are (batch, channels); broadcast them over the time axis
            sign_x, sign_x_out = (pert.sign_x, pert.sign_x_out) if x.shape.rank == 2 else (
                pert.sign_x[:, None, :], pert.sign_x_out[:, None, :])
            noise = self.flipout_term(_matmul, x, pert.kernel_delta, sign_x, 1.0)
            if pert.bias_delta is not None:
                noise = noise + self._input_bias(pert.bias_delta)
            z = _matmul(x, loc) + noise * sign_x_out
        return z if bias is None else z + bias

    def _input_bias(self, bias):
        return bias

    def _recurrent_projection(self, pert: RecurrentPerturbation | None):
        """A function ``h -> h U_b`` (+ the recurrent bias of a GRU)."""
        loc = self.posterior_mean_weight(self.recurrent_posterior)
        bias = self._recurrent_bias(self.posterior_mean_weight(self.bias))
        bias_delta = None if pert is None else self._recurrent_bias(pert.bias_delta)
        if pert is None:
            def project(h):
                return tf.matmul(h, loc)
        elif pert.sign_h is None:  # shared
            u = loc + pert.recurrent_delta
            if bias_delta is not None:
                bias = bias + bias_delta

            def project(h):
                return tf.matmul(h, u)
        else:
            du, s, r = pert.recurrent_delta, pert.sign_h, pert.sign_h_out

            def project(h):
                noise = tf.matmul(h * s, du)
                if bias_delta is not None:
                    noise = noise + bias_delta
                return tf.matmul(h, loc) + noise * r

        if bias is None:
            return project
        return lambda h: project(h) + bias

    def _recurrent_bias(self, bias):
        return None

    # ------------------------------------------------------------------ call
    def get_initial_state(self, batch_size) -> list[tf.Tensor]:
        return [tf.zeros([batch_size, n], self.compute_dtype) for n in self.state_size]

    def call(self, sequences, initial_state=None, mask=None, training=None):
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

        if self.use_posterior_mean:
            pert = None
            self._add_kl(seed=None)
        else:
            pert, kl_seed = self.draw_perturbation(batch_size)
            self._add_kl(samples=pert.samples, seed=kl_seed)
        projected = self._input_projection(x, pert)
        step = self._step_function(self._recurrent_projection(pert))
        last, outputs, states = _keras_backend.rnn(
            step,
            projected,
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

    def compute_mask(self, sequences, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        output_mask = mask if self.return_sequences else None
        if self.return_state:
            return [output_mask] + [None] * len(self.state_size)
        return output_mask

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        output = (batch, time, self.units) if self.return_sequences else (batch, self.units)
        if self.return_state:
            return [output] + [(batch, n) for n in self.state_size]
        return output

    # ---------------------------------------------------------------- config
    def get_config(self):
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
    """LSTM with Gaussian posteriors over its input and recurrent kernels.

    Same equations, weight layout (gates ``i, f, c, o``) and arguments as
    ``keras.layers.LSTM``; one flipout perturbation per sequence is reused at
    every time step (see the module docstring). In posterior-mean mode
    (:func:`bayesflip.posterior_mean`) it equals ``keras.layers.LSTM`` with
    ``kernel``/``recurrent_kernel`` set to the posterior means.

    Args:
        units: positive int, size of the hidden state.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, unit_forget_bias,
            return_sequences, return_state, go_backwards, unroll: as in
            ``keras.layers.LSTM``.
        bayesian_bias: give the bias its own Gaussian posterior.
        estimator: ``"flipout"`` (default) or ``"shared"`` (one weight draw
            for the whole batch).
        prior, init_scale, min_scale, kl_weight, seed: see
            :class:`bayesflip.layers.VariationalLayer`.

    Call arguments: ``sequences`` ``(batch, time, features)``, optional
    ``initial_state`` ``[h, c]`` and ``mask`` ``(batch, time)``.

    Example:
    >>> import numpy as np
    >>> layer = LSTMFlipout(3, return_sequences=True, seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 5, 3])
    """

    gates = 4

    def __init__(self, units: int, unit_forget_bias: bool = True, **kwargs):
        super().__init__(units, **kwargs)
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

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class GRUFlipout(_RecurrentFlipout):
    """GRU with Gaussian posteriors over its input and recurrent kernels.

    Same equations, weight layout (gates ``z, r, h``; bias of shape
    ``(2, 3·units)``) and arguments as ``keras.layers.GRU`` with its default
    ``reset_after=True`` (the only variant implemented); one flipout
    perturbation per sequence is reused at every time step.

    Args:
        units: positive int, size of the hidden state.
        activation, recurrent_activation, use_bias, kernel_initializer,
            recurrent_initializer, bias_initializer, return_sequences,
            return_state, go_backwards, unroll: as in ``keras.layers.GRU``.
        bayesian_bias, estimator, prior, init_scale, min_scale, kl_weight,
            seed: see :class:`LSTMFlipout`.

    Example:
    >>> import numpy as np
    >>> layer = GRUFlipout(3, seed=0)
    >>> layer(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 3])
    """

    gates = 3

    def _bias_shape(self):
        return (2, self.gates * self.units)

    def _input_bias(self, bias):
        return None if bias is None else bias[0]

    def _recurrent_bias(self, bias):
        return None if bias is None else bias[1]

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
        self._perturbation = None
        self._perturbation_ready = False
        self.input_spec = keras.layers.InputSpec(ndim=2)

    def build(self, input_shape):
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=2, axes={-1: input_shape[-1]})

    @property
    def output_size(self) -> int:
        return self.units

    def get_dropout_mask(self, step_input):
        # keras.layers.RNN calls this once per call, before the time loop.
        self._begin_sequences(tf.shape(step_input)[0])
        return None

    def get_recurrent_dropout_mask(self, step_input):
        return None

    def reset_dropout_mask(self):
        self._perturbation = None
        self._perturbation_ready = False

    def reset_recurrent_dropout_mask(self):
        return None

    def _begin_sequences(self, batch_size):
        if self.use_posterior_mean:
            self._perturbation = None
            self._add_kl(seed=None)
        else:
            self._perturbation, kl_seed = self.draw_perturbation(batch_size)
            self._add_kl(samples=self._perturbation.samples, seed=kl_seed)
        self._perturbation_ready = True

    def call(self, inputs, states, training=None):
        x = self.cast_inputs(inputs)
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if not self._perturbation_ready:  # used outside keras.layers.RNN: one draw per call
            self._begin_sequences(tf.shape(x)[0])
            pert = self._perturbation
            self.reset_dropout_mask()
        else:
            pert = self._perturbation
        step = self._step_function(self._recurrent_projection(pert))
        return step(self._input_projection(x, pert), states)

    def get_config(self):
        config = super().get_config()
        for key in ("return_sequences", "return_state", "go_backwards", "unroll"):
            config.pop(key)
        return config


@keras.saving.register_keras_serializable(package="bayesflip")
class LSTMFlipoutCell(_FlipoutCell, LSTMFlipout):
    """The cell of :class:`LSTMFlipout`, for ``keras.layers.RNN``.

    One perturbation per sequence, drawn by ``keras.layers.RNN`` through its
    (Keras-internal) dropout-mask hook before the time loop; prefer
    :class:`LSTMFlipout`, which also computes the input projection of all
    steps at once. Arguments: those of :class:`LSTMFlipout` except
    ``return_sequences``, ``return_state``, ``go_backwards`` and ``unroll``
    (arguments of ``keras.layers.RNN``).

    Example:
    >>> import keras, numpy as np
    >>> rnn = keras.layers.RNN(LSTMFlipoutCell(3, seed=0), return_sequences=True)
    >>> rnn(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 5, 3])
    """


@keras.saving.register_keras_serializable(package="bayesflip")
class GRUFlipoutCell(_FlipoutCell, GRUFlipout):
    """The cell of :class:`GRUFlipout`, for ``keras.layers.RNN`` (see :class:`LSTMFlipoutCell`).

    Example:
    >>> import keras, numpy as np
    >>> keras.layers.RNN(GRUFlipoutCell(3, seed=0))(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 3])
    """

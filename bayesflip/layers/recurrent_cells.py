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

import keras
import tensorflow as tf

from bayesflip._keras_compat import DropoutRNNCell
from bayesflip.layers._ops import matmul as _matmul
from bayesflip.layers.recurrent import GRUFlipout, LSTMFlipout

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
        return step(inputs(_matmul, x), states)

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
class GRUFlipoutCell(_FlipoutCell, GRUFlipout):  # type: ignore[misc]
    """The cell of :class:`GRUFlipout`, for ``keras.layers.RNN`` (see :class:`LSTMFlipoutCell`).

    Example:
    >>> import keras, numpy as np
    >>> keras.layers.RNN(GRUFlipoutCell(3, seed=0))(np.ones((2, 5, 4), "float32")).shape
    TensorShape([2, 3])
    """

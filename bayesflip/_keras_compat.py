"""The only place where bayesflip touches private Keras / TensorFlow APIs.

Everything that has a public equivalent uses it (e.g. convolution output
shapes come from ``keras.ops.conv`` on ``KerasTensor``s, a Keras variable's
``tf.Variable`` from its public ``.value``). What remains is listed here, each
with why no public API serves and the versions it was checked on. A Keras or
TensorFlow release that moves one of them breaks this module alone.

Checked on: Keras 3.15.1 with TensorFlow 2.21.0 (the newest, .ci/run's main run) and Keras 3.10.0
with TensorFlow 2.16.1 (the oldest supported, .ci/oldest-constraints.txt; .ci/run's second run).

=================================  ==========================================================
private API                        used for
=================================  ==========================================================
``keras.src.backend.rnn``          the time loop of ``LSTMFlipout``/``GRUFlipout`` (masking,
                                   ``go_backwards``, ``unroll`` exactly as ``keras.layers.LSTM``);
                                   ``keras.ops`` has no ``rnn``
``keras.src...DropoutRNNCell``     the per-sequence hook of ``keras.layers.RNN`` the flipout
                                   cells use to draw one perturbation per sequence
``Layer._track_variable``          track the RNG-state ``keras.Variable`` (created directly,
                                   because ``add_weight`` takes no ``synchronization``)
``Layer._flatten_layers``          every nested layer of a model (``Model.layers`` is one level)
``train/test/predict_function``    drop Keras' cached traced functions after a mode change
``Layer._clear_losses``            drop the graph KL tensors a tracing call left in ``losses``
``Model._distribute_strategy``     the strategy a model was built under (``None`` if none);
                                   the public ``distribute_strategy`` falls back to the current one
``DistributedValues``              this replica's copy of a sync-on-read variable
``._get_on_device_or_primary``
``KerasTensor._keras_history``     the layer that produced a functional model's output
                                   (``Model.outputs`` holds the tensors, not their layers)
TF's ``_philox_scramble_seed``     the Philox key that ``tf.random``'s ``alg="philox"``
key ``0x02461E293EC8F720``         functions scramble a seed with; ``bayesflip.random``
                                   derives key and counter itself in fewer graph ops
                                   (bit-identical, tests/test_random.py)
=================================  ==========================================================
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.backend import rnn
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

__all__ = [
    "PHILOX_SCRAMBLE_KEY",
    "DropoutRNNCell",
    "clear_losses",
    "flatten_layers",
    "keras_history_operation",
    "model_distribute_strategy",
    "replica_local_variable",
    "reset_compiled_functions",
    "rnn",
    "track_variable",
]


#: The key of ``tensorflow.python.ops.stateless_random_ops._philox_scramble_seed``
#: (TensorFlow 2.16 – 2.21), which turns a stateless seed into Philox' key and counter.
PHILOX_SCRAMBLE_KEY = 0x02461E293EC8F720


def keras_history_operation(tensor: object) -> keras.Operation | None:
    """The operation (layer) that produced a symbolic Keras tensor, or ``None`` if unknown."""
    history = getattr(tensor, "_keras_history", None)
    return getattr(history, "operation", None) if history is not None else None


def track_variable(layer: keras.layers.Layer, variable: keras.Variable) -> None:
    """Make ``variable`` one of ``layer``'s (non-)trainable weights, saved with it."""
    layer._track_variable(variable)


def flatten_layers(model: keras.layers.Layer, include_self: bool = True) -> list[keras.layers.Layer]:
    """Every layer nested in ``model`` (depth first), ``model`` itself first when ``include_self``.

    An object without Keras' layer tracking (e.g. a plain callable) has no nested layers.
    """
    if not hasattr(model, "_flatten_layers"):
        return [model] if include_self else []
    return list(model._flatten_layers(include_self=include_self))


def reset_compiled_functions(model: keras.layers.Layer) -> None:
    """Drop Keras' cached traced ``fit``/``evaluate``/``predict`` functions so they retrace."""
    for attr in ("train_function", "test_function", "predict_function"):
        if getattr(model, attr, None) is not None:
            setattr(model, attr, None)


def clear_losses(model: keras.layers.Layer) -> None:
    """Empty the ``losses`` that calls of ``model`` (e.g. while tracing) appended."""
    if hasattr(model, "_clear_losses"):
        model._clear_losses()


def model_distribute_strategy(model: keras.layers.Layer) -> tf.distribute.Strategy | None:
    """The ``tf.distribute`` strategy ``model`` was created under, or ``None``."""
    return getattr(model, "_distribute_strategy", None)


def replica_local_variable(variable: tf.distribute.DistributedValues) -> tf.Variable:
    """This replica's own copy of a distributed (e.g. sync-on-read) variable (TF >= 2.4)."""
    return variable._get_on_device_or_primary()

"""Which weights a Laplace approximation covers, and the model cut at the last Dense layer.

The output space ``f`` of every approximation is the **pre-activation of the
model's last Dense layer** (logits, or the regression mean, or a
heteroscedastic head's ``[loc | raw scale]``). :class:`ModelParts` holds the
model cut there: ``features(x)`` (the last Dense layer's input ``φ``), the
layer's trained ``W`` and ``b``, and ``tail(f)`` (its activation and the
weightless layers after it, e.g. a head), so ``model(x) = tail(φ W + b)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip._keras_compat import flatten_layers

SUBSETS = ("last_layer", "all")
#: Layer types whose weights ``subset="all"`` covers (exact Keras classes and subclasses).
_ALL_TYPES = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _is_dense(layer) -> bool:
    from bayesflip.layers import DenseFlipout

    return isinstance(layer, (keras.layers.Dense, DenseFlipout))


def _weights_of(layer) -> tuple[np.ndarray, np.ndarray | None]:
    """Trained (posterior-mean) kernel and bias of a Dense or DenseFlipout layer, float64."""
    from bayesflip.layers import DenseFlipout
    from bayesflip.posteriors import WeightPosterior

    if isinstance(layer, DenseFlipout):
        kernel = layer.kernel_posterior.point_estimate()
        bias = layer.bias
        if isinstance(bias, WeightPosterior):
            bias = bias.point_estimate()
    else:
        kernel, bias = layer.kernel, layer.bias
    to64 = lambda t: np.asarray(keras.ops.convert_to_numpy(t), np.float64)  # noqa: E731
    return to64(kernel), (None if bias is None else to64(bias))


@dataclass
class ModelParts:
    """The model cut at its last Dense layer (see the module docstring)."""

    model: keras.Model
    last: Any
    head: Any
    tail_layers: list
    kernel: np.ndarray
    bias: np.ndarray | None
    features_model: Any
    covered: list = field(default_factory=list)

    @property
    def num_outputs(self) -> int:
        return int(self.kernel.shape[1])

    def features(self, x) -> tf.Tensor:
        """``φ``, the last Dense layer's input, float32 ``(B, d)``."""
        if self.features_model is None:
            return tf.cast(tf.convert_to_tensor(x), tf.float32)
        return tf.cast(self.features_model(x, training=False), tf.float32)

    def tail(self, f: tf.Tensor) -> tf.Tensor:
        """The model's output from ``f``: the last layer's activation, then the layers after it."""
        activation = getattr(self.last, "activation", None)
        y = activation(f) if activation is not None else f
        for layer in self.tail_layers:
            y = layer(y, training=False)
        return y


def cut(fn: str, model: keras.Model, subset: str) -> ModelParts:
    """Find the last Dense layer of ``model`` (and, for ``subset="all"``, every covered layer)."""
    from bayesflip import heads

    if not isinstance(model, keras.Model):
        raise TypeError(f"{fn}: `model` must be a built keras.Model, got {type(model).__name__}.")
    if subset not in SUBSETS:
        raise ValueError(f"{fn}: `subset_of_weights` must be one of {list(SUBSETS)}, got {subset!r}.")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"{fn}: model '{model.name}' must be a built Sequential or functional model with known inputs "
            "(start it with keras.Input)."
        )
    layers = list(model.layers)
    head = heads.output_head(model)
    with_weights = [i for i, layer in enumerate(layers) if layer.weights and layer is not head]
    if not with_weights:
        raise ValueError(f"{fn}: model '{model.name}' has no layer with weights.")
    index = with_weights[-1]
    last = layers[index]
    if not _is_dense(last):
        raise ValueError(
            f"{fn}: the last layer with weights of model '{model.name}' must be a Dense layer (its "
            f"pre-activation is the output the Laplace approximation linearises, for "
            f"`subset_of_weights`={subset!r}), got {type(last).__name__} '{last.name}'."
        )
    if len(last.input.shape) != 2:
        raise ValueError(
            f"{fn}: the last Dense layer '{last.name}' must take (batch, features) inputs, got shape "
            f"{tuple(last.input.shape)}."
        )
    tail_layers = layers[index + 1 :]
    kernel, bias = _weights_of(last)
    is_input = any(last.input is t for t in model.inputs)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    features_model = None if is_input else keras.Model(inputs, last.input)
    covered = [last]
    if subset == "all":
        from bayesflip.inference import variational_layers

        bad = [
            f"{type(layer).__name__} '{layer.name}'"
            for layer in flatten_layers(model, include_self=False)
            if layer.weights
            and layer is not head
            and not isinstance(layer, keras.Model)
            and (not isinstance(layer, _ALL_TYPES) or layer in variational_layers(model))
        ]
        if bad:
            raise ValueError(
                f"{fn}: subset_of_weights='all' covers Dense and Conv1D/2D/3D layers only; model "
                f"'{model.name}' also has weights in {', '.join(bad)}. Use subset_of_weights='last_layer'."
            )
        covered = [
            layer
            for layer in flatten_layers(model, include_self=False)
            if isinstance(layer, _ALL_TYPES) and layer.weights
        ]
    return ModelParts(model, last, head, tail_layers, kernel, bias, features_model, covered)

"""Inference modes: posterior samples (the default) or the posterior mean."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras

from bayesflip._keras_compat import flatten_layers, reset_compiled_functions
from bayesflip.layers._variational import VariationalLayer

__all__ = ["variational_layers", "set_posterior_mean", "posterior_mean"]


def variational_layers(model: keras.layers.Layer) -> list[VariationalLayer]:
    """All bayesflip variational layers in ``model`` (itself included), in order."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"variational_layers expects a Keras model or layer, got {type(model).__name__}.")
    found = [model] if isinstance(model, VariationalLayer) else []
    found += [l for l in flatten_layers(model, include_self=False) if isinstance(l, VariationalLayer)]
    return found


def _reset_compiled_functions(model) -> None:
    # Keras caches traced train/test/predict functions; a mode change must retrace.
    reset_compiled_functions(model)


def set_posterior_mean(model: keras.layers.Layer, enabled: bool = True) -> None:
    """Switch every variational layer of ``model`` to posterior-mean predictions.

    With ``enabled=True`` forward passes use ``W = loc`` (no sampling, the RNG
    state does not advance); with ``False`` they draw posterior samples again.
    Compiled ``predict``/``evaluate``/``fit`` functions are reset so the change
    takes effect. (A ``tf.function`` of your own that calls the model must be
    retraced by you.)

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=1)])
    >>> set_posterior_mean(m)
    >>> x = np.ones((1, 4), "float32")
    >>> bool((m(x) == m(x)).numpy().all())
    True
    """
    layers = variational_layers(model)
    if not layers:
        raise ValueError(f"set_posterior_mean: model '{model.name}' has no bayesflip variational layers.")
    for layer in layers:
        layer.use_posterior_mean = bool(enabled)
    _reset_compiled_functions(model)


@contextlib.contextmanager
def posterior_mean(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    """Context manager: inside it, ``model`` predicts with the posterior mean.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=1)])
    >>> with posterior_mean(m):
    ...     y = m.predict(np.ones((3, 4), "float32"), verbose=0)
    >>> y.shape
    (3, 2)
    """
    layers = variational_layers(model)
    previous = [layer.use_posterior_mean for layer in layers]
    set_posterior_mean(model, True)
    try:
        yield model
    finally:
        for layer, value in zip(layers, previous):
            layer.use_posterior_mean = value
        _reset_compiled_functions(model)

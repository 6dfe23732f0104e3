"""Inference modes: posterior samples (the default) or the posterior mean.

Every mode switch goes through one helper, ``_switch_mode`` (and its
context-manager form ``_mode``): it sets an attribute of the variational
layers and then calls ``_invalidate_compiled``, which drops every compiled
function that may have baked the old value into a trace: Keras'
``train_function`` / ``test_function`` / ``predict_function`` of the model and
of every model nested in it, and every cache registered with
``_register_compiled_cache`` (the samplers of
:func:`bayesflip.uncertainty.mc_predict`). The modes today are
``use_posterior_mean`` (:func:`set_posterior_mean`, :func:`posterior_mean`) and
``estimator`` (:func:`bayesflip.diagnostics.use_estimator`). A new mode (e.g. a
per-component mode of a mixture posterior) is a layer attribute read in
``call``; switch it with ``_switch_mode(model, layers, "attribute", values)``
or ``with _mode(model, layers, "attribute", value):`` and never by assigning the
attribute directly, and register any new cache of compiled functions that
depend on it. (A ``tf.function`` of your own that calls the model must be
retraced by you.)
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import keras

from bayesflip._keras_compat import flatten_layers, reset_compiled_functions
from bayesflip.layers._variational import VariationalLayer

__all__ = ["variational_layers", "set_posterior_mean", "posterior_mean"]

#: Caches of compiled functions keyed (weakly) by a model or layer, emptied for it on every mode switch.
_COMPILED_CACHES: list[weakref.WeakKeyDictionary] = []


def variational_layers(model: keras.layers.Layer) -> list[VariationalLayer]:
    """All bayesflip variational layers in ``model`` (itself included), in order."""
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"variational_layers expects a Keras model or layer, got {type(model).__name__}.")
    found = [model] if isinstance(model, VariationalLayer) else []
    found += [l for l in flatten_layers(model, include_self=False) if isinstance(l, VariationalLayer)]
    return found


def _register_compiled_cache(cache: weakref.WeakKeyDictionary) -> weakref.WeakKeyDictionary:
    """Make ``_invalidate_compiled`` empty ``cache``'s entry of a model (and its nested layers)."""
    _COMPILED_CACHES.append(cache)
    return cache


def _invalidate_compiled(model: keras.layers.Layer) -> None:
    """Drop every compiled function of ``model`` and its nested layers that may have baked in a mode."""
    for layer in flatten_layers(model, include_self=True):
        reset_compiled_functions(layer)  # Keras' traced fit/evaluate/predict functions
        for cache in _COMPILED_CACHES:
            cache.pop(layer, None)


def _switch_mode(
    model: keras.layers.Layer, layers: Sequence[Any], attribute: str, values: Sequence[Any]
) -> None:
    """Set ``layer.<attribute> = value`` for each layer and value, then invalidate ``model``'s compiled functions.

    ``layers`` are the variational layers, or objects they own whose attribute a trace reads (the
    posteriors' ``prune_threshold``).

    The one way a mode changes: every public switch goes through it.
    """
    if len(layers) != len(values):
        raise ValueError(f"_switch_mode: {len(layers)} layers but {len(values)} values.")
    for layer, value in zip(layers, values):
        setattr(layer, attribute, value)
    _invalidate_compiled(model)


@contextlib.contextmanager
def _mode(
    model: keras.layers.Layer, layers: Sequence[Any], attribute: str, value: Any
) -> Iterator[keras.layers.Layer]:
    """Context manager: ``attribute = value`` on ``layers`` inside, the previous values restored after.

    Both the switch and the restore go through ``_switch_mode``.
    """
    previous = [getattr(layer, attribute) for layer in layers]
    _switch_mode(model, layers, attribute, [value] * len(layers))
    try:
        yield model
    finally:
        _switch_mode(model, layers, attribute, previous)


def set_posterior_mean(model: keras.layers.Layer, enabled: bool = True) -> None:
    """Switch every variational layer of ``model`` to posterior-mean predictions.

    With ``enabled=True`` forward passes use ``W = loc`` (no sampling, the RNG
    state does not advance); with ``False`` they draw posterior samples again.
    Compiled ``predict``/``evaluate``/``fit`` functions and the cached
    :func:`~bayesflip.uncertainty.mc_predict` samplers are reset so the change
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
    _switch_mode(model, layers, "use_posterior_mean", [bool(enabled)] * len(layers))


@contextlib.contextmanager
def posterior_mean(model: keras.layers.Layer, prune: bool = True) -> Iterator[keras.layers.Layer]:
    """Context manager: inside it, ``model`` predicts with the posterior mean.

    Args:
        model: a Keras model or layer with bayesflip variational layers.
        prune: for weights under a variational-dropout posterior that prunes
            (:class:`~bayesflip.posteriors.VariationalDropout` with a
            ``prune_threshold``), whether the posterior mean sets the weights with
            ``log α`` above the threshold to zero (the default, as
            :func:`set_posterior_mean`) or keeps every weight at its mean
            (``prune=False``: the unpruned network, to measure what pruning
            costs). Other posteriors do not prune and ignore it.

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
    if not layers:
        raise ValueError(f"posterior_mean: model '{model.name}' has no bayesflip variational layers.")
    if not isinstance(prune, bool):
        raise TypeError(f"posterior_mean: `prune` must be True or False, got {prune!r}.")
    pruning = (
        []
        if prune
        else [
            post
            for layer in layers
            for post in layer.posteriors
            if getattr(post, "prune_threshold", None) is not None
        ]
    )
    # Both switches go through _switch_mode: the compiled functions are invalidated on entry and exit.
    with _mode(model, layers, "use_posterior_mean", True), _mode(model, pruning, "prune_threshold", None):
        yield model

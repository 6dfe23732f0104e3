"""Monte Carlo predictive sampling: :func:`mc_predict` and its compiled samplers.

One ``tf.function`` per model and settings runs the ``num_samples`` forward
passes in a ``tf.while_loop``; the functions are cached per model (weakly),
dropped on every mode switch (the cache is registered with
``bayesflip.inference``) and keyed on everything a trace bakes in (see
:func:`_graph_key`), so a change made another way still selects another one.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_positive_int, warn_probabilities_as_logits
from bayesflip._keras_compat import clear_losses, flatten_layers
from bayesflip._predictive_core import apply_link
from bayesflip.heads import output_head
from bayesflip.inference import _mode, _register_compiled_cache, variational_layers
from bayesflip.uncertainty._classification import _on_simplex

_SAMPLERS: weakref.WeakKeyDictionary[keras.layers.Layer, dict] = _register_compiled_cache(
    weakref.WeakKeyDictionary()
)


def _mode_key(model) -> tuple:
    layers = variational_layers(model)
    modes = tuple(bool(layer.use_posterior_mean) for layer in layers)
    return modes


def _graph_key(model) -> tuple:
    """Everything a trace reads as a Python value and bakes into the compiled sampler.

    Per variational layer its ``estimator`` (switched by
    :func:`bayesflip.diagnostics.use_estimator`) and posterior-mean mode, and for
    every layer its dtype policy (the casts). A change in any of them must select
    (or build) another compiled sampler, never reuse a stale one.
    """
    variational = tuple(
        (layer.name, getattr(layer, "estimator", None), bool(layer.use_posterior_mean))
        for layer in variational_layers(model)
    )
    layers = flatten_layers(model, include_self=True)
    policies = tuple(getattr(getattr(layer, "dtype_policy", None), "name", None) for layer in layers)
    return variational, policies


def _build_sampler(model, num_samples, return_samples, link, training, jit_compile, signature):
    # A weak reference: the cache is keyed weakly by the model, so its values must not keep it alive.
    model_ref = weakref.ref(model)

    def forward(x):
        live = model_ref()
        assert live is not None, "mc_predict: the model of a cached sampler was deleted"
        y = live(x, training=training)
        return tf.nest.map_structure(lambda t: tf.cast(t, tf.float32), y)

    def link_all(y):
        return y if link is None else tf.nest.map_structure(lambda t: apply_link(link, t), y)

    def one_pass(x):
        return link_all(forward(x))

    def run(x):
        # Each iteration is one full forward pass: every variational layer reads
        # and advances its RNG state, i.e. draws a fresh ΔW. parallel_iterations=1
        # keeps the state reads/updates of successive passes ordered.
        raw = forward(x)
        # from_logits=True on outputs that are already probabilities: checked on the first draw.
        probs_as_logits = _on_simplex(raw) if link == "softmax" and tf.is_tensor(raw) else tf.constant(False)
        first = link_all(raw)
        if return_samples:
            acc = tf.nest.map_structure(
                lambda t: tf.TensorArray(tf.float32, size=num_samples, element_shape=t.shape).write(0, t),
                first,
            )

            def body(i, acc):
                y = one_pass(x)
                return i + 1, tf.nest.map_structure(lambda ta, t: ta.write(i, t), acc, y)

        else:
            acc = first

            def body(i, acc):
                y = one_pass(x)
                return i + 1, tf.nest.map_structure(tf.add, acc, y)

        _, acc = tf.while_loop(
            lambda i, _: i < num_samples, body, (tf.constant(1), acc), parallel_iterations=1
        )
        if return_samples:
            return tf.nest.map_structure(lambda ta: ta.stack(), acc), probs_as_logits
        return tf.nest.map_structure(lambda t: t / num_samples, acc), probs_as_logits

    kwargs = {"jit_compile": jit_compile}
    if signature is not None:
        kwargs["input_signature"] = [signature]
    else:
        kwargs["reduce_retracing"] = True
    # TensorFlow counts traces per Python *code object* to warn about "creating
    # @tf.function repeatedly in a loop": every model's sampler shares the code of
    # ``run``, so fresh models in a loop (cross-validation, seeds) would look like
    # retracing from the fifth model on. A ``functools.partial`` has no code object
    # of its own: the count is per sampler, and a sampler that really retraces still warns.
    return tf.function(functools.partial(run), **kwargs)


def _build_without_drawing(model: keras.layers.Layer, x: Any) -> None:
    """Build ``model`` by calling it on ``x`` in posterior-mean mode: no layer draws, no RNG state advances."""
    layers = variational_layers(model)
    with _mode(model, layers, "use_posterior_mean", True):
        model(x)
    clear_losses(model)


def mc_predict(
    model: keras.layers.Layer,
    x: Any,
    num_samples: int = 32,
    batch_size: int | None = None,
    return_samples: bool = False,
    *,
    from_logits: bool = False,
    training: bool = False,
    jit_compile: bool = False,
) -> Any:
    """Monte Carlo predictive: ``num_samples`` independent posterior draws per input.

    Every draw is a separate forward pass of ``model`` in which each variational
    layer draws its own weight perturbation ``ΔW`` (advancing its saved RNG
    state), so the ``num_samples`` outputs of one input are independent samples
    of the posterior predictive. The passes run in one compiled
    ``tf.while_loop`` per batch of inputs (traced once per model and settings).
    Layers in posterior-mean mode (:func:`bayesflip.posterior_mean`) do not
    sample. The compiled function is keyed on what its trace bakes in (each
    layer's estimator and posterior-mean mode, the dtype policies): switching
    any of them selects or builds another one.

    Args:
        model: a Keras model or layer (built, or buildable by calling it on ``x``).
        x: inputs, an array/tensor ``(N, ...)`` or a nested structure of them
            with the same first dimension; or a ``tf.data.Dataset`` of batches
            (elements ``x``, ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)``, as
            ``model.fit`` takes them: the targets are ignored), whose results are
            concatenated in the dataset's order.
        num_samples: number of posterior draws ``T`` (positive int).
        batch_size: inputs per compiled call; default ``min(N, 1024)`` (for a
            dataset: each of its batches, split further if larger). Memory of
            one call is about ``T × batch_size × outputs`` floats with
            ``return_samples``.
        return_samples: return all draws (sample axis first) instead of their mean.
        from_logits: apply a softmax to each draw (for models that output
            logits), so the mean is the MC-averaged predictive probability.
            Warns, like Keras' losses, when the first draw's outputs already
            lie on the probability simplex (a model ending in a softmax): a
            second softmax would silently flatten them.
        training: the ``training`` flag passed to the model (``True`` for
            MC-dropout models).
        jit_compile: compile the sampling loop with XLA.

    Returns:
        NumPy ``float32`` array ``(N, ...)`` with the mean over draws, or
        ``(T, N, ...)`` with ``return_samples=True`` (nested like the model's
        outputs for multi-output models). When the model's single output layer
        is a likelihood head (:mod:`bayesflip.heads`), the head's predictive
        instead: a :class:`bayesflip.heads.RegressionPredictive` for Gaussian and
        Student-t heads (draws in its ``samples``; ``return_samples`` is then
        ignored), the MC-averaged softmax/sigmoid probabilities (per-draw with
        ``return_samples=True``) for categorical/Bernoulli heads.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, activation="softmax", seed=0)])
    >>> x = np.ones((5, 4), "float32")
    >>> mc_predict(model, x, num_samples=8, return_samples=True).shape
    (8, 5, 3)
    >>> np.allclose(mc_predict(model, x, num_samples=8).sum(axis=-1), 1.0, atol=1e-5)
    True
    """
    fn = "mc_predict"
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(f"{fn}: `model` must be a Keras model or layer, got {type(model).__name__}.")
    num_samples = check_positive_int(fn, "num_samples", num_samples)
    batch_size = check_positive_int(fn, "batch_size", batch_size, allow_none=True)
    settings = (num_samples, batch_size, return_samples, from_logits, training, jit_compile)
    if isinstance(x, tf.data.Dataset):
        parts = [_draws(model, keras.utils.unpack_x_y_sample_weight(batch)[0], *settings) for batch in x]
        if not parts:
            raise ValueError(f"{fn}: the tf.data.Dataset `x` yielded no batches.")
        axis, finish = parts[0][1], parts[0][2]
        result = _concatenate([part[0] for part in parts], axis)
    else:
        result, _, finish = _draws(model, x, *settings)
    return result if finish is None else finish(result)


def _draws(
    model: keras.layers.Layer,
    x: Any,
    num_samples: int,
    batch_size: int | None,
    return_samples: bool,
    from_logits: bool,
    training: bool,
    jit_compile: bool,
) -> tuple[Any, int, Callable | None]:
    """:func:`mc_predict` on in-memory inputs: ``(draws or their mean, the batch axis, the head's finish)``."""
    fn = "mc_predict"
    leaves = tf.nest.flatten(x)
    if not leaves:
        raise ValueError(f"{fn}: `x` is empty.")
    leaves = [t if tf.is_tensor(t) else np.asarray(t) for t in leaves]
    for leaf in leaves:
        if len(leaf.shape) == 0:
            raise ValueError(f"{fn}: inputs need a leading batch dimension, got a scalar.")
    n = int(leaves[0].shape[0])
    if any(int(leaf.shape[0]) != n for leaf in leaves):
        raise ValueError(
            f"{fn}: all inputs must share the first (batch) dimension, got {[l.shape for l in leaves]}."
        )
    if n == 0:
        raise ValueError(f"{fn}: got an empty input (batch dimension 0).")
    x = tf.nest.pack_sequence_as(x, leaves)
    batch_size = batch_size or min(n, 1024)

    if not model.built:
        _build_without_drawing(model, tf.nest.map_structure(lambda t: t[:1], x))
    # A likelihood head as the output layer decides the per-draw link and the reduction.
    head = output_head(model)
    link, finish = ("softmax" if from_logits else None), None
    if head is not None:
        spec = head.predictive_spec
        if spec.task == "regression":
            if from_logits:
                raise ValueError(
                    f"{fn}: `from_logits` does not apply to a model ending in {type(head).__name__} "
                    f"'{head.name}' (it returns the head's regression predictive)."
                )
            return_samples, finish = True, head.predictive
        link = spec.link
    modes = _mode_key(model)
    if modes and all(modes) and not training:
        warnings.warn(
            f"{fn}: every variational layer of '{model.name}' is in posterior-mean mode, "
            f"so all {num_samples} draws are identical.",
            stacklevel=2,
        )
    signature = None
    if len(leaves) == 1 and not isinstance(x, (list, tuple, dict)):
        signature = tf.TensorSpec([None, *leaves[0].shape[1:]], tf.as_dtype(leaves[0].dtype))
    key = (
        num_samples,
        bool(return_samples),
        link,
        bool(training),
        bool(jit_compile),
        _graph_key(model),
        signature,
    )
    cache = _SAMPLERS.setdefault(model, {})
    if key not in cache:
        cache[key] = _build_sampler(
            model, num_samples, bool(return_samples), link, training, jit_compile, signature
        )
    sampler = cache[key]

    outputs, probs_as_logits = [], False
    for start in range(0, n, batch_size):
        chunk = tf.nest.map_structure(lambda t, start=start: t[start : start + batch_size], x)
        draws, flag = sampler(chunk)
        probs_as_logits = probs_as_logits or bool(flag)
        outputs.append(tf.nest.map_structure(lambda t: t.numpy(), draws))
    if probs_as_logits:
        warn_probabilities_as_logits(fn, f"the outputs of '{model.name}'")
    # The compiled passes append their (graph) KL tensors to ``model.losses``.
    clear_losses(model)
    axis = 1 if return_samples else 0
    return _concatenate(outputs, axis), axis, finish


def _concatenate(parts: list, axis: int) -> Any:
    """Nested outputs of consecutive batches joined along the batch ``axis`` (one part: itself)."""
    if len(parts) == 1:
        return parts[0]
    return tf.nest.map_structure(lambda *chunks: np.concatenate(chunks, axis=axis), *parts)

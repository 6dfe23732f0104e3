"""Serving export: a SavedModel with the MC predictive, its uncertainty and the posterior mean.

The function is ``bayesflip.export``; this module is ``bayesflip.serving`` (not
``bayesflip.export``, whose name the function takes in the package namespace: a
submodule of the same name would replace the function as soon as anything
imported it, e.g. pytest's doctest collection).

:func:`export` writes a TensorFlow SavedModel whose signatures run in plain
TensorFlow (``tf.saved_model.load`` or TF Serving), **without bayesflip, Keras or
TFP installed**: the graphs contain only TensorFlow ops and the model's weights.

==================  =====================================================================
signature           outputs (``N`` inputs, ``T = num_samples`` independent posterior draws)
==================  =====================================================================
``predict``         ``predictions``: the MC predictive, the mean over ``T`` draws (of the
                    per-draw probabilities for classifiers; of ``loc`` for Gaussian/
                    Student-t heads); ``samples``: the ``T`` draws ``(T, N, ...)``
``uncertainty``     classifiers: ``probabilities``, ``predictive_entropy``,
                    ``expected_entropy``, ``mutual_information`` (nats; per unit for
                    sigmoid/Bernoulli outputs). Gaussian/Student-t heads: ``mean``,
                    ``total_variance``, ``aleatoric_variance``, ``epistemic_variance``.
                    Other regression outputs: ``mean``, ``epistemic_variance``.
``posterior_mean``  ``predictions``: the deterministic prediction at the posterior mean
                    (probabilities for classifiers, the head's ``[loc, scale(, df)]``
                    for regression heads)
==================  =====================================================================

Randomness: the ``T`` draws of one call run in one graph (a ``tf.while_loop``),
each a full forward pass with its own weight perturbation. Draw ``k`` of the
exported stream uses the same stateless seeds as the ``k``-th forward pass the
Python model would make from the state it had at export, so the first
``predict`` call equals ``mc_predict(model, x, num_samples)`` on the model as
exported (tested). Each call reserves its block of draws with TensorFlow's
atomic ``RngReadAndSkip`` on the export's own counter: concurrent requests
never share a draw.

TFLite: the ``posterior_mean`` signature converts with builtin ops only; the
sampling signatures need ``tf.lite.OpsSet.SELECT_TF_OPS`` (see the README's
"Deploying" section).
"""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from bayesflip import _keras_compat
from bayesflip import random as rnd
from bayesflip._checks import check_positive_int

__all__ = ["export"]

#: ``RngReadAndSkip`` advances a Philox counter by 256 per unit of ``delta``.
_PHILOX = 1
_SKIP_UNIT = 256


def _input_spec(fn: str, model) -> tf.TensorSpec:
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None
    if not inputs or len(inputs) != 1:
        what = "no symbolic inputs" if not inputs else f"{len(inputs)} inputs"
        raise ValueError(
            f"{fn}: expected a built Sequential or functional Keras model with exactly one input "
            f"(e.g. starting with keras.Input(shape)), got model '{model.name}' with {what}."
        )
    x = inputs[0]
    return tf.TensorSpec([None, *x.shape[1:]], tf.as_dtype(x.dtype), name="x")


def _plan(model, from_logits: bool):
    """``(kind, link, num_params)``: kind is 'classification', 'regression_head' or 'regression'."""
    from bayesflip import heads

    head = heads.output_head(model)
    if head is not None:
        if isinstance(head, heads._RegressionHead):
            return "regression_head", None, head._num_params
        return "classification", head._mc_link, None
    if from_logits:
        return "classification", "softmax", None
    last = model.layers[-1] if isinstance(model, keras.Sequential) and model.layers else None
    if last is None and isinstance(model, keras.Model):
        try:
            last = model.outputs[0]._keras_history.operation
        except (AttributeError, IndexError, ValueError):
            last = None
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", "")
    if name in ("softmax", "sigmoid"):
        return "classification", None, ("binary" if name == "sigmoid" else None)
    return "regression", None, None


def _entropies(sample_probs: tf.Tensor, binary: bool) -> dict:
    """Predictive, expected entropy and mutual information of per-draw probabilities ``(T, N, ...)``."""
    p = tf.clip_by_value(sample_probs, 0.0, 1.0)
    if binary:
        p = tf.stack([1.0 - p, p], axis=-1)

    def entropy(q):
        return tf.maximum(-tf.reduce_sum(tf.math.xlogy(q, q), axis=-1), 0.0)

    mean = tf.reduce_mean(p, axis=0)
    total = entropy(mean)
    expected = tf.reduce_mean(entropy(p), axis=0)
    return {
        "probabilities": tf.reduce_mean(sample_probs, axis=0),
        "predictive_entropy": total,
        "expected_entropy": expected,
        "mutual_information": tf.maximum(total - expected, 0.0),
    }


def _regression_moments(samples: tf.Tensor, num_params: int) -> dict:
    """Mixture mean and variance decomposition of head draws ``(T, N, ..., units, 2 | 3)``."""
    loc, scale = samples[..., 0], samples[..., 1]
    var = tf.square(scale)
    if num_params == 3:
        df = samples[..., 2]
        factor = tf.where(df > 2.0, df / tf.maximum(df - 2.0, 1e-30), tf.constant(np.inf, samples.dtype))
        var = var * factor
    aleatoric = tf.reduce_mean(var, axis=0)
    mean = tf.reduce_mean(loc, axis=0)
    epistemic = tf.reduce_mean(tf.square(loc - mean), axis=0)
    return {
        "mean": mean,
        "total_variance": aleatoric + epistemic,
        "aleatoric_variance": aleatoric,
        "epistemic_variance": epistemic,
    }


def export(
    model: keras.Model,
    path: str | os.PathLike,
    num_samples: int = 32,
    *,
    from_logits: bool = False,
    overwrite: bool = False,
) -> str:
    """Write a serving SavedModel with ``predict``, ``uncertainty`` and ``posterior_mean`` signatures.

    The SavedModel runs in plain TensorFlow (no bayesflip, Keras or TFP needed
    to load or call it). Every call of ``predict``/``uncertainty`` draws
    ``num_samples`` independent posterior samples in one graph; concurrent
    calls never share a draw (one atomic ``RngReadAndSkip`` per call). The
    export reads the layers' RNG states and does not advance them.

    The folder is written next to ``path`` under a temporary name and renamed
    to ``path`` only when complete: a failure leaves no partial export.

    Args:
        model: a built single-input Sequential or functional Keras model with
            bayesflip variational layers. The kind of output decides the
            ``uncertainty`` signature: a :mod:`bayesflip.heads` regression head
            (Gaussian/Student-t), a classifier (a categorical/Bernoulli head,
            a softmax/sigmoid output layer, or ``from_logits=True``), or any
            other (regression) output.
        path: target folder; must not exist or be empty, unless ``overwrite``.
        num_samples: posterior draws per call ``T`` (positive int).
        from_logits: the model outputs logits; apply a softmax to each draw
            (as in :func:`bayesflip.uncertainty.mc_predict`).
        overwrite: replace an existing non-empty ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: ``num_samples < 1``, no variational layers, not a
            single-input model, or ``path`` not empty without ``overwrite``.
        TypeError: ``model`` is not a Keras model.

    Example:
    >>> import keras, numpy as np, tempfile, os, tensorflow as tf, bayesflip
    >>> from bayesflip.layers import DenseFlipout
    >>> model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, activation="softmax", seed=0)])
    >>> path = bayesflip.export(model, os.path.join(tempfile.mkdtemp(), "bnn"), num_samples=8)
    >>> served = tf.saved_model.load(path)
    >>> out = served.signatures["uncertainty"](x=tf.ones((2, 4)))
    >>> sorted(out)
    ['expected_entropy', 'mutual_information', 'predictive_entropy', 'probabilities']
    >>> served.signatures["predict"](x=tf.ones((2, 4)))["samples"].shape
    TensorShape([8, 2, 3])
    """
    fn = "export"
    from bayesflip.inference import posterior_mean, variational_layers

    if not isinstance(model, keras.Model):
        raise TypeError(f"{fn}: `model` must be a Keras model, got {type(model).__name__}.")
    num_samples = check_positive_int(fn, "num_samples", num_samples)
    layers = variational_layers(model)
    if not layers:
        raise ValueError(
            f"{fn}: model '{model.name}' has no bayesflip variational layers; use keras.Model.export "
            f"for a deterministic model (or bayesflip.convert.to_bayesian first)."
        )
    if not all(layer.built for layer in layers):
        raise ValueError(
            f"{fn}: model '{model.name}' is not built; call it on a batch (or start it with keras.Input)."
        )
    path = os.fspath(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)) and not overwrite:
        raise ValueError(
            f"{fn}: `path` {path!r} exists and is not an empty folder; pass overwrite=True to replace it."
        )
    spec = _input_spec(fn, model)
    kind, link, extra = _plan(model, bool(from_logits))
    links = {"softmax": lambda t: tf.nn.softmax(t, axis=-1), "sigmoid": tf.sigmoid, None: lambda t: t}
    apply_link = links[link]

    module = tf.Module()
    module.model_variables = [v.value if isinstance(v, keras.Variable) else v for v in model.variables]
    # The serving graph's own RNG counter in TF's Philox layout [counter_lo, counter_hi, key];
    # RngReadAndSkip reads it and skips ahead atomically (as tf.random.Generator does).
    module.serving_rng_state = tf.Variable(
        np.array([0, 0, 0], np.int64), trainable=False, name="serving_rng_state"
    )
    T = num_samples

    def one_draw(x, offset):
        with rnd.counter_offset(offset):
            y = model(x, training=False)
        return apply_link(tf.cast(y, tf.float32))

    def draws(x):
        old = tf.raw_ops.RngReadAndSkip(
            resource=module.serving_rng_state.handle,
            alg=tf.constant(_PHILOX, tf.int32),
            delta=tf.constant(1, tf.uint64),
        )
        base = (old[0] // _SKIP_UNIT) * T
        first = one_draw(x, base)
        ta = tf.TensorArray(tf.float32, size=T, element_shape=first.shape).write(0, first)

        def body(s, ta):
            return s + 1, ta.write(s, one_draw(x, base + tf.cast(s, tf.int64)))

        # The draws are addressed by explicit counters: no state is written in the
        # loop, so its iterations may run in parallel.
        _, ta = tf.while_loop(lambda s, _: s < T, body, (tf.constant(1), ta))
        return ta.stack()

    def predict(x):
        samples = draws(x)
        if kind == "regression_head":
            mean = tf.reduce_mean(samples[..., 0], axis=0)
        else:
            mean = tf.reduce_mean(samples, axis=0)
        return {"predictions": mean, "samples": samples}

    def uncertainty(x):
        samples = draws(x)
        if kind == "regression_head":
            return _regression_moments(samples, extra)
        if kind == "classification":
            return _entropies(samples, binary=(link == "sigmoid" or extra == "binary"))
        mean = tf.reduce_mean(samples, axis=0)
        return {"mean": mean, "epistemic_variance": tf.reduce_mean(tf.square(samples - mean), axis=0)}

    def mean_prediction(x):
        return {"predictions": apply_link(tf.cast(model(x, training=False), tf.float32))}

    tmp = None
    try:
        predict_fn = tf.function(predict, input_signature=[spec], autograph=False).get_concrete_function()
        uncertainty_fn = tf.function(
            uncertainty, input_signature=[spec], autograph=False
        ).get_concrete_function()
        with posterior_mean(model):
            mean_fn = tf.function(
                mean_prediction, input_signature=[spec], autograph=False
            ).get_concrete_function()
        module.predict, module.uncertainty, module.posterior_mean = predict_fn, uncertainty_fn, mean_fn
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.partial-", dir=parent)
        tf.saved_model.save(
            module,
            tmp,
            signatures={"predict": predict_fn, "uncertainty": uncertainty_fn, "posterior_mean": mean_fn},
            # The serving graphs are never differentiated; saving custom gradients would trace
            # the layers' KL gradient hooks for nothing.
            options=tf.saved_model.SaveOptions(experimental_custom_gradients=False),
        )
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _keras_compat.clear_losses(model)  # the traced calls appended graph KL tensors to model.losses
    return path

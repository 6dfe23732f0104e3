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
``uncertainty``     ``task="classification"``/``"binary"``: ``probabilities``,
                    ``predictive_entropy``, ``expected_entropy``, ``mutual_information``
                    (nats; per unit for ``"binary"``). Gaussian/Student-t heads: ``mean``,
                    ``total_variance``, ``aleatoric_variance``, ``epistemic_variance``.
                    Other ``task="regression"`` outputs: ``mean``, ``epistemic_variance``.
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

The task comes from ``task=`` or the model's :mod:`bayesflip.heads` output head
(its :class:`~bayesflip.heads.PredictiveSpec`), never from an activation's name;
the formulas are those of :mod:`bayesflip.uncertainty` (one shared predictive core).

TFLite: the ``posterior_mean`` signature converts with builtin ops only; the
sampling signatures need ``tf.lite.OpsSet.SELECT_TF_OPS`` (see ``docs/serving.md``).
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
from bayesflip._predictive_core import (
    RegressionPredictive,
    apply_link,
    bernoulli_as_categorical,
    component_variance,
    entropy_decomposition,
    mixture_moments,
)
from bayesflip.heads import TASKS, PredictiveSpec, output_head
from bayesflip.inference import posterior_mean, variational_layers

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


def _predictive_spec(fn: str, model, task: str | None, from_logits: bool) -> PredictiveSpec:
    """What the exported signatures compute: the output head's spec, or the one ``task`` states.

    Only a bayesflip head is read; a model without one needs ``task`` (or
    ``from_logits=True``, which means softmax-over-logits classification).
    """
    if task is not None and task not in TASKS:
        raise ValueError(f"{fn}: `task` must be one of {list(TASKS)} or None, got {task!r}.")
    head = output_head(model)
    if head is not None:
        spec = head.predictive_spec
        if task is not None and task != spec.task:
            raise ValueError(
                f"{fn}: model '{model.name}' ends in {type(head).__name__} '{head.name}', whose task is "
                f"{spec.task!r}, got task={task!r}."
            )
        if from_logits and spec.task == "regression":
            raise ValueError(
                f"{fn}: `from_logits` does not apply to a model ending in {type(head).__name__} "
                f"'{head.name}' (a regression head)."
            )
        return spec
    if task is None:
        if not from_logits:
            raise ValueError(
                f"{fn}: model '{model.name}' does not end in a bayesflip head, so its task is unknown; "
                f"pass task='classification' (probabilities over the last axis), 'binary' (one "
                f"probability per unit) or 'regression' (or from_logits=True for logits)."
            )
        task = "classification"
    if task == "regression":
        if from_logits:
            raise ValueError(f"{fn}: `from_logits` does not apply to task='regression'.")
        return PredictiveSpec("regression", None, None)
    link = ("sigmoid" if task == "binary" else "softmax") if from_logits else None
    return PredictiveSpec(task, link, None)  # type: ignore[arg-type]


def _uncertainty_outputs(spec: PredictiveSpec, samples: tf.Tensor) -> dict:
    """The ``uncertainty`` signature's outputs from the per-draw outputs ``(T, N, ...)`` (links applied)."""
    if spec.task == "regression" and spec.num_params is not None:
        df = samples[..., 2] if spec.num_params == 3 else None
        moments = mixture_moments(samples[..., 0], component_variance(samples[..., 1], df))
        return dict(zip(RegressionPredictive._fields[:4], moments))
    if spec.task == "regression":
        mean = tf.reduce_mean(samples, axis=0)
        return {"mean": mean, "epistemic_variance": tf.reduce_mean(tf.square(samples - mean), axis=0)}
    p = tf.clip_by_value(samples, 0.0, 1.0)
    if spec.task == "binary":
        p = bernoulli_as_categorical(p)
    total, expected, mutual_information = entropy_decomposition(p)
    return {
        "probabilities": tf.reduce_mean(samples, axis=0),
        "predictive_entropy": total,
        "expected_entropy": expected,
        "mutual_information": mutual_information,
    }


def _replace_folder(tmp: str, path: str) -> None:
    """Move the complete export ``tmp`` to ``path``, never losing both.

    An existing ``path`` is first renamed aside (into a fresh ``.old-`` folder
    next to it), then ``tmp`` renamed in, then the old one deleted: a failure
    before the second rename puts the old export back; a failure after it
    leaves at most the ``.old-`` folder behind.
    """
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    parent, base = os.path.split(os.path.abspath(path))
    aside = tempfile.mkdtemp(prefix=f".{base}.old-", dir=parent)
    old = os.path.join(aside, base)
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)  # the old export back in place
        os.rmdir(aside)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def export(
    model: keras.Model,
    path: str | os.PathLike,
    num_samples: int = 32,
    *,
    task: str | None = None,
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
    to ``path`` only when complete: a failure leaves no partial export. With
    ``overwrite`` the old export is moved aside, the new one renamed in, and
    only then the old one deleted: a failure in between leaves the old export.

    The signatures bake in the layers' modes at export time (estimator,
    posterior-mean mode), as any trace does.

    Args:
        model: a built single-input Sequential or functional Keras model with
            bayesflip variational layers.
        path: target folder; must not exist or be empty, unless ``overwrite``.
        num_samples: posterior draws per call ``T`` (positive int).
        task: what the output predicts, which decides the ``uncertainty``
            signature: ``"classification"`` (probabilities over the last axis),
            ``"binary"`` (one Bernoulli probability per unit) or
            ``"regression"``. ``None``: the task of the model's
            :mod:`bayesflip.heads` output head (regression heads give the
            variance decomposition); a model without a head needs ``task``
            (or ``from_logits=True``). Never guessed from an activation.
        from_logits: the model outputs logits; apply a softmax (``"binary"``:
            a sigmoid) to each draw (as in :func:`bayesflip.uncertainty.mc_predict`).
            Without ``task`` and head it means ``task="classification"``.
        overwrite: replace an existing non-empty ``path``.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: ``num_samples < 1``, no variational layers, not a
            single-input model, an unknown or missing ``task``, or ``path``
            not empty without ``overwrite``.
        TypeError: ``model`` is not a Keras model.

    Example:
    >>> import keras, numpy as np, tempfile, os, tensorflow as tf, bayesflip
    >>> from bayesflip.layers import DenseFlipout
    >>> model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, activation="softmax", seed=0)])
    >>> path = bayesflip.export(
    ...     model, os.path.join(tempfile.mkdtemp(), "bnn"), num_samples=8, task="classification"
    ... )
    >>> served = tf.saved_model.load(path)
    >>> out = served.signatures["uncertainty"](x=tf.ones((2, 4)))
    >>> sorted(out)
    ['expected_entropy', 'mutual_information', 'predictive_entropy', 'probabilities']
    >>> served.signatures["predict"](x=tf.ones((2, 4)))["samples"].shape
    TensorShape([8, 2, 3])
    """
    fn = "export"
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
    plan = _predictive_spec(fn, model, task, bool(from_logits))

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
        return apply_link(plan.link, tf.cast(y, tf.float32))

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
        if plan.num_params is not None:
            mean = tf.reduce_mean(samples[..., 0], axis=0)
        else:
            mean = tf.reduce_mean(samples, axis=0)
        return {"predictions": mean, "samples": samples}

    def uncertainty(x):
        return _uncertainty_outputs(plan, draws(x))

    def mean_prediction(x):
        return {"predictions": apply_link(plan.link, tf.cast(model(x, training=False), tf.float32))}

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
        _replace_folder(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _keras_compat.clear_losses(model)  # the traced calls appended graph KL tensors to model.losses
    return path

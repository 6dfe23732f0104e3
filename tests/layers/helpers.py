"""One helper that exercises every variational layer the same way.

``check_variational_layer(factory, input_shape)`` builds the layer, calls it,
fits one step inside a model, round-trips its config, saves/loads a ``.keras``
file with ``safe_mode=True``, checks seed reproducibility, finite gradients,
and that the KL term is added exactly once.
"""

from __future__ import annotations

import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

import bayesflip
from bayesflip.layers import VariationalLayer


def random_inputs(input_shape, seed=0, dtype="float32"):
    return np.random.default_rng(seed).normal(size=input_shape).astype(dtype)


def _model(factory, input_shape, **layer_kwargs):
    inputs = keras.Input(input_shape[1:])
    layer = factory(**layer_kwargs)
    outputs = layer(inputs)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return keras.Model(inputs, outputs), layer


def check_variational_layer(factory, input_shape, *, input_dtype="float32", check_save=True):
    """Run the shared battery of checks on the layer that ``factory(seed=…)`` makes.

    Args:
        factory: callable returning a fresh layer; receives ``seed`` (and
            ``kl_weight``) keyword arguments.
        input_shape: full input shape including the batch dimension.
        input_dtype: dtype of the random inputs (``"int32"`` for embeddings).
    """
    if input_dtype.startswith("int"):
        x = np.random.default_rng(0).integers(0, 5, size=input_shape).astype(input_dtype)
    else:
        x = random_inputs(input_shape)

    # build + call; every forward pass is a posterior sample
    layer = factory(seed=3, kl_weight=0.5)
    assert isinstance(layer, VariationalLayer)
    y1 = layer(x)
    y1 = y1[0] if isinstance(y1, (list, tuple)) else y1
    assert layer.built
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y1)))
    # KL present once, weighted (none for a family without a KL, e.g. Gaussian DropConnect)
    if not layer.posterior.has_kl:
        assert layer.losses == [], f"expected no KL loss, got {len(layer.losses)}"
    else:
        assert len(layer.losses) == 1, f"expected one KL loss, got {len(layer.losses)}"
        kl = float(layer.losses[0])
        assert kl > 0
        if not any(post.kl_needs_sample for post in layer.posteriors):
            np.testing.assert_allclose(kl, 0.5 * float(layer.kl_divergence()), rtol=1e-4)

    # same seed => same draws; successive calls differ
    twin = factory(seed=3, kl_weight=0.5)
    twin(x)
    twin.set_weights(layer.get_weights())
    twin.rng_state.assign(layer.rng_state.value)
    a = keras.ops.convert_to_numpy(_first(layer(x)))
    b = keras.ops.convert_to_numpy(_first(twin(x)))
    np.testing.assert_array_equal(a, b)
    c = keras.ops.convert_to_numpy(_first(layer(x)))
    assert not np.array_equal(a, c), "two forward passes returned identical samples"

    # config round trip through JSON (what a .keras file stores): rebuilt from
    # the parsed config, the config is unchanged
    config = layer.get_config()
    parsed = json.loads(json.dumps(config))
    rebuilt = type(layer).from_config(parsed)
    assert json.loads(json.dumps(rebuilt.get_config())) == parsed
    assert rebuilt.get_config() == type(layer).from_config(config).get_config()

    # one fit step in a functional model, finite gradients
    model, mlayer = _model(factory, input_shape, seed=5, kl_weight=1e-3)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(tf.square(out)) + tf.add_n([tf.constant(0.0)] + model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads), "a trainable variable got no gradient"
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in grads)
    model.compile(optimizer="adam", loss="mse")
    target = np.zeros(keras.ops.convert_to_numpy(model(x)).shape, "float32")
    history = model.fit(x, target, epochs=1, batch_size=input_shape[0], verbose=0)
    assert np.isfinite(history.history["loss"][0])

    if check_save:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
        assert_same_weights(model.weights, loaded.weights)
        with bayesflip.posterior_mean(model), bayesflip.posterior_mean(loaded):
            np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
        # the random stream continues identically after loading
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(loaded(x))
        )
    return layer


def _weight_names(weights) -> list[str]:
    """Each weight's own name (``kernel_loc``, ``rng_state`` …), in order.

    Not the path: two models built in one process get different layer names.
    """
    return [w.name for w in weights]


def assert_same_weights(expected, actual, rtol=None, atol=0.0):
    """The same weights, in the same order, with the same names, shapes and values.

    Exact unless ``rtol`` is given. Names and counts are compared before any
    value, so a missing, extra or reordered weight fails with its name.
    """
    assert _weight_names(actual) == _weight_names(expected)
    for w1, w2 in zip(expected, actual, strict=True):
        a, b = keras.ops.convert_to_numpy(w1), keras.ops.convert_to_numpy(w2)
        assert a.shape == b.shape and a.dtype == b.dtype, (w1.path, a.shape, b.shape, a.dtype, b.dtype)
        if rtol is None:
            np.testing.assert_array_equal(b, a, err_msg=w1.path)
        else:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol, err_msg=w1.path)


def _first(y):
    return y[0] if isinstance(y, (list, tuple)) else y


def monte_carlo_moments(layer, x, calls):
    """Mean and variance over the batch copies and ``calls`` forward passes.

    ``x`` holds one example tiled along the batch axis; returns per-output
    ``(mean, var)`` over ``batch * calls`` posterior samples, and the samples
    themselves with shape ``(calls, batch, ...)``.
    """
    fn = tf.function(lambda t: _first(layer(t)))
    samples = np.stack([keras.ops.convert_to_numpy(fn(x)) for _ in range(calls)])
    flat = samples.reshape((-1,) + samples.shape[2:])
    return flat.mean(0), flat.var(0), samples

"""Numerical robustness: odd numbers where the math is finite must give finite results.

Extreme posterior parameters (``rho`` = -50 / +30, means of 1e4), large inputs
(1e4), mixed-precision policies, a tiny KL weight, single-example batches and a
batch size that does not divide the data. For each: outputs, KL and gradients
(of ``sum(outputs) + KL`` w.r.t. every trainable variable) are finite.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip.layers import Conv2DFlipout, DenseFlipout, GRUFlipout, LSTMFlipout

LAYERS = {
    "dense-flipout": (lambda **kw: DenseFlipout(4, **kw), (3, 5)),
    "dense-shared": (lambda **kw: DenseFlipout(4, estimator="shared", **kw), (3, 5)),
    "dense-local": (lambda **kw: DenseFlipout(4, estimator="local", bayesian_bias=True, **kw), (3, 5)),
    "conv2d-flipout": (lambda **kw: Conv2DFlipout(3, 2, bayesian_bias=True, **kw), (2, 4, 4, 2)),
    "conv2d-local": (lambda **kw: Conv2DFlipout(3, 2, estimator="local", **kw), (2, 4, 4, 2)),
    "lstm-flipout": (lambda **kw: LSTMFlipout(3, **kw), (2, 4, 2)),
    "gru-shared": (lambda **kw: GRUFlipout(3, estimator="shared", **kw), (2, 4, 2)),
}


def _finite(t) -> bool:
    return bool(np.all(np.isfinite(keras.ops.convert_to_numpy(t))))


def _forward_kl_grads(layer, x):
    with tf.GradientTape() as tape:
        y = layer(x)
        y = y[0] if isinstance(y, (list, tuple)) else y
        kl = tf.add_n(layer.losses)
        total = tf.reduce_sum(tf.cast(y, tf.float32)) + kl
    grads = tape.gradient(total, layer.trainable_variables)
    return y, kl, grads


def _set_posteriors(layer, loc=None, rho=None):
    for post in layer.posteriors:
        if loc is not None:
            post.loc.assign(np.full(post.shape, loc, "float32"))
        if rho is not None:
            post.rho.assign(np.full(post.shape, rho, "float32"))


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize(
    "loc, rho, scale_x",
    [(None, -50.0, 1.0), (None, 30.0, 1.0), (1e4, None, 1.0), (None, None, 1e4)],
    ids=["rho=-50", "rho=+30", "loc=1e4", "inputs=1e4"],
)
def test_extreme_parameters_and_inputs_stay_finite(name, loc, rho, scale_x):
    factory, shape = LAYERS[name]
    layer = factory(seed=0, kl_weight=1.0)
    x = scale_x * np.random.default_rng(0).normal(size=shape).astype("float32")
    layer(x)  # build
    _set_posteriors(layer, loc=loc, rho=rho)
    y, kl, grads = _forward_kl_grads(layer, x)
    assert _finite(y), "outputs"
    assert _finite(kl) and float(kl) >= 0.0, f"KL {float(kl)}"
    assert all(g is not None and _finite(g) for g in grads), "gradients"


def test_extreme_rho_kl_matches_closed_form():
    """rho = -50 gives scale = min_scale + softplus(-50) ≈ 1e-6: the KL is large but
    finite and equals the NumPy closed form (float32 round-off only)."""
    layer = DenseFlipout(3, seed=0, use_bias=False)
    layer(np.ones((1, 2), "float32"))
    for rho in (-50.0, 30.0):
        _set_posteriors(layer, loc=0.5, rho=rho)
        scale = 1e-6 + np.logaddexp(0.0, rho)
        expected = 6 * (0.5 * (scale**2 + 0.25) - np.log(scale) - 0.5)
        np.testing.assert_allclose(float(bayesflip.kl_divergence(layer)), expected, rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", ["dense-flipout", "dense-local", "conv2d-flipout", "lstm-flipout"])
def test_mixed_precision_outputs_kl_and_gradients_are_finite(policy, name):
    keras.mixed_precision.set_global_policy(policy)  # reset by the conftest fixture
    factory, shape = LAYERS[name]
    layer = factory(seed=0)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    y, kl, grads = _forward_kl_grads(layer, x)
    assert y.dtype == policy.split("_")[1]
    assert kl.dtype == tf.float32  # KL always computed in float32
    assert all(v.dtype == "float32" for v in layer.trainable_variables)
    assert _finite(y) and _finite(kl)
    assert all(g is not None and _finite(g) for g in grads)
    # The sampled output stays close to the float32 posterior-mean prediction.
    with bayesflip.posterior_mean(layer):
        y_mean = layer(x)
    y_mean = y_mean[0] if isinstance(y_mean, (list, tuple)) else y_mean
    diff = np.abs(np.asarray(tf.cast(y, tf.float32)) - np.asarray(tf.cast(y_mean, tf.float32)))
    # posterior scale 1e-2 over up to 8 inputs plus a Bayesian bias gives a
    # sample-minus-mean noise of standard deviation ~0.03 (largest of the
    # outputs measured: 0.11) and half-precision round-off adds ~1e-3; a broken
    # low-precision path (overflow, lost perturbation, wrong cast) lands outside
    assert 0.0 < diff.max() < 0.25, diff.max()


def test_mixed_float16_fit_keeps_float32_master_weights_finite():
    keras.mixed_precision.set_global_policy("mixed_float16")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.Input((6,)),
            DenseFlipout(16, activation="relu", seed=0),
            DenseFlipout(2, seed=1),
            keras.layers.Activation("linear", dtype="float32"),
        ]
    )
    bayesflip.set_kl_weight(model, num_examples=64)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(_finite(w) for w in model.weights)


def _fit(model, x, y, batch_size, epochs=2):
    model.compile(keras.optimizers.SGD(1e-2), "mse")
    return model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0)


def test_tiny_kl_weight_is_kept_and_finite():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 3)).astype("float32"), rng.normal(size=(20, 1)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(1, seed=0, kl_weight=1e-12)])
    layer = model.layers[0]
    layer(x)
    kl = float(bayesflip.kl_divergence(model))
    # the weighted KL term really is 1e-12 · KL (not flushed to zero, not inflated)
    np.testing.assert_allclose(float(layer.losses[0]), 1e-12 * kl, rtol=1e-5)
    assert bayesflip.get_kl_weight(model) == pytest.approx(1e-12, rel=1e-6)
    history = _fit(model, x, y, batch_size=5)
    assert np.all(np.isfinite(history.history["loss"]))


def test_single_example_batches_and_uneven_last_batch():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 4)).astype("float32"), rng.normal(size=(10, 2)).astype("float32")
    for batch_size in (1, 4, 3):  # 1: single example; 4 and 3 do not divide 10
        model = keras.Sequential(
            [
                keras.Input((4,)),
                DenseFlipout(8, activation="tanh", seed=0),
                DenseFlipout(2, estimator="local", seed=1),
            ]
        )
        bayesflip.set_kl_weight(model, num_examples=10)
        history = _fit(model, x, y, batch_size=batch_size, epochs=1)
        assert np.all(np.isfinite(history.history["loss"])), batch_size
        assert all(_finite(w) for w in model.weights)
        # prediction on a batch size that does not divide the data, and on one example
        assert model.predict(x, batch_size=batch_size, verbose=0).shape == (10, 2)
        assert _finite(model(x[:1]))


def test_single_example_conv_and_lstm():
    x_img = np.random.default_rng(2).normal(size=(1, 5, 5, 2)).astype("float32")
    x_seq = np.random.default_rng(3).normal(size=(1, 6, 2)).astype("float32")
    for layer, x in ((Conv2DFlipout(3, 3, seed=0), x_img), (LSTMFlipout(3, seed=0), x_seq)):
        y, kl, grads = _forward_kl_grads(layer, x)
        assert y.shape[0] == 1 and _finite(y) and _finite(kl)
        assert all(_finite(g) for g in grads)

"""bayesflip.convert.to_bayesian."""

import os
import tempfile
import warnings

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.convert import to_bayesian
from bayesflip.priors import CenteredNormal, Normal


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _cnn():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    skip = keras.layers.Conv2DTranspose(3, 2, strides=2)(x)
    x = keras.layers.MaxPooling2D()(skip)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3)(keras.layers.Dropout(0.1)(x))
    return keras.Model(inputs, outputs, name="cnn")


def _mobile():
    """Depthwise and separable blocks (1D and 2D) with batch normalisation, as in MobileNets."""
    inputs = keras.Input((9, 9, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu6")(x)
    x = keras.layers.SeparableConv2D(5, 3, strides=2, padding="same", dilation_rate=1)(x)
    x = keras.layers.Reshape((9, 5))(x)
    x = keras.layers.DepthwiseConv1D(2, use_bias=False)(x)
    x = keras.layers.SeparableConv1D(3, 3, depth_multiplier=2, activation="tanh")(x)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs, name="mobile")


def _text():
    inner = keras.Sequential([keras.Input((5, 4)), keras.layers.GRU(3, return_sequences=True)], name="inner")
    tokens = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(12, 4, mask_zero=True)(tokens)
    x = inner(x)
    x = keras.layers.LSTM(3)(x)
    return keras.Model(tokens, keras.layers.Dense(2)(x), name="text")


def _randomize(model, rng):
    for w in model.weights:
        if w.trainable:
            w.assign(rng.normal(0, 0.5, size=w.shape).astype(w.dtype))


@pytest.mark.parametrize(
    "make,inputs",
    [
        (_cnn, lambda rng: rng.normal(size=(3, 8, 8, 2)).astype("float32")),
        (_mobile, lambda rng: rng.normal(size=(3, 9, 9, 3)).astype("float32")),
        (_text, lambda rng: np.array([[1, 5, 3, 0, 0], [2, 11, 4, 7, 9], [6, 0, 0, 0, 0]])),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((6, 2)),
                    keras.layers.Conv1D(3, 2, activation="tanh"),
                    keras.layers.Conv1DTranspose(2, 2),
                    keras.layers.Flatten(),
                    keras.layers.Dense(1),
                ]
            ),
            lambda rng: rng.normal(size=(4, 6, 2)).astype("float32"),
        ),
    ],
)
def test_posterior_mean_of_converted_model_predicts_like_original(make, inputs):
    rng = np.random.default_rng(0)
    model = make()
    _randomize(model, rng)
    x = inputs(rng)
    expected = _np(model(x))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        bnn = to_bayesian(model, moped_delta=0.1, seed=1)
    ours = [str(w.message) for w in record if "to_bayesian" in str(w.message)]
    if make in (_cnn, _mobile):  # BatchNormalization has weights and stays deterministic by design
        assert (
            len(ours) == 1
            and "1 normalisation layer(s) stay deterministic by design (BatchNormalization: 1)" in ours[0]
        ), ours
        assert "no flipout counterpart" not in ours[0]
        with pytest.warns(UserWarning, match="by design"):
            to_bayesian(model, strict=True)  # nothing else is left deterministic
    else:
        assert not ours
    assert type(bnn) is type(model)
    with bayesflip.posterior_mean(bnn):
        np.testing.assert_allclose(_np(bnn(x)), expected, rtol=1e-5, atol=1e-6)
    # a posterior sample differs, and the original model is untouched
    assert not np.allclose(_np(bnn(x)), expected, atol=1e-6)
    np.testing.assert_array_equal(_np(model(x)), expected)
    kinds = {type(l).__name__ for l in bnn._flatten_layers(include_self=False)}
    assert not kinds & {
        "Dense",
        "Conv1D",
        "Conv2D",
        "Conv2DTranspose",
        "Conv1DTranspose",
        "LSTM",
        "GRU",
        "Embedding",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    }


def test_moped_initialisation_scales_and_prior():
    rng = np.random.default_rng(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    _randomize(model, rng)
    kernel, bias = model.get_weights()
    bnn = to_bayesian(model, moped_delta=0.2, prior_scale=0.5, min_scale=1e-6)
    layer = bnn.layers[0]
    post = layer.kernel_posterior
    np.testing.assert_array_equal(_np(post.loc), kernel)
    np.testing.assert_allclose(_np(post.scale()), np.maximum(0.2 * np.abs(kernel), 2e-6), rtol=1e-5)
    np.testing.assert_array_equal(_np(layer.bias), bias)
    assert layer.prior == CenteredNormal(0.5)
    np.testing.assert_array_equal(_np(post.prior.loc_variable), kernel)
    # KL(N(w, (δ|w|)²) ‖ N(w, s²)) = Σ log(s / σ) + σ² / (2 s²) - 1/2
    sigma = 0.2 * np.abs(kernel).astype("float64")
    expected = np.sum(np.log(0.5 / sigma) + sigma**2 / (2 * 0.25) - 0.5)
    np.testing.assert_allclose(float(layer.kl_divergence()), expected, rtol=1e-4)


def test_plain_conversion_uses_given_prior_and_scale_and_can_start_fresh():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    kernel = model.get_weights()[0]
    bnn = to_bayesian(model, moped_delta=None, prior=Normal(0.0, 0.3), init_scale=0.05, estimator="local")
    layer = bnn.layers[0]
    assert layer.prior == Normal(0.0, 0.3) and layer.estimator == "local"
    np.testing.assert_allclose(_np(layer.kernel_posterior.scale()), 0.05, rtol=1e-5)
    np.testing.assert_array_equal(_np(layer.kernel_posterior.loc), kernel)
    fresh = to_bayesian(model, moped_delta=None, copy_weights=False)
    assert not np.array_equal(_np(fresh.layers[0].kernel_posterior.loc), kernel)


def test_converted_model_trains_and_saves_with_safe_mode():
    rng = np.random.default_rng(2)
    tokens = keras.Input((5,), dtype="int32")
    hidden = keras.layers.GRU(3)(keras.layers.Embedding(12, 4, mask_zero=True)(tokens))
    model = keras.Model(tokens, keras.layers.Dense(2)(hidden))
    bnn = to_bayesian(model, seed=3)
    bayesflip.set_kl_weight(bnn, num_examples=16)
    x = rng.integers(0, 12, size=(16, 5))
    y = rng.integers(0, 2, size=(16,))
    bnn.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = bnn.fit(x, y, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert len(bnn.losses) == 3  # one KL term per converted layer (Embedding, GRU, Dense)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bnn.keras")
        bnn.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
    with bayesflip.posterior_mean(bnn), bayesflip.posterior_mean(loaded):
        np.testing.assert_array_equal(_np(bnn(x)), _np(loaded(x)))


def test_unsupported_layers_are_listed_or_refused():
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            keras.layers.LSTM(2, dropout=0.2, return_sequences=True),
            keras.layers.LayerNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    with pytest.warns(UserWarning) as record:
        bnn = to_bayesian(model)
    message = str(record[0].message)
    assert "'lstm" in message and "dropout" in message and "no flipout counterpart" in message
    assert "1 normalisation layer(s) stay deterministic by design (LayerNormalization: 1)" in message
    assert [type(l).__name__ for l in bnn.layers] == ["LSTM", "LayerNormalization", "Flatten", "DenseFlipout"]
    np.testing.assert_array_equal(bnn.layers[1].get_weights()[0], model.layers[1].get_weights()[0])
    with pytest.raises(ValueError, match="stay deterministic"):
        to_bayesian(model, strict=True)


def test_bad_arguments():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    with pytest.raises(TypeError, match="keras.Model"):
        to_bayesian(keras.layers.Dense(3))
    with pytest.raises(ValueError, match="moped_delta"):
        to_bayesian(model, moped_delta=-0.1)
    with pytest.raises(ValueError, match="copy_weights"):
        to_bayesian(model, copy_weights=False)
    with pytest.raises(ValueError, match="moped_delta=None"):
        to_bayesian(model, prior="laplace")
    with pytest.raises(ValueError, match="no layer that can be made Bayesian"):
        to_bayesian(keras.Sequential([keras.Input((4,)), keras.layers.ReLU()]))
    with pytest.raises(ValueError, match="built"):
        to_bayesian(keras.Sequential([keras.layers.Dense(2)]))

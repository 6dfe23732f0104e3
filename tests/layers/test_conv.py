"""Conv{1,2,3}DFlipout and Conv{1,2,3}DTransposeFlipout."""

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.layers import (
    Conv1DFlipout,
    Conv1DTransposeFlipout,
    Conv2DFlipout,
    Conv2DTransposeFlipout,
    Conv3DFlipout,
    Conv3DTransposeFlipout,
)
from tests.layers.helpers import check_variational_layer, monte_carlo_moments, random_inputs

SHARED_CASES = [
    (lambda **kw: Conv1DFlipout(3, 3, padding="causal", dilation_rate=2, activation="relu", **kw), (4, 7, 2)),
    (lambda **kw: Conv2DFlipout(4, (3, 2), strides=2, padding="same", **kw), (3, 6, 5, 2)),
    (lambda **kw: Conv2DFlipout(4, 3, bayesian_bias=True, estimator="local", **kw), (3, 5, 5, 2)),
    (lambda **kw: Conv2DFlipout(4, 3, estimator="shared", data_format="channels_first", **kw), (3, 2, 5, 5)),
    (lambda **kw: Conv3DFlipout(2, 2, **kw), (2, 3, 4, 4, 2)),
    (
        lambda **kw: Conv2DTransposeFlipout(
            3, 3, strides=2, padding="same", output_padding=1, bayesian_bias=True, **kw
        ),
        (2, 4, 4, 2),
    ),
    (lambda **kw: Conv3DTransposeFlipout(2, 2, strides=2, **kw), (2, 2, 3, 3, 2)),
]


@pytest.mark.parametrize("factory,input_shape", SHARED_CASES)
def test_shared_layer_checks(factory, input_shape):
    check_variational_layer(factory, input_shape)


# Each case: (flipout class, keras class, shared kwargs, input shape)
EQUIVALENCE_CASES = [
    (
        Conv1DFlipout,
        keras.layers.Conv1D,
        dict(filters=3, kernel_size=3, padding="causal", dilation_rate=2),
        (2, 9, 4),
    ),
    (Conv1DFlipout, keras.layers.Conv1D, dict(filters=4, kernel_size=2, strides=2, groups=2), (2, 8, 4)),
    (
        Conv2DFlipout,
        keras.layers.Conv2D,
        dict(filters=4, kernel_size=3, strides=(2, 1), padding="same", activation="tanh"),
        (2, 7, 6, 3),
    ),
    (
        Conv2DFlipout,
        keras.layers.Conv2D,
        dict(filters=2, kernel_size=2, dilation_rate=2, data_format="channels_first"),
        (2, 3, 6, 6),
    ),
    (Conv3DFlipout, keras.layers.Conv3D, dict(filters=2, kernel_size=2, use_bias=False), (1, 3, 4, 4, 2)),
    (
        Conv1DTransposeFlipout,
        keras.layers.Conv1DTranspose,
        dict(filters=2, kernel_size=3, strides=2),
        (2, 5, 3),
    ),
    (
        Conv2DTransposeFlipout,
        keras.layers.Conv2DTranspose,
        dict(filters=3, kernel_size=3, strides=2, padding="same", output_padding=1),
        (2, 4, 3, 2),
    ),
    (
        Conv3DTransposeFlipout,
        keras.layers.Conv3DTranspose,
        dict(filters=2, kernel_size=2, strides=2),
        (1, 2, 3, 3, 2),
    ),
]


@pytest.mark.parametrize("cls,keras_cls,kwargs,input_shape", EQUIVALENCE_CASES)
def test_posterior_mean_equals_keras_layer(cls, keras_cls, kwargs, input_shape):
    x = random_inputs(input_shape)
    layer = cls(seed=0, bias_initializer="random_normal", **kwargs)
    reference = keras_cls(bias_initializer="random_normal", **kwargs)
    layer.build(input_shape)
    reference.build(input_shape)
    weights = [keras.ops.convert_to_numpy(layer.kernel_posterior.loc)]
    if reference.use_bias:
        weights.append(keras.ops.convert_to_numpy(layer.bias))
    reference.set_weights(weights)
    expected = keras.ops.convert_to_numpy(reference(x))
    assert layer.compute_output_shape(input_shape) == tuple(expected.shape)
    model = keras.Sequential([keras.Input(input_shape[1:]), layer])
    with bayesflip.posterior_mean(model):
        got = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # and the sampled prediction is not the mean
    assert not np.allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-7)


def _moments_reference(layer, keras_cls, kwargs, x1):
    """Closed form of y = conv(x, W) + b, W ~ N(loc, scale²):
    mean conv(x, loc) + b, variance conv(x², scale²)."""
    ref = keras_cls(use_bias=False, **kwargs)
    ref.build(x1.shape)
    loc = keras.ops.convert_to_numpy(layer.kernel_posterior.loc)
    scale = keras.ops.convert_to_numpy(layer.kernel_posterior.scale())
    bias = keras.ops.convert_to_numpy(layer.bias)
    ref.set_weights([loc])
    mean = keras.ops.convert_to_numpy(ref(x1))[0] + bias
    ref.set_weights([scale**2])
    var = keras.ops.convert_to_numpy(ref(np.square(x1)))[0]
    return mean, var


@pytest.mark.parametrize("estimator", ["flipout", "local"])
@pytest.mark.parametrize(
    "cls,keras_cls,kwargs,input_shape",
    [
        (Conv2DFlipout, keras.layers.Conv2D, dict(filters=2, kernel_size=2, padding="same"), (4, 4, 3)),
        (
            Conv2DTransposeFlipout,
            keras.layers.Conv2DTranspose,
            dict(filters=2, kernel_size=2, strides=2),
            (2, 2, 3),
        ),
    ],
)
def test_flipout_marginal_mean_and_variance_match_closed_form(estimator, cls, keras_cls, kwargs, input_shape):
    # Examples of one call share ΔW, so the variance estimate's error is driven
    # by the number of calls (independent ΔW draws), not only by batch * calls.
    batch, calls = 32, 300
    x1 = random_inputs((1,) + input_shape, seed=1)
    x = np.repeat(x1, batch, axis=0)
    layer = cls(seed=7, init_scale=0.3, estimator=estimator, bias_initializer="random_normal", **kwargs)
    layer.build(x.shape)
    mean, var, samples = monte_carlo_moments(layer, x, calls)
    ref_mean, ref_var = _moments_reference(layer, keras_cls, kwargs, x1)
    n = batch * calls
    # the sample mean is within 5 standard errors of the closed form everywhere
    assert np.all(np.abs(mean - ref_mean) <= 5 * np.sqrt(ref_var / n) + 1e-6)
    # sample variances: the error is driven by the 300 independent ΔW draws. An
    # output at a border ("same" padding) sees as few as 3 kernel entries, so its
    # relative standard error is about sqrt(2/3)/sqrt(300) ≈ 0.047: 0.25 is ~5 of them.
    np.testing.assert_allclose(var, ref_var, rtol=0.25)
    np.testing.assert_allclose(var.mean(), ref_var.mean(), rtol=0.05)
    # examples of a batch are decorrelated (flipout signs / local noise per example)
    dev = samples - ref_mean
    corr = np.mean(dev[:, 0] * dev[:, 1]) / np.sqrt(np.mean(dev[:, 0] ** 2) * np.mean(dev[:, 1] ** 2))
    assert abs(corr) < 0.15, corr


def test_shared_estimator_examples_are_identical_and_flipout_differs():
    x = np.repeat(random_inputs((1, 5, 5, 2)), 4, axis=0)
    shared = Conv2DFlipout(3, 3, estimator="shared", init_scale=0.2, seed=0)
    flip = Conv2DFlipout(3, 3, init_scale=0.2, seed=0)
    ys = keras.ops.convert_to_numpy(shared(x))
    yf = keras.ops.convert_to_numpy(flip(x))
    np.testing.assert_array_equal(ys[0], ys[1])
    assert not np.allclose(yf[0], yf[1])


def test_flipout_signs_broadcast_over_spatial_positions():
    # A 1x1 convolution of a spatially constant input is spatially constant in
    # every sample iff the perturbation (ΔW, S, R) is shared by all positions.
    x = np.broadcast_to(random_inputs((3, 1, 1, 4)), (3, 5, 6, 4)).copy()
    layer = Conv2DFlipout(5, 1, init_scale=0.5, seed=1)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, np.broadcast_to(y[:, :1, :1], y.shape), rtol=1e-5, atol=1e-6)
    assert not np.allclose(y[0], y[1])  # but differs between examples


def test_grouped_convolution_keeps_groups_separate():
    # With 2 groups, output channels 0..1 depend only on input channels 0..1.
    layer = Conv2DFlipout(4, 1, groups=2, init_scale=0.3, seed=0)
    x = random_inputs((2, 3, 3, 4))
    y1 = keras.ops.convert_to_numpy(layer(x))
    layer.rng_state.assign(layer.rng_state.value - np.array([0, 1]))
    x2 = x.copy()
    x2[..., 2:] = 0.0
    y2 = keras.ops.convert_to_numpy(layer(x2))
    np.testing.assert_allclose(y1[..., :2], y2[..., :2], rtol=1e-5, atol=1e-6)
    assert not np.allclose(y1[..., 2:], y2[..., 2:])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Conv2DFlipout(0, 3), "filters"),
        (lambda: Conv2DFlipout(4, (3, 3, 3)), "kernel_size"),
        (lambda: Conv2DFlipout(4, 3, strides=0), "strides"),
        (lambda: Conv2DFlipout(4, 3, padding="causal"), "padding"),
        (lambda: Conv2DFlipout(4, 3, data_format="NHWC"), "data_format"),
        (lambda: Conv2DFlipout(3, 3, groups=2), "groups"),
        (lambda: Conv2DFlipout(4, 3, estimator="magic"), "estimator"),
        (lambda: Conv2DTransposeFlipout(4, 3, strides=2, output_padding=2), "output_padding"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    layer = Conv2DFlipout(4, 3, groups=2, seed=0)
    with pytest.raises(ValueError, match="divisible by `groups`"):
        layer(np.ones((1, 5, 5, 3), "float32"))
    layer = Conv2DFlipout(4, 3, seed=0)
    layer(np.ones((1, 5, 5, 2), "float32"))
    with pytest.raises(ValueError, match=layer.name):
        layer(np.ones((1, 5, 5, 3), "float32"))
    with pytest.raises(ValueError, match=layer.name):
        layer(np.ones((5, 5, 2), "float32"))
    with pytest.raises(TypeError, match="numeric"):
        Conv2DFlipout(4, 3, seed=0)(np.full((1, 3, 3, 1), "a"))


@pytest.mark.parametrize("cls", [Conv2DFlipout, Conv2DTransposeFlipout])
def test_mixed_precision(cls):
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = cls(3, 3, seed=0)
    y = layer(random_inputs((2, 5, 5, 2)))
    assert y.dtype == "float16" and layer.losses[0].dtype == "float32"
    assert all(w.dtype == "float32" for w in layer.trainable_weights)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))

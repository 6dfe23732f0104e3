"""DepthwiseConv{1,2}DFlipout and SeparableConv{1,2}DFlipout."""

import inspect

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.layers import (
    DepthwiseConv1DFlipout,
    DepthwiseConv2DFlipout,
    SeparableConv1DFlipout,
    SeparableConv2DFlipout,
)
from bayesflip.posteriors import GaussianDropConnect, VariationalDropout
from tests.layers.helpers import check_variational_layer, monte_carlo_moments, random_inputs

SHARED_CASES = [
    (
        lambda **kw: DepthwiseConv2DFlipout(3, strides=2, padding="same", depth_multiplier=2, **kw),
        (3, 6, 5, 2),
    ),
    (
        lambda **kw: DepthwiseConv1DFlipout(
            3, dilation_rate=2, bayesian_bias=True, estimator="local", activation="relu", **kw
        ),
        (3, 9, 2),
    ),
    (
        lambda **kw: DepthwiseConv2DFlipout(
            2,
            estimator="shared",
            data_format="channels_first",
            posterior=VariationalDropout(granularity="unit"),
            **kw,
        ),
        (2, 3, 5, 5),
    ),
    (
        lambda **kw: SeparableConv2DFlipout(
            4, 3, depth_multiplier=2, padding="same", bayesian_bias=True, **kw
        ),
        (3, 5, 5, 2),
    ),
    (
        lambda **kw: SeparableConv1DFlipout(
            4, 3, bayesian_pointwise=False, estimator="local", posterior="variational_dropout", **kw
        ),
        (3, 7, 2),
    ),
    (
        lambda **kw: SeparableConv2DFlipout(
            4,
            3,
            bayesian_depthwise=False,
            data_format="channels_first",
            posterior=GaussianDropConnect(rate=0.3),
            **kw,
        ),
        (2, 2, 5, 5),
    ),
]


@pytest.mark.parametrize("factory,input_shape", SHARED_CASES)
def test_shared_layer_checks(factory, input_shape):
    check_variational_layer(factory, input_shape)


def _keras_weights(layer):
    """The layer's posterior means / plain weights in Keras' ``get_weights`` order."""
    out = []
    for w in (
        [layer.kernel_posterior]
        if hasattr(layer, "kernel_posterior")
        else [layer.depthwise_kernel, layer.pointwise_kernel]
    ) + ([layer.bias] if layer.use_bias else []):
        out.append(keras.ops.convert_to_numpy(layer.posterior_mean_weight(w)))
    return out


# Each case: (flipout class, keras class, shared kwargs, extra flipout kwargs, input shape)
EQUIVALENCE_CASES = [
    (
        DepthwiseConv1DFlipout,
        keras.layers.DepthwiseConv1D,
        dict(kernel_size=3, depth_multiplier=2),
        {},
        (2, 9, 3),
    ),
    (
        DepthwiseConv1DFlipout,
        keras.layers.DepthwiseConv1D,
        dict(kernel_size=2, strides=2, padding="same", data_format="channels_first"),
        {},
        (2, 3, 7),
    ),
    (
        DepthwiseConv2DFlipout,
        keras.layers.DepthwiseConv2D,
        dict(kernel_size=3, strides=(2, 1), padding="same", depth_multiplier=3, activation="tanh"),
        dict(bayesian_bias=True),
        (2, 7, 6, 2),
    ),
    (
        DepthwiseConv2DFlipout,
        keras.layers.DepthwiseConv2D,
        dict(kernel_size=2, strides=2, dilation_rate=2, padding="same", use_bias=False),
        {},
        (2, 6, 6, 3),
    ),
    (
        SeparableConv1DFlipout,
        keras.layers.SeparableConv1D,
        dict(filters=4, kernel_size=3, dilation_rate=2, depth_multiplier=2),
        {},
        (2, 9, 3),
    ),
    (
        SeparableConv2DFlipout,
        keras.layers.SeparableConv2D,
        dict(filters=5, kernel_size=3, strides=2, padding="same", activation="relu"),
        dict(bayesian_pointwise=False),
        (2, 7, 6, 3),
    ),
    (
        SeparableConv2DFlipout,
        keras.layers.SeparableConv2D,
        dict(filters=3, kernel_size=(3, 2), data_format="channels_first", depth_multiplier=2),
        dict(bayesian_depthwise=False, estimator="local"),
        (2, 2, 6, 5),
    ),
]


@pytest.mark.parametrize("cls,keras_cls,kwargs,extra,input_shape", EQUIVALENCE_CASES)
def test_posterior_mean_equals_keras_layer(cls, keras_cls, kwargs, extra, input_shape):
    x = random_inputs(input_shape)
    layer = cls(seed=0, bias_initializer="random_normal", **kwargs, **extra)
    try:
        reference = keras_cls(bias_initializer="random_normal", **kwargs)
    except ValueError as err:  # Keras < 3.11 refuses strides > 1 with dilation_rate > 1 in its layer
        pytest.skip(f"this Keras version has no reference layer for {kwargs}: {err}")
    layer.build(input_shape)
    reference.build(input_shape)
    reference.set_weights(_keras_weights(layer))  # Keras' shapes, so this also checks the layouts
    expected = keras.ops.convert_to_numpy(reference(x))
    assert layer.compute_output_shape(input_shape) == tuple(expected.shape)
    model = keras.Sequential([keras.Input(input_shape[1:]), layer])
    with bayesflip.posterior_mean(model):
        got = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_array_equal(got, expected)
    # and the sampled prediction is not the mean
    assert not np.allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-6)


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _depthwise_reference(layer, x1):
    """``W ~ N(loc, scale²)`` per weight: mean ``dw(x, loc) + b``, variance ``dw(x², scale²)``."""
    post = layer.kernel_posterior
    ref = keras.layers.DepthwiseConv2D(
        layer.kernel_size, padding=layer.padding, depth_multiplier=2, use_bias=False
    )
    ref.build(x1.shape)
    ref.set_weights([_np(post.loc)])
    mean = _np(ref(x1))[0] + _np(layer.bias)
    ref.set_weights([_np(post.scale()) ** 2])
    return mean, _np(ref(np.square(x1)))[0]


def _separable_reference(layer, x1):
    """``y = Σ_j h_j w_j + b`` with independent ``h_j = dw(x, Wd)_j`` and ``w_j``:
    ``E y = Σ m_j μ_j``, ``Var y = Σ m_j² σ_j² + v_j μ_j² + v_j σ_j²``."""
    dw, pw = layer.depthwise_kernel, layer.pointwise_kernel
    ref = keras.layers.DepthwiseConv2D(
        layer.kernel_size, padding=layer.padding, depth_multiplier=2, use_bias=False
    )
    ref.build(x1.shape)
    ref.set_weights([_np(dw.loc)])
    m = _np(ref(x1))[0]
    ref.set_weights([_np(dw.scale()) ** 2])
    v = _np(ref(np.square(x1)))[0]
    mu, s2 = _np(pw.loc)[0, 0], _np(pw.scale())[0, 0] ** 2
    mean = m @ mu + _np(layer.bias)
    var = np.square(m) @ s2 + v @ np.square(mu) + v @ s2
    return mean, var


@pytest.mark.parametrize("estimator", ["flipout", "local"])
@pytest.mark.parametrize(
    "make,reference",
    [
        (
            lambda **kw: DepthwiseConv2DFlipout(2, padding="same", depth_multiplier=2, **kw),
            _depthwise_reference,
        ),
        (lambda **kw: SeparableConv2DFlipout(3, 2, depth_multiplier=2, **kw), _separable_reference),
    ],
)
def test_per_example_moments_match_closed_form(estimator, make, reference):
    # Examples of one call share ΔW; the variance estimate's error is driven by
    # the 300 independent calls.
    batch, calls = 32, 300
    x1 = random_inputs((1, 4, 4, 2), seed=1)
    x = np.repeat(x1, batch, axis=0)
    layer = make(seed=7, init_scale=0.3, estimator=estimator, bias_initializer="random_normal")
    layer.build(x.shape)
    mean, var, samples = monte_carlo_moments(layer, x, calls)
    ref_mean, ref_var = reference(layer, x1)
    n = batch * calls
    assert np.all(np.abs(mean - ref_mean) <= 5 * np.sqrt(ref_var / n) + 1e-6)
    # an output at a corner ("same" padding) sees as few as one kernel entry:
    # relative standard error ≈ sqrt(2/300) ≈ 0.08, so 0.45 is over 5 of them. Over
    # seeds 0-5 the largest errors were 0.26 (per output) and 0.045 (the average).
    np.testing.assert_allclose(var, ref_var, rtol=0.45)
    np.testing.assert_allclose(var.mean(), ref_var.mean(), rtol=0.1)
    # examples of a batch are decorrelated (flipout signs / local noise per example)
    dev = samples - ref_mean
    corr = np.mean(dev[:, 0] * dev[:, 1]) / np.sqrt(np.mean(dev[:, 0] ** 2) * np.mean(dev[:, 1] ** 2))
    assert abs(corr) < 0.15, corr


@pytest.mark.parametrize(
    "cls", [DepthwiseConv1DFlipout, DepthwiseConv2DFlipout, SeparableConv1DFlipout, SeparableConv2DFlipout]
)
def test_config_holds_exactly_the_constructor_arguments(cls):
    args = (4, 3) if cls.__name__.startswith("Separable") else (3,)
    layer = cls(*args, strides=2, depth_multiplier=2, kl_weight=0.1, seed=1, posterior="variational_dropout")
    config = layer.get_config()
    params = set(inspect.signature(cls.__init__).parameters) - {"self", "kwargs"}
    assert set(config) - {"name", "trainable", "dtype"} == params
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config and rebuilt.posterior == VariationalDropout()


def test_unit_noise_is_one_level_per_channel():
    layer = DepthwiseConv2DFlipout(3, posterior=VariationalDropout(granularity="unit"), seed=0)
    layer.build((1, 5, 5, 4))
    post = layer.kernel_posterior
    assert tuple(post.log_alpha_unit.shape) == (4,)
    post.log_alpha_unit.assign([-4.0, -2.0, 0.0, 2.0])
    log_alpha = _np(post.log_alpha())  # (3, 3, channels, 1): constant over each channel's filter
    np.testing.assert_array_equal(log_alpha, np.broadcast_to([-4.0, -2.0, 0.0, 2.0], (3, 3, 4))[..., None])


def test_per_channel_variational_dropout_moments():
    """W = θ ∘ (1 + √α_c ε): mean dw(x, θ) + b, variance dw(x², α_c θ²) with α per channel."""
    batch, calls = 32, 200
    x1 = random_inputs((1, 4, 4, 3), seed=2)
    x = np.repeat(x1, batch, axis=0)
    layer = DepthwiseConv2DFlipout(
        2, posterior=VariationalDropout(granularity="unit"), seed=5, use_bias=False
    )
    layer.build(x.shape)
    log_alpha = np.array([-3.0, -1.0, 0.5], "float32")
    layer.kernel_posterior.log_alpha_unit.assign(log_alpha)
    theta = _np(layer.kernel_posterior.loc)
    mean, var, _ = monte_carlo_moments(layer, x, calls)
    ref = keras.layers.DepthwiseConv2D(2, use_bias=False)
    ref.build(x1.shape)
    ref.set_weights([theta])
    ref_mean = _np(ref(x1))[0]
    ref.set_weights([np.exp(log_alpha)[None, None, :, None] * theta**2])
    ref_var = _np(ref(np.square(x1)))[0]
    assert np.all(np.abs(mean - ref_mean) <= 5 * np.sqrt(ref_var / (batch * calls)) + 1e-6)
    # 200 independent draws: relative standard error ≈ sqrt(2/200) = 0.1 per output. The
    # channels' α differ by factors of 4.5 and 7, so α on the wrong axis fails by far.
    np.testing.assert_allclose(var, ref_var, rtol=0.5)
    np.testing.assert_allclose(var.mean(axis=(0, 1)), ref_var.mean(axis=(0, 1)), rtol=0.3)


def test_one_call_draws_both_kernels_once():
    layer = SeparableConv2DFlipout(3, 2, seed=0, kl_weight=1.0)
    x = random_inputs((2, 4, 4, 2))
    layer(x)
    before = _np(layer.rng_state)
    layer(x)
    assert _np(layer.rng_state)[1] - before[1] == 1  # one RNG advance for both kernels
    assert len(layer.losses) == 1
    np.testing.assert_allclose(
        float(layer.losses[0]),
        float(layer.depthwise_kernel.kl_divergence()) + float(layer.pointwise_kernel.kl_divergence()),
        rtol=1e-5,
    )


def test_deterministic_kernel_is_a_plain_weight():
    layer = SeparableConv2DFlipout(3, 2, bayesian_depthwise=False, seed=0)
    layer.build((1, 4, 4, 2))
    names = [w.name for w in layer.trainable_weights]
    assert "depthwise_kernel" in names and "pointwise_kernel_loc" in names
    assert not any(n.startswith("depthwise_kernel_") for n in names)


def test_flipout_signs_broadcast_over_positions_and_differ_between_examples():
    x = np.broadcast_to(random_inputs((3, 1, 1, 2)), (3, 5, 6, 2)).copy()
    for layer in (
        DepthwiseConv2DFlipout(1, depth_multiplier=2, init_scale=0.5, seed=1),
        SeparableConv2DFlipout(3, 1, init_scale=0.5, seed=1),
    ):
        y = _np(layer(x))
        np.testing.assert_allclose(y, np.broadcast_to(y[:, :1, :1], y.shape), rtol=1e-5, atol=1e-6)
    x = np.repeat(x[:1], 3, axis=0)
    y = _np(DepthwiseConv2DFlipout(1, init_scale=0.5, seed=1)(x))
    assert not np.allclose(y[0], y[1])


def test_depthwise_keeps_channels_separate():
    layer = DepthwiseConv2DFlipout(1, depth_multiplier=2, init_scale=0.3, seed=0)
    x = random_inputs((2, 3, 3, 2))
    y1 = _np(layer(x))
    layer.rng_state.assign(layer.rng_state.value - np.array([0, 1]))
    x2 = x.copy()
    x2[..., 1] = 0.0
    y2 = _np(layer(x2))
    np.testing.assert_array_equal(y1[..., :2], y2[..., :2])  # outputs c·M + m of channel 0
    assert not np.allclose(y1[..., 2:], y2[..., 2:])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: DepthwiseConv2DFlipout(3, depth_multiplier=0), "depth_multiplier"),
        (lambda: DepthwiseConv2DFlipout((3, 3, 3)), "kernel_size"),
        (lambda: DepthwiseConv1DFlipout(3, padding="causal"), "padding"),
        (lambda: DepthwiseConv2DFlipout(3, data_format="NHWC"), "data_format"),
        (lambda: DepthwiseConv2DFlipout(3, strides=0), "strides"),
        (
            lambda: DepthwiseConv2DFlipout(
                3, depth_multiplier=2, posterior=VariationalDropout(granularity="unit")
            ),
            "depth_multiplier=1",
        ),
        (lambda: SeparableConv2DFlipout(0, 3), "filters"),
        (
            lambda: SeparableConv2DFlipout(4, 3, bayesian_depthwise=False, bayesian_pointwise=False),
            "at least one",
        ),
        (
            lambda: SeparableConv2DFlipout(4, 3, bayesian_pointwise=False, bayesian_bias=True),
            "bayesian_pointwise",
        ),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match) as err:
        make()
    assert "Flipout '" in str(err.value)  # the message names the layer


def test_bad_inputs():
    layer = DepthwiseConv2DFlipout(5, seed=0, name="dw")
    with pytest.raises(ValueError, match=r"DepthwiseConv2DFlipout 'dw'.*dilated kernel size \(5, 5\)"):
        layer(np.ones((1, 4, 6, 2), "float32"))
    layer = SeparableConv1DFlipout(2, 3, dilation_rate=3, seed=0, name="sep")
    with pytest.raises(ValueError, match=r"SeparableConv1DFlipout 'sep'.*\(7,\)"):
        layer(np.ones((1, 6, 2), "float32"))
    with pytest.raises(ValueError, match=r"""layer ['"]r['"].*expected ndim=3"""):
        DepthwiseConv1DFlipout(3, name="r")(np.ones((1, 4, 4, 2), "float32"))
    layer = SeparableConv2DFlipout(2, 3, seed=0, name="built")
    layer(np.ones((1, 5, 5, 2), "float32"))
    with pytest.raises(ValueError, match="built"):
        layer(np.ones((1, 5, 5, 3), "float32"))


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    for layer in (
        DepthwiseConv2DFlipout(3, seed=0),
        SeparableConv2DFlipout(3, 3, bayesian_pointwise=False, seed=0),
    ):
        y = layer(random_inputs((2, 5, 5, 2)))
        assert y.dtype == "float16" and layer.losses[0].dtype == "float32"
        assert all(w.dtype == "float32" for w in layer.trainable_weights)
        assert np.all(np.isfinite(_np(y)))

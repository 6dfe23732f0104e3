"""The rank-1 mixture posterior (``posterior=Rank1(...)``) against NumPy and TFP.

A kernel is ``W ∘ (s rᵀ)`` with per-component Gaussian factors: one
component's forward pass against NumPy, the component each example goes
through (and that every layer of a pass agrees on), the per-example moments
against the closed form for Gaussian ``s`` and ``r``, the KL against
``tfp.distributions``, the posterior mean, component diversity after the
random-sign init, and the shared layer battery.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import bayesflip
from bayesflip.layers import (
    Conv1DFlipout,
    Conv2DFlipout,
    Conv2DTransposeFlipout,
    DenseFlipout,
    DepthwiseConv2DFlipout,
    EmbeddingFlipout,
    GRUFlipout,
    SeparableConv1DFlipout,
)
from bayesflip.posteriors import RandomSignInitializer, Rank1
from tests.layers.helpers import check_variational_layer

tfd = tfp.distributions

#: Factor standard deviation of a "near-deterministic" layer (init_scale just above min_scale).
TINY = dict(init_scale=2e-7, min_scale=1e-7)


def _np(v):
    return keras.ops.convert_to_numpy(v)


def _factors(layer):
    post = layer.kernel_posterior
    return {
        name: _np(getattr(post, name))
        for name in ("loc", "s_loc", "r_loc", "component_bias")
        if getattr(post, name) is not None
    }


def _dense_component(x, layer, k):
    """NumPy: component ``k`` of a rank-1 Dense layer at its factor means."""
    f = _factors(layer)
    y = ((x * f["s_loc"][k]) @ f["loc"]) * f["r_loc"][k] + _np(layer.bias)
    return y + f["component_bias"][k]


def _randomize_biases(layer, rng):
    post = layer.kernel_posterior
    post.component_bias.assign(rng.normal(size=post.component_bias.shape).astype("float32"))
    layer.bias.assign(rng.normal(size=layer.bias.shape).astype("float32"))


# ------------------------------------------------------------ shared battery
BATTERY = [
    ("dense", lambda **kw: DenseFlipout(3, posterior=Rank1(num_components=2), **kw), (4, 5)),
    ("dense_shared", lambda **kw: DenseFlipout(3, estimator="shared", posterior=Rank1(3), **kw), (6, 5)),
    ("conv1d", lambda **kw: Conv1DFlipout(3, 3, posterior=Rank1(2), **kw), (3, 7, 2)),
    (
        "conv2d_channels_first",
        lambda **kw: Conv2DFlipout(3, 3, data_format="channels_first", posterior=Rank1(2), **kw),
        (2, 2, 5, 5),
    ),
    (
        "conv2d_transpose",
        lambda **kw: Conv2DTransposeFlipout(3, 3, strides=2, posterior=Rank1(2), **kw),
        (2, 4, 4, 2),
    ),
]


@pytest.mark.parametrize("factory,input_shape", [c[1:] for c in BATTERY], ids=[c[0] for c in BATTERY])
def test_layer_battery(factory, input_shape):
    check_variational_layer(factory, input_shape)


# ------------------------------------------------------ forward vs NumPy
def test_each_example_goes_through_component_position_plus_counter(rng):
    k = 3
    layer = DenseFlipout(4, posterior=Rank1(num_components=k), seed=0, **TINY)
    x = rng.normal(size=(7, 5)).astype("float32")
    layer(x)  # build (counter 0 -> 1)
    _randomize_biases(layer, rng)
    for _ in range(4):
        counter = int(_np(layer.rng_state)[1])
        got = _np(layer(x))
        want = np.stack([_dense_component(x[i : i + 1], layer, (i + counter) % k)[0] for i in range(len(x))])
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_every_layer_of_a_pass_uses_the_same_component(rng):
    k = 4
    model = keras.Sequential(
        [
            keras.Input((5,)),
            DenseFlipout(6, activation="tanh", posterior=Rank1(k), seed=1, **TINY),
            DenseFlipout(3, posterior=Rank1(k), seed=2, **TINY),
        ]
    )
    x = np.repeat(rng.normal(size=(1, 5)).astype("float32"), 2 * k, axis=0)
    for layer in model.layers:
        layer(np.zeros((1, layer.kernel_posterior.shape[0]), "float32"))  # counters stay equal: 1 and 1
        _randomize_biases(layer, rng)
    first, second = model.layers
    counter = int(_np(first.rng_state)[1])
    got = _np(model(x))
    for i in range(len(x)):
        c = (i + counter) % k
        want = _dense_component(np.tanh(_dense_component(x[i : i + 1], first, c)), second, c)
        np.testing.assert_allclose(got[i : i + 1], want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_component_against_keras_layer(rng):
    """Component ``k`` is the Keras op with kernel ``W ∘ (s_k r_kᵀ)`` (transposed: output axis −2)."""
    layer = Conv2DTransposeFlipout(3, 3, strides=2, posterior=Rank1(2), seed=0, **TINY)
    x = rng.normal(size=(2, 4, 4, 2)).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    counter = int(_np(layer.rng_state)[1])
    got = _np(layer(x))
    f = _factors(layer)
    ref = keras.layers.Conv2DTranspose(3, 3, strides=2)
    ref.build(x.shape)
    for i in range(len(x)):
        c = (i + counter) % 2
        kernel = f["loc"] * np.outer(f["r_loc"][c], f["s_loc"][c])  # (kh, kw, out, in) ∘ [o, i]
        ref.set_weights([kernel, _np(layer.bias) + f["component_bias"][c]])
        np.testing.assert_allclose(got[i], _np(ref(x[i : i + 1]))[0], rtol=1e-4, atol=1e-4)


def test_posterior_mean_is_w_times_mean_outer_product(rng):
    k = 3
    layer = DenseFlipout(4, posterior=Rank1(k), seed=0)
    x = rng.normal(size=(6, 5)).astype("float32")
    layer(x)
    _randomize_biases(layer, rng)
    f = _factors(layer)
    modulation = np.mean([np.outer(f["s_loc"][j], f["r_loc"][j]) for j in range(k)], axis=0)
    want = x @ (f["loc"] * modulation) + _np(layer.bias) + f["component_bias"].mean(0)
    state = _np(layer.rng_state)
    with bayesflip.posterior_mean(layer):
        got = _np(layer(x))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(_np(layer.rng_state), state)  # nothing drawn


# ------------------------------------------------ moments vs closed form
@pytest.mark.parametrize("estimator", ["flipout", "shared"])
def test_per_example_moments_match_closed_form(estimator, rng):
    """``y_o = (Σ_i x_i s_i W_io) r_o``: mean ``a_o r̄_o``; variance ``E[A²] E[r²] − a² r̄²`` with
    ``a = Σ x_i s̄_i W_io`` and ``Var A = Σ x_i² σ_s,i² W_io²``."""
    k, n, calls = 2, 2000, 8
    layer = DenseFlipout(3, posterior=Rank1(k), use_bias=False, estimator=estimator, seed=4, init_scale=0.3)
    x1 = rng.normal(size=(1, 4)).astype("float32")
    x = np.repeat(x1, n, axis=0)
    layer(x[:1])
    post = layer.kernel_posterior
    s_scale, r_scale = (_np(t) for t in post.factor_scales())
    f = _factors(layer)
    fn = tf.function(lambda t: layer(t))
    samples = []
    for _ in range(calls):
        counter = int(_np(layer.rng_state)[1])
        y = _np(fn(x))
        # rows of component j: positions i with (i + counter) % k == j
        samples.append([y[(np.arange(n) + counter) % k == j] for j in range(k)])
    for j in range(k):
        if estimator == "flipout":
            draws = np.concatenate([s[j] for s in samples])  # independent per example
        else:
            draws = np.stack([s[j][0] for s in samples])  # one draw per component and call
            assert all(np.ptp(s[j], axis=0).max() == 0 for s in samples)  # shared within the call
            continue
        a = (x1[0] * f["s_loc"][j]) @ f["loc"]
        var_a = (x1[0] ** 2 * s_scale[j] ** 2) @ (f["loc"] ** 2)
        mean = a * f["r_loc"][j]
        var = (var_a + a**2) * (r_scale[j] ** 2 + f["r_loc"][j] ** 2) - mean**2
        se = np.sqrt(var / len(draws))
        np.testing.assert_array_less(np.abs(draws.mean(0) - mean), 5 * se + 1e-6)
        np.testing.assert_allclose(draws.var(0), var, rtol=0.12)


# ------------------------------------------------------------------- KL
def test_kl_is_the_mean_over_components_of_the_factor_kls(rng):
    k = 3
    family = Rank1(k, prior_mean=0.8, prior_scale=0.3)
    layer = DenseFlipout(4, posterior=family, seed=0, init_scale=0.05, kl_weight=0.25)
    layer(rng.normal(size=(2, 5)).astype("float32"))
    post = layer.kernel_posterior
    post.s_loc.assign(rng.normal(size=post.s_loc.shape).astype("float32"))
    post.r_rho.assign(rng.normal(size=post.r_rho.shape).astype("float32"))
    s_scale, r_scale = post.factor_scales()
    prior = tfd.Normal(0.8, 0.3)
    want = (
        tf.reduce_sum(tfd.kl_divergence(tfd.Normal(post.s_loc, s_scale), prior))
        + tf.reduce_sum(tfd.kl_divergence(tfd.Normal(post.r_loc, r_scale), prior))
    ) / k
    np.testing.assert_allclose(_np(layer.kl_divergence()), _np(want), rtol=1e-5)
    layer(np.ones((2, 5), "float32"))
    np.testing.assert_allclose(_np(layer.losses[0]), 0.25 * _np(want), rtol=1e-5)
    # W has no prior: the KL does not depend on it
    post.loc.assign(post.loc * 3.0)
    np.testing.assert_allclose(_np(layer.kl_divergence()), _np(want), rtol=1e-5)


# --------------------------------------------------------- init, diversity
def test_random_sign_init_spreads_the_components():
    v = _np(RandomSignInitializer(0.5, seed=1)((4, 4000)))
    assert set(np.unique(v)) == {-1.0, 1.0}
    assert abs((v > 0).mean() - 0.5) < 0.02
    # any two components disagree in about half their signs
    disagree = [np.mean(v[i] != v[j]) for i in range(4) for j in range(i)]
    assert min(disagree) > 0.45
    assert abs(_np(RandomSignInitializer(0.8, seed=1)((20000,))).mean() - 0.6) < 0.02  # E = 2p − 1
    g = _np(RandomSignInitializer(-0.3, seed=1)((20000,)))
    assert abs(g.mean() - 1.0) < 0.01 and abs(g.std() - 0.3) < 0.01
    np.testing.assert_array_equal(_np(RandomSignInitializer(0.0)((3,))), np.ones(3))


def test_components_give_different_networks(rng):
    k = 4
    model = keras.Sequential(
        [
            keras.Input((8,)),
            DenseFlipout(16, activation="relu", posterior=Rank1(k), seed=1, **TINY),
            DenseFlipout(3, posterior=Rank1(k), seed=2, **TINY),
        ]
    )
    x = rng.normal(size=(64, 8)).astype("float32")
    model(x[:1])
    # K consecutive calls: every example through every component once
    outs = np.stack([_np(model(x)) for _ in range(k)])  # (k, n, 3)
    counter = int(_np(model.layers[0].rng_state)[1]) - k
    by_component = np.empty_like(outs)
    for t in range(k):
        comp = (np.arange(len(x)) + counter + t) % k
        by_component[comp, np.arange(len(x))] = outs[t]
    for i in range(k):
        for j in range(i):
            r = np.corrcoef(by_component[i].ravel(), by_component[j].ravel())[0, 1]
            assert r < 0.9, (i, j, r)


def test_mc_predict_visits_every_component(rng):
    k = 3
    model = keras.Sequential([keras.Input((5,)), DenseFlipout(2, posterior=Rank1(k), seed=0, **TINY)])
    x = rng.normal(size=(4, 5)).astype("float32")
    model(x)
    _randomize_biases(model.layers[0], rng)
    samples = np.asarray(bayesflip.uncertainty.mc_predict(model, x, num_samples=2 * k, return_samples=True))
    for i in range(len(x)):
        want = np.stack([_dense_component(x[i : i + 1], model.layers[0], c)[0] for c in range(k)])
        got = np.unique(np.round(samples[:, i], 3), axis=0)
        np.testing.assert_allclose(got, np.unique(np.round(want, 3), axis=0), atol=2e-3)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_components=0), "num_components"),
        (dict(num_components=2.5), "num_components"),
        (dict(prior_scale=0.0), "prior_scale"),
        (dict(prior_scale=-1.0), "prior_scale"),
        (dict(random_sign_init=1.5), "random_sign_init"),
        (dict(component_bias="yes"), "component_bias"),
    ],
)
def test_bad_family_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"Rank1: `{match}`"):
        Rank1(**kwargs)


def test_layers_refuse_what_has_no_meaning():
    with pytest.raises(ValueError, match=r"DenseFlipout 'r1'.*estimator='local' has no meaning.*Rank1"):
        DenseFlipout(3, estimator="local", posterior="rank1", name="r1")
    with pytest.raises(ValueError, match=r"DenseFlipout 'r2'.*rank-1 posterior applies to kernels.*'bias'"):
        DenseFlipout(3, bayesian_bias=True, posterior=Rank1(2), name="r2")(np.ones((1, 2), "float32"))
    with pytest.raises(ValueError, match=r"GRUFlipout 'g'.*per-example factors.*does not support it"):
        GRUFlipout(3, posterior=Rank1(2), name="g")
    with pytest.raises(ValueError, match=r"EmbeddingFlipout 'e'.*does not support it"):
        EmbeddingFlipout(5, 3, posterior=Rank1(2), name="e")
    with pytest.raises(ValueError, match=r"DepthwiseConv2DFlipout 'd'.*does not support it"):
        DepthwiseConv2DFlipout(3, posterior=Rank1(2), name="d")
    with pytest.raises(ValueError, match=r"SeparableConv1DFlipout 's'.*does not support it"):
        SeparableConv1DFlipout(4, 3, posterior=Rank1(2), name="s")
    with pytest.raises(ValueError, match=r"DenseFlipout 'p'.*`prior` does not apply.*Rank1"):
        DenseFlipout(3, prior="normal", posterior=Rank1(2), name="p")


def test_family_config_round_trip():
    family = Rank1(
        num_components=3, prior_mean=0.5, prior_scale=0.2, random_sign_init=-0.5, component_bias=False
    )
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(family))
    assert again == family and again.get_config() == family.get_config()
    assert bayesflip.posteriors.get("rank1") == Rank1()
    layer = DenseFlipout(2, posterior=family, seed=0)
    layer(np.ones((1, 3), "float32"))
    assert layer.kernel_posterior.component_bias is None


def test_tiled_batches_send_every_example_through_every_component(rng):
    k = 3
    model = keras.Sequential([keras.Input((5,)), DenseFlipout(2, posterior=Rank1(k), seed=0, **TINY)])
    x = rng.normal(size=(4, 5)).astype("float32")
    model(x)
    _randomize_biases(model.layers[0], rng)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(4))).batch(4)
    tiled_x, tiled_y = next(iter(bayesflip.posteriors.tile_for_components(ds, k)))
    np.testing.assert_array_equal(_np(tiled_y), np.repeat(np.arange(4), k))
    out = _np(model(tiled_x)).reshape(4, k, 2)
    for i in range(4):
        want = np.stack([_dense_component(x[i : i + 1], model.layers[0], c)[0] for c in range(k)])
        np.testing.assert_allclose(np.sort(out[i], axis=0), np.sort(want, axis=0), rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="tile_for_components: `dataset` must be a batched tf.data.Dataset"):
        bayesflip.posteriors.tile_for_components(x, k)
    with pytest.raises(ValueError, match="tile_for_components: `num_components`"):
        bayesflip.posteriors.tile_for_components(ds, 0)


def test_export_serves_the_rank1_stream_and_posterior_mean(tmp_path, rng):
    """No rank-1 code in serving: the exported draws continue the model's stream, component rotation included."""
    k, t = 2, 4
    model = keras.Sequential(
        [
            keras.Input((5,)),
            DenseFlipout(6, activation="relu", posterior=Rank1(k), seed=0, init_scale=0.2),
            DenseFlipout(3, activation="softmax", posterior=Rank1(k), seed=1, init_scale=0.2),
        ]
    )
    x = rng.normal(size=(4, 5)).astype("float32")
    path = bayesflip.export(model, tmp_path / "r1", num_samples=t, task="classification")
    served = tf.saved_model.load(path)
    got = _np(served.signatures["predict"](x=tf.constant(x))["samples"])
    want = np.asarray(bayesflip.uncertainty.mc_predict(model, x, num_samples=t, return_samples=True))
    np.testing.assert_allclose(got, want, atol=1e-6)
    with bayesflip.posterior_mean(model):
        mean = model.predict(x, verbose=0)
    np.testing.assert_allclose(
        _np(served.signatures["posterior_mean"](x=tf.constant(x))["predictions"]), mean, atol=1e-6
    )


def test_mixed_precision_rank1(rng):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = DenseFlipout(3, posterior=Rank1(2), seed=0, kl_weight=1e-2)
        y = layer(rng.normal(size=(4, 5)).astype("float32"))
        assert y.dtype == tf.float16
        assert layer.losses[0].dtype == tf.float32
        assert all(w.dtype == "float32" for w in layer.trainable_weights)
        with bayesflip.posterior_mean(layer):
            assert layer(np.ones((2, 5), "float32")).dtype == tf.float16
    finally:
        keras.mixed_precision.set_global_policy("float32")

"""Predictive uncertainty: MC predictive independence and moments, entropy
decomposition, regression variance/intervals and OOD scores."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats
from sklearn.metrics import average_precision_score, roc_auc_score

import bayesflip
from bayesflip import heads
from bayesflip import uncertainty as unc
from bayesflip._tfp import tfd
from bayesflip.layers import DenseFlipout


def linear_model(in_dim, out_dim, *, seed=1, init_scale=0.3, use_bias=False, estimator="flipout"):
    model = keras.Sequential(
        [
            keras.Input((in_dim,)),
            DenseFlipout(out_dim, use_bias=use_bias, init_scale=init_scale, seed=seed, estimator=estimator),
        ]
    )
    layer = model.layers[0]
    # distinct posterior scales per weight so the closed form is not trivially symmetric
    rho = np.random.default_rng(seed).normal(-1.5, 0.5, size=layer.kernel_posterior.rho.shape)
    layer.kernel_posterior.rho.assign(rho.astype("float32"))
    return model, layer


# --------------------------------------------------------------------------- mc_predict


def test_mc_predict_draws_are_independent_with_closed_form_variance():
    """One input, a 1-feature linear flipout layer: y = x (mu + sigma eps).

    Independent draws give y_t - x mu ~ N(0, x^2 sigma^2) i.i.d. over t. Within one
    flipout batch, copies of the same input share Delta W and (with one feature)
    only differ by a sign, so their |y - x mu| are identical: tiling cannot replace
    independent draws.
    """
    model, layer = linear_model(1, 1)
    x = np.array([[1.7]], "float32")
    T = 4000
    samples = unc.mc_predict(model, x, num_samples=T, return_samples=True)
    assert samples.shape == (T, 1, 1)
    mu = float(layer.kernel_posterior.mean()[0, 0])
    sigma = float(layer.kernel_posterior.scale()[0, 0])
    d = samples[:, 0, 0] - 1.7 * mu
    # chi-square: var estimate has relative sd sqrt(2/T) = 2.2%; allow 5 sd
    assert np.var(d) == pytest.approx((1.7 * sigma) ** 2, rel=5 * np.sqrt(2 / T))
    assert abs(np.mean(d)) < 5 * 1.7 * sigma / np.sqrt(T)
    # independence across draws: lag-1 correlation of d and of d^2 ~ 0 (sd 1/sqrt(T))
    for a in (d, d**2):
        assert abs(np.corrcoef(a[1:], a[:-1])[0, 1]) < 4 / np.sqrt(T)
    # normality of the draws (KS against the closed form)
    assert stats.kstest(d / (1.7 * sigma), "norm").pvalue > 1e-3

    # the counter-example: tiling in one batch shares Delta W
    tiled = keras.ops.convert_to_numpy(model(np.repeat(x, 64, axis=0)))[:, 0] - 1.7 * mu
    np.testing.assert_allclose(np.abs(tiled), np.abs(tiled[0]), rtol=1e-5)
    assert np.std(np.abs(d[:64])) > 0.1 * sigma


def test_mc_predict_moments_match_closed_form_multivariate():
    # y_k = x . W[:, k] + b_k with W_jk ~ N(mu_jk, s_jk^2): mean x.mu + b, variance sum_j x_j^2 s_jk^2.
    model, layer = linear_model(5, 3, use_bias=True)
    layer.bias.assign(np.array([0.5, -1.0, 2.0], "float32"))
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    T = 3000
    samples = unc.mc_predict(model, x, num_samples=T, return_samples=True, batch_size=3)
    mu = layer.kernel_posterior.mean().numpy()
    s = layer.kernel_posterior.scale().numpy()
    mean = x @ mu + np.array([0.5, -1.0, 2.0])
    var = (x**2) @ (s**2)
    np.testing.assert_allclose(samples.var(axis=0), var, rtol=5 * np.sqrt(2 / T))
    np.testing.assert_allclose(samples.mean(axis=0), mean, atol=5 * np.sqrt(var.max() / T))
    # the mean output is the average of the draws (same stream, fresh model)
    model2, layer2 = linear_model(5, 3, use_bias=True)
    model2.set_weights(model.get_weights())
    layer2.rng_state.assign(
        layer.rng_state.value - [0, samples.shape[0] * 2]
    )  # rewind: 2 batches per draw set
    mean_only = unc.mc_predict(model2, x, num_samples=T, batch_size=3)
    np.testing.assert_allclose(mean_only, samples.mean(axis=0), rtol=1e-5, atol=1e-5)


def test_mc_predict_advances_rng_once_per_draw_and_batch():
    model, layer = linear_model(3, 2)
    start = layer.rng_state.numpy().copy()
    unc.mc_predict(model, np.ones((10, 3), "float32"), num_samples=6, batch_size=4)  # 3 batches
    assert layer.rng_state.numpy()[1] - start[1] == 6 * 3
    assert not model.losses  # graph KL tensors are not left behind


def test_mc_predict_same_seed_same_draws_and_batching_consistency():
    x = np.random.default_rng(1).normal(size=(9, 3)).astype("float32")
    a, _ = linear_model(3, 2, seed=7)
    b, _ = linear_model(3, 2, seed=7)
    b.set_weights(a.get_weights())
    np.testing.assert_array_equal(
        unc.mc_predict(a, x, num_samples=5, return_samples=True),
        unc.mc_predict(b, x, num_samples=5, return_samples=True),
    )
    # a deterministic model gives model.predict exactly, whatever the batching
    det = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    ref = det.predict(x, verbose=0)
    for bs in (None, 2, 4, 100):
        np.testing.assert_allclose(unc.mc_predict(det, x, num_samples=3, batch_size=bs), ref, rtol=1e-6)
        assert unc.mc_predict(det, x, num_samples=3, batch_size=bs, return_samples=True).shape == (3, 9, 4)


def test_mc_predict_from_logits_and_posterior_mean_mode():
    model, layer = linear_model(3, 4, init_scale=0.5)
    x = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")
    probs = unc.mc_predict(model, x, num_samples=4, return_samples=True, from_logits=True)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-6)
    with bayesflip.posterior_mean(model):
        with pytest.warns(UserWarning, match="posterior-mean mode"):
            draws = unc.mc_predict(model, x, num_samples=4, return_samples=True)
        np.testing.assert_allclose(draws, np.broadcast_to(draws[0], draws.shape), rtol=1e-6)
    # back to sampling: the cached compiled function for the sampling mode is used again
    draws = unc.mc_predict(model, x, num_samples=4, return_samples=True)
    assert np.std(draws, axis=0).min() > 0


def _rows_share_weights(draws):
    """With identical inputs, a ``shared`` draw gives every row the same output; flipout does not."""
    return bool(np.all(np.std(draws, axis=1) < 1e-5))


@pytest.mark.parametrize("first", ["flipout", "shared"])
def test_mc_predict_recompiles_when_the_estimator_changes(first):
    """Regression: the compiled sampler was keyed on the posterior-mean mode only, so after a call
    under ``use_estimator(model, "shared")`` a flipout call reused the shared trace (and vice versa)."""
    from bayesflip.diagnostics import use_estimator

    model, _ = linear_model(1, 3, init_scale=0.5)
    x = np.ones((8, 1), "float32")
    second = "shared" if first == "flipout" else "flipout"
    for estimator in (first, second, first, second):
        with use_estimator(model, estimator):
            draws = unc.mc_predict(model, x, num_samples=4, return_samples=True)
            direct = np.stack([keras.ops.convert_to_numpy(model(x)) for _ in range(4)])
        assert _rows_share_weights(draws) == (estimator == "shared"), estimator
        assert _rows_share_weights(direct) == (estimator == "shared"), estimator


def test_mc_predict_recompiles_when_the_dtype_policy_changes():
    model, layer = linear_model(3, 2)
    x = np.ones((4, 3), "float32")
    from bayesflip.uncertainty._sampling import _SAMPLERS

    unc.mc_predict(model, x, num_samples=2)
    keys = set(_SAMPLERS[model])
    layer.dtype_policy = keras.DTypePolicy("mixed_float16")
    unc.mc_predict(model, x, num_samples=2)
    assert len(set(_SAMPLERS[model]) - keys) == 1


def test_from_logits_on_probabilities_warns_like_keras():
    """A softmax model with from_logits=True: a second softmax flattens the predictive, so warn."""
    import warnings

    softmax_model = keras.Sequential([keras.Input((3,)), DenseFlipout(4, activation="softmax", seed=0)])
    logits_model, _ = linear_model(3, 4, init_scale=0.5)
    x = np.random.default_rng(0).normal(size=(10, 3)).astype("float32")
    with pytest.warns(UserWarning, match=r"mc_predict: received `from_logits=True`.*probability simplex"):
        unc.mc_predict(softmax_model, x, num_samples=3, from_logits=True)
    with pytest.warns(UserWarning, match="from_logits=True"):  # the check runs once per compiled batch too
        unc.mc_predict(softmax_model, x, num_samples=3, from_logits=True, batch_size=4, return_samples=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unc.mc_predict(softmax_model, x, num_samples=3)  # probabilities, no from_logits: fine
        unc.mc_predict(logits_model, x, num_samples=3, from_logits=True)  # real logits: fine
        unc.predictive_entropy(np.array([[2.0, -1.0, 0.5]]), from_logits=True)
    probs = unc.mc_predict(softmax_model, x, num_samples=3, return_samples=True)
    for f in (unc.expected_entropy, unc.mutual_information):
        with pytest.warns(UserWarning, match=rf"{f.__name__}: received `from_logits=True`"):
            f(probs, from_logits=True)
    with pytest.warns(UserWarning, match=r"predictive_entropy: received `from_logits=True`"):
        unc.predictive_entropy(probs.mean(0), from_logits=True)


def test_metrics_warn_on_probabilities_passed_as_logits():
    import warnings

    from bayesflip import calibration as cal

    y = np.array([0, 1, 1])
    p = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    for f in (cal.expected_calibration_error, cal.brier_score, cal.negative_log_likelihood):
        with pytest.warns(UserWarning, match=rf"{f.__name__}: received `from_logits=True`"):
            f(y, p, from_logits=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            f(y, p)
            f(y, np.log(p) + 3.0, from_logits=True)
    with pytest.warns(UserWarning, match=r"fit_temperature: .*from_probs=True"):
        cal.fit_temperature(p, y)


def test_mc_predict_multi_output_regression_model():
    inputs = keras.Input((2,))
    h = DenseFlipout(8, activation="tanh", seed=3, init_scale=0.2)(inputs)
    mean = DenseFlipout(1, seed=4, init_scale=0.2)(h)
    scale = keras.layers.Dense(1, activation="softplus")(h)
    model = keras.Model(inputs, [mean, scale])
    x = np.random.default_rng(3).normal(size=(7, 2)).astype("float32")
    mu, sd = unc.mc_predict(model, x, num_samples=16, return_samples=True, batch_size=4)
    assert mu.shape == sd.shape == (16, 7, 1)
    u = unc.regression_uncertainty(mu, sd)
    assert np.all(u.epistemic_variance > 0)


@pytest.mark.parametrize("element", ["x", "x_y", "x_y_w"])
def test_mc_predict_on_a_dataset_equals_the_same_batches_in_memory(element):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(10, 3)).astype("float32")
    y = rng.integers(0, 2, size=10)
    a, _ = linear_model(3, 2, seed=11)
    b, _ = linear_model(3, 2, seed=11)  # the same weights and RNG state
    b.set_weights(a.get_weights())
    parts = {"x": (x,), "x_y": (x, y), "x_y_w": (x, y, np.ones(10, "float32"))}[element]
    data = tf.data.Dataset.from_tensor_slices(parts[0] if element == "x" else parts).batch(4)
    for kwargs in (dict(return_samples=True), dict(from_logits=True)):
        ref = unc.mc_predict(a, x, num_samples=5, batch_size=4, **kwargs)  # 3 calls: 4 + 4 + 2
        got = unc.mc_predict(b, data, num_samples=5, **kwargs)
        np.testing.assert_array_equal(got, ref)
    assert got.shape == (10, 2)


def test_mc_predict_on_a_dataset_returns_the_heads_regression_predictive():
    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential(
            [keras.Input((2,)), DenseFlipout(2, seed=5, init_scale=0.2), heads.GaussianHead(units=1)]
        )

    a, b = model(), model()
    b.set_weights(a.get_weights())
    x = np.random.default_rng(4).normal(size=(7, 2)).astype("float32")
    ref = unc.mc_predict(a, x, num_samples=6, batch_size=3)
    got = unc.mc_predict(b, tf.data.Dataset.from_tensor_slices(x).batch(3), num_samples=6)
    assert type(got) is type(ref)
    np.testing.assert_array_equal(got.mean, ref.mean)
    np.testing.assert_array_equal(got.samples, ref.samples)
    assert got.samples.shape[:2] == (6, 7)


def test_mc_predict_on_an_empty_dataset_says_so():
    model, _ = linear_model(3, 2)
    empty = tf.data.Dataset.from_tensor_slices(np.zeros((0, 3), "float32")).batch(2)
    with pytest.raises(ValueError, match=r"mc_predict: the tf.data.Dataset `x` yielded no batches"):
        unc.mc_predict(model, empty)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(num_samples=0), ValueError, r"mc_predict.*num_samples.*positive int, got 0"),
        (dict(num_samples=2.0), ValueError, r"num_samples"),
        (dict(batch_size=0), ValueError, r"batch_size"),
        (dict(x=np.zeros((0, 3), "float32")), ValueError, r"empty"),
        (dict(x=[np.zeros((2, 3), "float32"), np.zeros((3, 3), "float32")]), ValueError, r"first \(batch\)"),
        (dict(model="model"), TypeError, r"Keras model"),
    ],
)
def test_mc_predict_errors(kwargs, err, match):
    model, _ = linear_model(3, 2)
    args = dict(model=model, x=np.ones((2, 3), "float32"))
    args.update(kwargs)
    with pytest.raises(err, match=match):
        unc.mc_predict(**args)


# --------------------------------------------------------------------------- entropies


def test_entropies_match_scipy_and_decompose(rng):
    logits = 2 * rng.normal(size=(20, 50, 6))
    probs = special.softmax(logits, axis=-1)
    mean = probs.mean(axis=0)
    total = unc.predictive_entropy(mean)
    np.testing.assert_allclose(total, stats.entropy(mean, axis=-1), rtol=1e-10)
    aleatoric = unc.expected_entropy(probs)
    np.testing.assert_allclose(aleatoric, stats.entropy(probs, axis=-1).mean(axis=0), rtol=1e-10)
    mi = unc.mutual_information(probs)
    np.testing.assert_allclose(total, aleatoric + mi, rtol=1e-10)
    assert np.all(mi > 0)
    # from logits
    np.testing.assert_allclose(unc.expected_entropy(logits, from_logits=True), aleatoric, rtol=1e-9)
    np.testing.assert_allclose(unc.mutual_information(logits, from_logits=True), mi, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(
        unc.predictive_entropy(logits[0], from_logits=True), stats.entropy(probs[0], axis=-1), rtol=1e-9
    )


def test_entropy_edge_cases():
    # identical samples: no epistemic uncertainty; one-hot: zero entropy; uniform: log K
    p = np.tile([[[0.2, 0.3, 0.5]]], (5, 4, 1))
    np.testing.assert_allclose(unc.mutual_information(p), 0.0, atol=1e-12)
    assert unc.predictive_entropy([[0.0, 1.0, 0.0]])[0] == 0.0
    assert unc.predictive_entropy(np.full((1, 7), 1 / 7))[0] == pytest.approx(np.log(7))
    # disagreeing confident samples: MI = log 2
    assert unc.mutual_information([[[1.0, 0.0]], [[0.0, 1.0]]])[0] == pytest.approx(np.log(2))


def test_entropies_work_on_tensors_inside_tf_function():
    @tf.function
    def f(p):
        return unc.mutual_information(p), unc.predictive_entropy(tf.reduce_mean(p, 0))

    p = tf.constant(special.softmax(np.random.default_rng(0).normal(size=(4, 3, 5)), axis=-1), tf.float32)
    mi, h = f(p)
    assert isinstance(mi, tf.Tensor) and mi.shape == (3,)
    np.testing.assert_allclose(mi.numpy(), unc.mutual_information(p.numpy()), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: unc.predictive_entropy([[0.5, 0.6]]), r"predictive_entropy.*simplex.*from_logits"),
        (lambda: unc.expected_entropy([0.5, 0.5]), r"expected_entropy.*rank >= 2"),
        (lambda: unc.mutual_information(np.zeros((0, 3, 2))), r"empty"),
        (lambda: unc.mutual_information([[[np.nan, 1.0]]]), r"NaN"),
    ],
)
def test_entropy_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- regression


def mixture(mu, sd):
    s = mu.shape[0]
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=np.zeros(mu.shape[1:] + (s,))),
        tfd.Normal(np.moveaxis(mu, 0, -1), np.moveaxis(sd, 0, -1)),
    )


def test_regression_uncertainty_matches_tfp_mixture(rng):
    mu = rng.normal(size=(12, 30))
    sd = rng.uniform(0.2, 2.0, size=(12, 30))
    u = unc.regression_uncertainty(mu, sd)
    mix = mixture(mu, sd)
    np.testing.assert_allclose(u.mean, mix.mean().numpy(), rtol=1e-10)
    np.testing.assert_allclose(u.total_variance, mix.variance().numpy(), rtol=1e-10)
    np.testing.assert_allclose(u.aleatoric_variance, (sd**2).mean(0), rtol=1e-12)
    np.testing.assert_allclose(u.epistemic_variance, mu.var(0), rtol=1e-12)


def test_predictive_cdf_and_intervals_match_tfp_mixture(rng):
    mu = rng.normal(size=(8, 25))
    sd = rng.uniform(0.3, 1.5, size=(8, 25))
    mix = mixture(mu, sd)
    y = rng.normal(size=25)
    np.testing.assert_allclose(unc.predictive_cdf(y, mu, sd), mix.cdf(y).numpy(), rtol=1e-10)
    lo, hi = unc.prediction_interval(mu, sd, level=0.9)
    np.testing.assert_allclose(mix.cdf(lo).numpy(), 0.05, atol=1e-8)
    np.testing.assert_allclose(mix.cdf(hi).numpy(), 0.95, atol=1e-8)
    # one Gaussian: scipy's interval; gaussian method: mean -/+ z sqrt(total variance)
    lo1, hi1 = unc.prediction_interval(mu[:1], sd[:1], level=0.8)
    ref = stats.norm.interval(0.8, loc=mu[0], scale=sd[0])
    np.testing.assert_allclose(lo1, ref[0], rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(hi1, ref[1], rtol=1e-8, atol=1e-9)
    glo, ghi = unc.prediction_interval(mu, sd, level=0.9, method="gaussian")
    u = unc.regression_uncertainty(mu, sd)
    np.testing.assert_allclose(ghi - u.mean, stats.norm.ppf(0.95) * np.sqrt(u.total_variance), rtol=1e-10)
    np.testing.assert_allclose(u.mean - glo, ghi - u.mean, rtol=1e-10)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: unc.regression_uncertainty(np.zeros((2, 3)), np.ones((2, 4))), r"same shape"),
        (lambda: unc.regression_uncertainty(np.zeros(3), np.ones(3)), r"leading sample axis"),
        (lambda: unc.regression_uncertainty(np.zeros((2, 3)), -np.ones((2, 3))), r">= 0"),
        (lambda: unc.prediction_interval(np.zeros((2, 3)), np.ones((2, 3)), level=1.5), r"level.*\(0, 1\)"),
        (lambda: unc.prediction_interval(np.zeros((2, 3)), np.ones((2, 3)), method="t"), r"method"),
        (lambda: unc.predictive_cdf(np.zeros(3), np.zeros((2, 4)), np.ones((2, 4))), r"shape of `y`"),
        (lambda: unc.predictive_cdf(np.zeros(3), np.zeros(3), np.zeros(3)), r"scale.*> 0"),
    ],
)
def test_regression_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- OOD


@pytest.mark.parametrize("ties", [False, True])
def test_ood_scores_match_sklearn(rng, ties):
    a = rng.normal(size=300)
    b = rng.normal(loc=1.0, size=200)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    y = np.r_[np.zeros(300), np.ones(200)]
    s = np.r_[a, b]
    assert unc.ood_auroc(a, b) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert unc.ood_aupr(a, b) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert unc.ood_aupr(a, b, positive="in") == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)


def test_ood_perfect_and_random_separation(rng):
    assert unc.ood_auroc([0, 1, 2], [3, 4]) == 1.0
    assert unc.ood_aupr([0, 1, 2], [3, 4]) == 1.0
    assert unc.ood_auroc([3, 4], [0, 1, 2]) == 0.0
    s = rng.normal(size=20000)
    assert unc.ood_auroc(s[:10000], s[10000:]) == pytest.approx(0.5, abs=0.02)


def test_ood_errors():
    with pytest.raises(ValueError, match=r"ood_auroc.*at least one"):
        unc.ood_auroc([], [1.0])
    with pytest.raises(ValueError, match=r"ood_aupr.*positive"):
        unc.ood_aupr([0.0], [1.0], positive="both")


def test_mc_predict_cache_does_not_keep_the_model_alive():
    import gc
    import weakref

    model, _ = linear_model(3, 2)
    unc.mc_predict(model, np.ones((2, 3), "float32"), num_samples=2)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_mc_predict_on_an_unbuilt_model_does_not_advance_the_rng_to_build_it():
    """Building on ``x[:1]`` runs in posterior-mean mode: the state equals that of a model built by ``keras.Input``."""
    x = np.ones((5, 4), "float32")
    unbuilt = keras.Sequential([DenseFlipout(3, seed=5), DenseFlipout(2, seed=6)])
    prebuilt = keras.Sequential([keras.Input((4,)), DenseFlipout(3, seed=5), DenseFlipout(2, seed=6)])
    unc.mc_predict(unbuilt, x, num_samples=4)
    unc.mc_predict(prebuilt, x, num_samples=4)
    for a, b in zip(unbuilt.layers, prebuilt.layers):
        np.testing.assert_array_equal(a.rng_state.numpy(), b.rng_state.numpy())
    assert [int(layer.rng_state.numpy()[1]) for layer in unbuilt.layers] == [4, 4]  # one advance per draw
    assert not any(layer.use_posterior_mean for layer in unbuilt.layers)  # the mode is restored


def test_mc_predict_on_fresh_models_in_a_loop_never_warns_about_retracing():
    """Cross-validation / seeds: one fresh model after another traces one sampler each, which
    TensorFlow must not report as "creating @tf.function repeatedly in a loop"."""
    import logging

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = tf.get_logger()
    logger.addHandler(handler)
    try:
        x = np.ones((3, 2), "float32")
        for seed in range(10):
            model = keras.Sequential([keras.Input((2,)), DenseFlipout(2, seed=seed)])
            unc.mc_predict(model, x, num_samples=2)
    finally:
        logger.removeHandler(handler)
    retracing = [r.getMessage() for r in records if "retracing" in r.getMessage()]
    assert retracing == []


def test_regression_uncertainty_is_a_regression_predictive_and_the_old_name_warns(rng):
    mu, sd = rng.normal(size=(4, 3)), rng.uniform(0.5, 1.0, (4, 3))
    u = unc.regression_uncertainty(mu, sd)
    assert isinstance(u, unc.RegressionPredictive) and unc.RegressionPredictive is heads.RegressionPredictive
    np.testing.assert_array_equal(u.samples, np.stack([mu, sd], axis=-1))
    lo, hi = u.interval(0.9)
    np.testing.assert_allclose((lo, hi), unc.prediction_interval(mu, sd, level=0.9), rtol=1e-12)
    with pytest.warns(DeprecationWarning, match=r"RegressionUncertainty is deprecated.*RegressionPredictive"):
        assert unc.RegressionUncertainty is unc.RegressionPredictive
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        unc.nope  # noqa: B018


def _scipy_mixture_log_prob(y, mu, sd, df=None):
    comp = stats.norm.logpdf(y[None], mu, sd) if df is None else stats.t.logpdf(y[None], df, mu, sd)
    return special.logsumexp(comp, axis=0) - np.log(len(mu))


@pytest.mark.parametrize("student", [False, True])
def test_regression_predictive_log_prob_matches_scipy(rng, student):
    mu, sd = rng.normal(size=(16, 5, 2)), rng.uniform(0.2, 2.0, (16, 5, 2))
    df = rng.uniform(1.5, 10.0, (16, 5, 2)) if student else None
    draws = np.stack([mu, sd] + ([df] if student else []), axis=-1)
    p = heads.RegressionPredictive.from_draws(draws)
    y = rng.normal(scale=3.0, size=(5, 2))
    got = p.log_prob(y)
    assert got.shape == (5, 2) and got.dtype == np.float64
    np.testing.assert_allclose(got, _scipy_mixture_log_prob(y, mu, sd, df), rtol=1e-10)
    # a tf.Tensor target gives the same values
    np.testing.assert_allclose(p.log_prob(tf.constant(y)), got, rtol=1e-12)


def test_regression_predictive_log_prob_is_stable_where_a_naive_sum_underflows(rng):
    mu, sd = rng.normal(size=(8, 4)), rng.uniform(0.01, 0.05, (8, 4))
    p = unc.regression_uncertainty(mu, sd)
    y = np.array([60.0, -80.0, 1e3, 0.0])  # thousands of scales from every draw (except the last)
    with np.errstate(under="ignore", divide="ignore"):
        naive = np.log(np.mean(stats.norm.pdf(y[None], mu, sd), axis=0))
    assert np.all(np.isneginf(naive[:3]))  # every density underflows to 0
    got = p.log_prob(y)
    assert np.all(np.isfinite(got)) and np.all(got[:3] < -1e5)
    np.testing.assert_allclose(got, _scipy_mixture_log_prob(y, mu, sd), rtol=1e-12)
    # one draw: the plain Gaussian log density
    one = unc.regression_uncertainty(mu[:1], sd[:1])
    np.testing.assert_allclose(one.log_prob(y), stats.norm.logpdf(y, mu[0], sd[0]), rtol=1e-12)


def test_regression_predictive_log_prob_from_mc_predict_and_errors():
    head = heads.GaussianHead(units=1)
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(2, seed=0, init_scale=0.3), head])
    x = np.random.default_rng(0).normal(size=(7, 3)).astype("float32")
    p = unc.mc_predict(model, x, num_samples=12)
    y = np.linspace(-1, 1, 7)[:, None]
    comps = head.distribution(p.samples).log_prob(y[None]).numpy()[..., 0].astype(np.float64)
    expected = special.logsumexp(comps, axis=0) - np.log(12)
    np.testing.assert_allclose(p.log_prob(y)[:, 0], expected, rtol=1e-5)
    with pytest.raises(
        ValueError, match=r"RegressionPredictive.log_prob: `y` must have the shape.*\(7, 1\).*\(7,\)"
    ):
        p.log_prob(y[:, 0])
    bad = heads.RegressionPredictive.from_draws(np.array([[[0.0, 0.0]]]))
    with pytest.raises(ValueError, match=r"RegressionPredictive.log_prob: every scale must be > 0"):
        bad.log_prob([0.0])

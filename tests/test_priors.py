"""Priors: validation, serialization, analytic and Monte Carlo KL."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

from bayesflip import priors
from bayesflip import random as rnd
from bayesflip._tfp import tfd
from bayesflip.layers import DenseFlipout
from bayesflip.posteriors import _gaussian as posteriors_gaussian


@pytest.mark.parametrize("prior", [priors.Normal(0.5, 2.0), priors.ScaleMixtureNormal(0.25, 1.5, 0.01)])
def test_prior_serialization_round_trip(prior):
    config = keras.saving.serialize_keras_object(prior)
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert restored == prior and restored is not prior
    assert priors.get(config) == prior


def test_prior_get():
    assert priors.get(None) == priors.Normal(0.0, 1.0)
    assert isinstance(priors.get("scale_mixture_normal"), priors.ScaleMixtureNormal)
    with pytest.raises(ValueError, match="Unknown prior 'laplace-ish'"):
        priors.get("laplace-ish")
    with pytest.raises(TypeError, match="must be a bayesflip.priors.Prior"):
        priors.get(3)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: priors.Normal(0.0, 0.0), "Normal prior: `scale` must be a positive finite number, got 0.0"),
        (lambda: priors.Normal(0.0, -1.0), "`scale` must be a positive"),
        (lambda: priors.Normal(float("nan"), 1.0), "`loc` must be a finite number"),
        (lambda: priors.ScaleMixtureNormal(1.5, 1.0, 0.1), r"`pi` must lie in \(0, 1\)"),
        (lambda: priors.ScaleMixtureNormal(0.5, 1.0, 0.0), "`scale_2` must be a positive"),
    ],
)
def test_invalid_prior_parameters(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_invalid_prior_type():
    # the one wording and error type of bayesflip._checks
    with pytest.raises(ValueError, match="Normal prior: `scale` must be a positive finite number, got 'big'"):
        priors.Normal(0.0, "big")


def _layer_with_posterior(prior, rng, shape=(3, 2)):
    layer = DenseFlipout(shape[1], prior=prior, use_bias=False, seed=0)
    layer(np.ones((1, shape[0]), "float32"))
    post = layer.kernel_posterior
    post.loc.assign(rng.normal(size=shape).astype("float32"))
    post.rho.assign(rng.normal(-1.0, 0.5, size=shape).astype("float32"))
    return layer, post


def test_normal_kl_matches_tfp_and_numpy(rng):
    prior = priors.Normal(0.3, 1.7)
    layer, post = _layer_with_posterior(prior, rng)
    mu, sigma = post.loc.numpy(), post.scale().numpy()
    numpy_kl = np.sum(np.log(1.7 / sigma) + (sigma**2 + (mu - 0.3) ** 2) / (2 * 1.7**2) - 0.5)
    tfp_kl = tf.reduce_sum(tfd.kl_divergence(tfd.Normal(mu, sigma), tfd.Normal(0.3, 1.7))).numpy()
    ours = post.kl_divergence().numpy()
    np.testing.assert_allclose(ours, numpy_kl, rtol=1e-5)
    np.testing.assert_allclose(ours, tfp_kl, rtol=1e-5)
    # the layer's add_loss term is kl_weight * KL
    layer.kl_weight = 0.25
    layer(np.ones((1, 3), "float32"))
    np.testing.assert_allclose(float(layer.losses[0]), 0.25 * numpy_kl, rtol=1e-5)


def test_normal_kl_gradients_match_tfp(rng):
    prior = priors.Normal(-0.2, 0.8)
    _, post = _layer_with_posterior(prior, rng, shape=(4, 3))
    variables = [post.loc, post.rho]
    with tf.GradientTape(persistent=True) as tape:
        ours = post.kl_divergence()
        reference = tf.reduce_sum(tfd.kl_divergence(post.distribution(), tfd.Normal(-0.2, 0.8)))
    for ours_grad, ref_grad in zip(tape.gradient(ours, variables), tape.gradient(reference, variables)):
        np.testing.assert_allclose(ours_grad.numpy(), ref_grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.fixture
def small_fused_threshold(monkeypatch):
    """The fused path from 2**16 entries, so that its tests run on weights of a test's size."""
    monkeypatch.setattr(posteriors_gaussian, "FUSED_MIN_SIZE", 2**16)


def test_fused_draw_and_kl_match_tfp_values_and_gradients(rng, small_fused_threshold):
    shape = (300, 256)  # past FUSED_MIN_SIZE
    assert np.prod(shape) >= posteriors_gaussian.FUSED_MIN_SIZE
    prior = priors.Normal(-0.2, 0.8)
    _, post = _layer_with_posterior(prior, rng, shape=shape)
    seed = tf.constant([5, 9], tf.int64)
    upstream = tf.constant(rng.normal(size=shape).astype("float32"))
    variables = [post.loc, post.rho]
    with tf.GradientTape(persistent=True) as tape:
        delta, kl = post.sample_delta_and_kl(seed)
        fused = tf.reduce_sum(delta * upstream) + 0.7 * kl
        q = post.distribution()
        ref_delta = q.scale * rnd.standard_normal(shape, seed)
        ref_kl = tf.reduce_sum(tfd.kl_divergence(q, tfd.Normal(-0.2, 0.8)))
        reference = tf.reduce_sum(ref_delta * upstream) + 0.7 * ref_kl
        # the separate ops the core uses otherwise
        scale = post.noise_scale()
        unfused = tf.reduce_sum(post.sample_delta(seed, scale) * upstream) + 0.7 * post.kl_divergence(
            scale=scale
        )
    np.testing.assert_array_equal(delta.numpy(), ref_delta.numpy())
    np.testing.assert_array_equal(kl.numpy(), post.kl_divergence().numpy())
    np.testing.assert_allclose(kl.numpy(), ref_kl.numpy(), rtol=1e-5)
    grads = tape.gradient(fused, variables)
    for ours, ref in zip(grads, tape.gradient(reference, variables)):
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-4, atol=1e-6)
    for ours, separate in zip(grads, tape.gradient(unfused, variables)):  # one XLA loop, rounded differently
        np.testing.assert_allclose(ours.numpy(), separate.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rows, fused", [(1023, False), (1024, True)])
def test_weights_draw_fused_from_FUSED_MIN_SIZE_entries(rng, rows, fused):
    assert posteriors_gaussian.FUSED_MIN_SIZE == 1024 * 1024
    _, post = _layer_with_posterior(priors.Normal(0.0, 1.0), rng, shape=(rows, 1024))
    assert (post.sample_delta_and_kl(tf.constant([1, 2], tf.int64)) is not None) == fused


@pytest.mark.parametrize("prior", [priors.ScaleMixtureNormal(0.5, 1.0, 0.1), priors.Laplace(0.0, 1.0)])
def test_priors_without_a_closed_form_kl_gradient_draw_unfused(rng, prior, small_fused_threshold):
    _, post = _layer_with_posterior(prior, rng, shape=(300, 256))
    assert post.sample_delta_and_kl(tf.constant([1, 2], tf.int64)) is None


def test_normal_kl_gradient_formula_is_the_autodiff_of_the_closed_form(rng):
    prior = priors.Normal(0.4, 1.3)
    loc = tf.constant(rng.normal(size=(5, 2)).astype("float32"))
    scale = tf.constant(rng.uniform(0.05, 2.0, size=(5, 2)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch([loc, scale])
        value = tf.reduce_sum(tfd.kl_divergence(tfd.Normal(loc, scale), tfd.Normal(0.4, 1.3)))
    d_loc, d_scale = tape.gradient(value, [loc, scale])
    ours = prior.kl_from_normal_gradient(loc, scale, tf.constant(2.5))
    np.testing.assert_allclose(ours[0].numpy(), 2.5 * d_loc.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours[1].numpy(), 2.5 * d_scale.numpy(), rtol=1e-5, atol=1e-7)


def test_scale_mixture_monte_carlo_kl_is_unbiased(rng):
    prior = priors.ScaleMixtureNormal(0.5, 1.0, 0.1)
    _, post = _layer_with_posterior(prior, rng, shape=(2, 1))
    mu, sigma = post.loc.numpy().ravel(), post.scale().numpy().ravel()

    def exact_kl(m, s):  # numerical integration of E_q[log q - log p]
        def integrand(w):
            q = stats.norm.pdf(w, m, s)
            p = 0.5 * stats.norm.pdf(w, 0, 1.0) + 0.5 * stats.norm.pdf(w, 0, 0.1)
            return q * (np.log(q) - np.log(p)) if q > 0 else 0.0

        return integrate.quad(integrand, m - 12 * s, m + 12 * s, limit=200)[0]

    reference = sum(exact_kl(m, s) for m, s in zip(mu, sigma))
    estimate = tf.function(lambda seed: post.kl_divergence(seed=seed))
    draws = np.array([estimate(tf.constant([i, 7], tf.int64)).numpy() for i in range(4000)])
    stderr = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - reference) < 4 * stderr, (draws.mean(), reference, stderr)
    assert draws.std() > 0  # it is a Monte Carlo estimate, not a closed form


def test_get_names_its_caller():
    with pytest.raises(ValueError, match=r"^priors\.get: invalid `prior`: Unknown prior 'x'"):
        priors.get("x")
    with pytest.raises(TypeError, match=r"^DenseFlipout 'd': invalid `prior`: a prior must be"):
        priors.get(3, caller="DenseFlipout 'd'")


# Configs as written when the classes' __module__ was "bayesflip.priors" (serialize_keras_object's
# "module"); today it is their defining private module, and Keras loads both by the registered name.
SAVED_CONFIGS = [
    ("Normal", {"loc": 0.5, "scale": 2.0}, priors.Normal(0.5, 2.0)),
    (
        "ScaleMixtureNormal",
        {"pi": 0.25, "scale_1": 1.5, "scale_2": 0.01},
        priors.ScaleMixtureNormal(0.25, 1.5, 0.01),
    ),
    (
        "TFPPrior",
        {"distribution": "Cauchy", "loc": 0.0, "scale": 0.5},
        priors.TFPPrior("Cauchy", loc=0.0, scale=0.5),
    ),
    ("Laplace", {"loc": 0.1, "scale": 0.3}, priors.Laplace(0.1, 0.3)),
    ("StudentT", {"df": 4.0, "loc": 0.0, "scale": 2.0}, priors.StudentT(4.0, 0.0, 2.0)),
    (
        "LearnableNormal",
        {"loc": 0.0, "scale": 0.5, "learn_loc": True},
        priors.LearnableNormal(0.0, 0.5, True),
    ),
    ("CenteredNormal", {"scale": 0.3}, priors.CenteredNormal(0.3)),
]


@pytest.mark.parametrize("class_name, config, expected", SAVED_CONFIGS, ids=[c[0] for c in SAVED_CONFIGS])
def test_configs_with_module_bayesflip_priors_load(class_name, config, expected):
    saved = {
        "module": "bayesflip.priors",
        "class_name": class_name,
        "config": dict(config),
        "registered_name": f"bayesflip>{class_name}",
    }
    written = keras.saving.serialize_keras_object(expected)
    assert written["module"].startswith("bayesflip.priors.")  # the defining module: getsource works
    assert {k: v for k, v in written.items() if k != "module"} == {
        k: v for k, v in saved.items() if k != "module"
    }
    for config in (saved, written):
        restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
        assert type(restored) is type(expected) and restored == expected
        assert priors.get(config) == expected


def test_model_with_every_prior_round_trips_through_keras_file(tmp_path):
    layers = [DenseFlipout(2, prior=p, seed=i, name=f"d{i}") for i, (_, _, p) in enumerate(SAVED_CONFIGS)]
    model = keras.Sequential([keras.Input((3,))] + layers)
    x = np.ones((2, 3), "float32")
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert [layer.prior for layer in restored.layers] == [p for _, _, p in SAVED_CONFIGS]
    np.testing.assert_array_equal(restored(x, training=False), model(x, training=False))

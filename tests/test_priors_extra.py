"""TFPPrior / Laplace / StudentT (Monte Carlo KL) and the learnable (empirical-Bayes) prior."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

from bayesflip import priors
from bayesflip.layers import Conv1DFlipout, DenseFlipout
from bayesflip.layers._variational import analytic_kl_available
from tests.layers.helpers import check_variational_layer

NEW_PRIORS = [
    priors.TFPPrior("Cauchy", loc=0.0, scale=0.5),
    priors.Laplace(0.1, 0.3),
    priors.StudentT(4.0, 0.0, 2.0),
    priors.LearnableNormal(0.0, 0.5, learn_loc=True),
]


@pytest.mark.parametrize("prior", NEW_PRIORS)
def test_serialization_round_trip(prior):
    config = keras.saving.serialize_keras_object(prior)
    restored = keras.saving.deserialize_keras_object(config, safe_mode=True)
    assert restored == prior and restored is not prior
    assert priors.get(config) == prior


def test_names_and_analytic_kl_dispatch():
    assert priors.get("laplace") == priors.Laplace()
    assert priors.get("student_t") == priors.StudentT()
    assert priors.get("learnable_normal") == priors.LearnableNormal()
    # one wrapper class, two families: the analytic-KL lookup follows the family
    assert analytic_kl_available(priors.TFPPrior("Normal", loc=0.0, scale=1.0))
    assert not analytic_kl_available(priors.TFPPrior("Laplace", loc=0.0, scale=1.0))
    assert analytic_kl_available(priors.LearnableNormal())


def _posterior(prior, seed=0, shape=(3, 2)):
    layer = DenseFlipout(shape[1], prior=prior, use_bias=False, seed=0)
    layer(np.ones((1, shape[0]), "float32"))
    post = layer.kernel_posterior
    rng = np.random.default_rng(seed)
    post.loc.assign(rng.normal(size=shape).astype("float32"))
    post.rho.assign(rng.normal(-1.0, 0.5, size=shape).astype("float32"))
    return layer, post


def test_tfp_normal_matches_builtin_normal_prior():
    _, a = _posterior(priors.TFPPrior("Normal", loc=0.2, scale=1.5))
    _, b = _posterior(priors.Normal(0.2, 1.5))
    np.testing.assert_allclose(a.kl_divergence().numpy(), b.kl_divergence().numpy(), rtol=1e-5)


def _mc_kl_draws(post, n=2000):
    estimate = tf.function(lambda seed: post.kl_divergence(seed=seed))
    return np.array([estimate(tf.constant([i, 11], tf.int64)).numpy() for i in range(n)])


def test_laplace_monte_carlo_kl_is_unbiased():
    b = 0.3
    _, post = _posterior(priors.Laplace(0.1, b))
    mu, sigma = post.loc.numpy().ravel() - 0.1, post.scale().numpy().ravel()
    # closed form: -H[q] + log(2b) + E|w - loc| / b with E|N(m, s²)| folded-normal mean
    folded = sigma * np.sqrt(2 / np.pi) * np.exp(-(mu**2) / (2 * sigma**2))
    folded += mu * (1 - 2 * stats.norm.cdf(-mu / sigma))
    reference = np.sum(-0.5 * np.log(2 * np.pi * np.e * sigma**2) + np.log(2 * b) + folded / b)
    draws = _mc_kl_draws(post)
    stderr = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - reference) < 4 * stderr, (draws.mean(), reference, stderr)
    assert draws.std() > 0


def test_student_t_monte_carlo_kl_is_unbiased():
    _, post = _posterior(priors.StudentT(4.0, 0.0, 2.0), shape=(2, 2))
    mu, sigma = post.loc.numpy().ravel(), post.scale().numpy().ravel()

    def exact(m, s):
        def f(w):
            return stats.norm.pdf(w, m, s) * (stats.norm.logpdf(w, m, s) - stats.t.logpdf(w, 4.0, 0.0, 2.0))

        return integrate.quad(f, m - 12 * s, m + 12 * s, limit=200)[0]

    reference = sum(exact(m, s) for m, s in zip(mu, sigma))
    draws = _mc_kl_draws(post)
    stderr = draws.std() / np.sqrt(len(draws))
    assert abs(draws.mean() - reference) < 4 * stderr, (draws.mean(), reference, stderr)


@pytest.mark.parametrize(
    "factory",
    [
        lambda **kw: Conv1DFlipout(2, 3, prior=priors.TFPPrior("Cauchy", loc=0.0, scale=1.0), **kw),
        lambda **kw: DenseFlipout(2, prior=priors.LearnableNormal(learn_loc=True), bayesian_bias=True, **kw),
    ],
)
def test_layers_with_new_priors_pass_shared_checks(factory):
    check_variational_layer(factory, (3, 4, 2))


def test_learnable_prior_converges_to_empirical_bayes_optimum():
    """For a fixed posterior, KL(q ‖ N(m, s²)) is minimised by m = mean(μ),
    s² = mean((μ - m)² + σ²); training only the prior variables reaches it."""
    layer, post = _posterior(priors.LearnableNormal(0.0, 1.0, learn_loc=True), seed=3, shape=(6, 5))
    mu, sigma = post.loc.numpy(), post.scale().numpy()
    m_ref = mu.mean()
    s_ref = np.sqrt(np.mean((mu - m_ref) ** 2 + sigma**2))
    prior_vars = [w for w in layer.trainable_weights if "prior" in w.path]
    assert sorted(v.path.split("/")[-1] for v in prior_vars) == ["kernel_prior_loc", "kernel_prior_rho"]
    opt = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            kl = layer.kl_divergence()
        opt.apply_gradients(zip(tape.gradient(kl, prior_vars), prior_vars))
        return kl

    for _ in range(600):
        step()
    bound = post.prior
    np.testing.assert_allclose(float(bound.loc_variable.numpy()), m_ref, atol=2e-3)
    np.testing.assert_allclose(float(bound.scale().numpy()), s_ref, rtol=2e-3)


def test_learnable_prior_instance_shared_by_layers_gets_separate_variables():
    prior = priors.LearnableNormal(scale=0.7)
    a, b = DenseFlipout(2, prior=prior, seed=0), DenseFlipout(2, prior=prior, seed=1)
    a(np.ones((1, 3), "float32"))
    b(np.ones((1, 3), "float32"))
    a_rho = a.kernel_posterior.prior.rho
    a_rho.assign(2.0)
    assert float(b.kernel_posterior.prior.rho.numpy()) != 2.0
    np.testing.assert_allclose(float(b.kernel_posterior.prior.scale().numpy()), 0.7, rtol=1e-5)


@pytest.mark.parametrize(
    "factory,err,match",
    [
        (lambda: priors.TFPPrior("NoSuchDistribution"), ValueError, "must name a class"),
        (lambda: priors.TFPPrior(3), TypeError, "class name"),
        (lambda: priors.TFPPrior("Laplace", loc=0.0, scale=-1.0), ValueError, "cannot build"),
        (
            lambda: priors.TFPPrior("Laplace", loc="a", scale=1.0),
            ValueError,
            "TFPPrior: `loc` must be a finite number",
        ),
        (lambda: priors.TFPPrior("Gamma", concentration=2.0, rate=1.0), ValueError, "real line"),
        (lambda: priors.TFPPrior("Dirichlet", concentration=1.0), ValueError, "cannot build|univariate"),
        (lambda: priors.Laplace(0.0, 0.0), ValueError, "Laplace prior: `scale`"),
        (lambda: priors.StudentT(-1.0), ValueError, "StudentT prior: `df`"),
        (lambda: priors.LearnableNormal(scale=0.0), ValueError, "LearnableNormal prior: `scale`"),
        (lambda: priors.LearnableNormal(learn_loc=1), TypeError, "learn_loc"),
    ],
)
def test_bad_prior_arguments(factory, err, match):
    with pytest.raises(err, match=match):
        factory()

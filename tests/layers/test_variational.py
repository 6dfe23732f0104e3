"""The variational core itself, against NumPy: ``GaussianPosterior`` and ``sample_linear``.

The layers' tests check each layer end to end; these check the core's pieces
directly on a minimal layer (a matmul), so that an error in the core shows here
first and is not masked by a layer.
"""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

from bayesflip import priors
from bayesflip import random as rnd
from bayesflip.layers import VariationalLayer, _variational
from bayesflip.posteriors import GaussianPosterior
from bayesflip.posteriors import _gaussian as posteriors_gaussian


class _Linear(VariationalLayer):
    """The smallest client of the core: ``y = x W + b`` through ``sample_linear``."""

    def __init__(self, units, bayesian_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.bayesian_bias = units, bayesian_bias

    def build(self, input_shape):
        self.kernel_posterior = self.add_posterior("kernel", (input_shape[-1], self.units), "random_normal")
        if self.bayesian_bias:
            self.bias = self.add_posterior("bias", (self.units,), "random_normal")
        else:
            self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="random_normal")
        self.build_variational_state()

    def call(self, x):
        return self.sample_linear(tf.matmul, self.cast_inputs(x), self.kernel_posterior, self.bias)


def _np(t):
    return keras.ops.convert_to_numpy(t)


def _softplus(x):
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


def _layer(estimator, bayesian_bias=True, init_scale=0.2, prior=None, x_shape=(6, 4), units=3):
    keras.utils.set_random_seed(1)
    layer = _Linear(
        units, bayesian_bias, estimator=estimator, init_scale=init_scale, seed=7, kl_weight=0.5, prior=prior
    )
    layer.build(x_shape)
    # spread the posterior scales so an error in which scale goes where shows
    rng = np.random.default_rng(3)
    for post in layer.posteriors:
        post.rho.assign(rng.normal(-1.5, 0.5, size=post.shape).astype("float32"))
    return layer


# ------------------------------------------------------------------ posterior
def test_gaussian_posterior_scale_mean_and_initial_scale_match_numpy():
    layer = _Linear(3, estimator="flipout", init_scale=0.05, min_scale=1e-3, seed=0)
    layer.build((2, 4))
    post = layer.kernel_posterior
    assert isinstance(post, GaussianPosterior)
    assert [v.name for v in (post.loc, post.rho)] == ["kernel_loc", "kernel_rho"]
    np.testing.assert_allclose(_np(post.scale()), np.full((4, 3), 0.05), rtol=1e-5)
    rho = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    post.rho.assign(rho)
    np.testing.assert_allclose(_np(post.scale()), 1e-3 + _softplus(rho.astype(np.float64)), rtol=1e-6)
    np.testing.assert_array_equal(_np(post.mean()), _np(post.loc))
    assert post.mean().dtype == tf.float32 and post.scale().dtype == tf.float32


def test_gaussian_posterior_analytic_kl_matches_the_closed_form():
    layer = _layer("flipout", prior=priors.Normal(0.5, 2.0))
    post = layer.kernel_posterior
    mu, sigma = _np(post.mean()).astype(np.float64), _np(post.scale()).astype(np.float64)
    expected = np.sum(np.log(2.0 / sigma) + (sigma**2 + (mu - 0.5) ** 2) / (2 * 2.0**2) - 0.5)
    np.testing.assert_allclose(float(post.kl_divergence()), expected, rtol=1e-5)


def test_gaussian_posterior_monte_carlo_kl_is_log_q_minus_log_p_at_the_sample():
    layer = _layer("flipout", prior=priors.Laplace(0.0, 0.7))
    assert not _variational.analytic_kl_available(layer.prior)
    post = layer.kernel_posterior
    mu, sigma = _np(post.mean()).astype(np.float64), _np(post.scale()).astype(np.float64)
    w = mu + sigma * np.random.default_rng(5).normal(size=mu.shape)
    log_q = -0.5 * ((w - mu) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
    log_p = -np.abs(w) / 0.7 - np.log(2 * 0.7)
    np.testing.assert_allclose(
        float(post.kl_divergence(sample=tf.constant(w, tf.float32))), np.sum(log_q - log_p), rtol=1e-4
    )
    with pytest.raises(ValueError, match="needs a posterior sample or a seed"):
        post.kl_divergence()


# ------------------------------------------------------------- sample_linear
def _reference(layer, x, pert):
    """``sample_linear``'s output recomputed in NumPy from the call's draw."""
    k, b = layer.kernel_posterior, layer.bias
    loc, b_loc = _np(k.mean()).astype(np.float64), _np(b.mean()).astype(np.float64)
    x = x.astype(np.float64)
    if layer.estimator == "local":
        var = (x**2) @ _np(pert.scales["kernel"]).astype(np.float64) ** 2 + _np(pert.scales["bias"]) ** 2
        eta = _np(rnd.standard_normal((x.shape[0], layer.units), pert.seeds["kernel"])).astype(np.float64)
        return x @ loc + np.sqrt(var) * eta + b_loc
    dw, db = _np(pert.deltas["kernel"]).astype(np.float64), _np(pert.deltas["bias"]).astype(np.float64)
    if layer.estimator == "shared":
        return x @ (loc + dw) + b_loc + db
    s, r = (_np(t).astype(np.float64) for t in pert.signs)
    assert set(np.unique(s)) | set(np.unique(r)) <= {-1.0, 1.0}
    return x @ loc + (((x * s) @ dw) + db) * r + b_loc


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_sample_linear_matches_numpy_for_the_calls_draw(estimator):
    layer = _layer(estimator)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    state = _np(layer.rng_state)
    y = _np(layer(x))
    after = _np(layer.rng_state)
    assert after.tolist() == [state[0], state[1] + 1], "one call advances the RNG exactly once"
    layer.rng_state.assign(state)
    pert = layer.draw_perturbation(6, [4, 3])
    np.testing.assert_allclose(y, _reference(layer, x, pert), rtol=1e-5, atol=1e-6)
    # the KL of the call is added once, weighted
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]), 0.5 * float(layer.kl_divergence()), rtol=1e-5)


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_posterior_mean_mode_is_exactly_the_mean_op_and_does_not_draw(estimator):
    layer = _layer(estimator)
    x = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    layer.use_posterior_mean = True
    state = _np(layer.rng_state)
    y = _np(layer(x))
    np.testing.assert_array_equal(_np(layer.rng_state), state)
    exact = tf.matmul(x, layer.kernel_posterior.mean()) + layer.bias.mean()
    np.testing.assert_array_equal(y, _np(exact))
    np.testing.assert_allclose(
        y, x.astype(np.float64) @ _np(layer.kernel_posterior.loc) + _np(layer.bias.loc), rtol=1e-5, atol=1e-6
    )
    assert len(layer.losses) == 1  # the KL is still part of the loss


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_sample_linear_moments_match_the_closed_form(estimator):
    """Every estimator's pre-activation has mean ``x μ + b`` and variance ``x² σ² + σ_b²``."""
    layer = _layer(estimator, init_scale=0.3)
    x1 = np.random.default_rng(0).normal(size=(1, 4)).astype("float32")
    batch, calls = 16, 1500
    x = np.repeat(x1, batch, axis=0)
    fn = tf.function(layer.call)
    draws = np.stack([_np(fn(x)) for _ in range(calls)]).astype(np.float64)  # (calls, batch, units)
    k, b = layer.kernel_posterior, layer.bias
    mean = (x1.astype(np.float64) @ _np(k.mean()) + _np(b.mean()))[0]
    var = ((x1.astype(np.float64) ** 2) @ _np(k.scale()) ** 2 + _np(b.scale()) ** 2)[0]
    # Sample sizes: the examples of a flipout or local batch are uncorrelated (all
    # count for the mean), a shared batch is one draw; only local examples are
    # independent, so the variance of the others is judged on one example a call.
    n_mean = calls if estimator == "shared" else calls * batch
    n_var = calls * batch if estimator == "local" else calls
    flat = draws.reshape(-1, draws.shape[-1])
    np.testing.assert_array_less(np.abs(flat.mean(0) - mean), 5 * np.sqrt(var / n_mean))
    sample_var = flat.var(0) if estimator == "local" else draws[:, 0].var(0)
    np.testing.assert_allclose(sample_var, var, rtol=5 * np.sqrt(2 / n_var))


def test_flipout_examples_of_a_batch_get_different_perturbations_and_shared_ones_do_not():
    x = np.repeat(np.random.default_rng(0).normal(size=(1, 4)).astype("float32"), 8, axis=0)
    flip, shared = _np(_layer("flipout")(x)), _np(_layer("shared")(x))
    assert len({tuple(row) for row in np.round(flip, 6)}) > 1
    np.testing.assert_allclose(shared, np.repeat(shared[:1], 8, axis=0), rtol=1e-6)


def test_monte_carlo_kl_uses_the_forward_pass_weight_sample():
    layer = _layer("shared", prior=priors.Laplace(0.0, 0.7))
    x = np.ones((2, 4), "float32")
    state = _np(layer.rng_state)
    layer(x)
    kl = float(layer.losses[0]) / 0.5
    layer.rng_state.assign(state)
    pert = layer.draw_perturbation(2, [4, 3])
    expected = sum(float(p.kl_divergence(sample=pert.samples[p.name])) for p in layer.posteriors)
    np.testing.assert_allclose(kl, expected, rtol=1e-5)
    np.testing.assert_allclose(
        _np(pert.samples["kernel"]),
        _np(layer.kernel_posterior.mean()) + _np(pert.deltas["kernel"]),
        rtol=1e-6,
    )


def test_linear_sample_refuses_the_local_estimator():
    layer = _layer("local")
    pert = layer.draw_perturbation(2, [4, 3])
    with pytest.raises(ValueError, match="local estimator"):
        layer.linear_sample(pert, layer.kernel_posterior)


# --------------------------------------------------------------- KL cache leak
def test_analytic_kl_cache_stays_bounded_when_layers_with_bound_priors_are_deleted():
    """Bound priors (``LearnableNormal``) hash by identity; the cache must not keep them alive."""
    from bayesflip.layers import DenseFlipout

    gc.collect()
    before = len(posteriors_gaussian._ANALYTIC_KL_CACHE)
    for _ in range(1000):
        layer = DenseFlipout(2, prior=priors.LearnableNormal(), seed=0)
        layer.build((None, 3))
        assert _variational.analytic_kl_available(layer.kernel_posterior.prior)
        del layer
    gc.collect()
    assert len(posteriors_gaussian._ANALYTIC_KL_CACHE) <= before + 2


def test_fixed_monte_carlo_kl_seeds_survive_a_reload(tmp_path):
    """With ``seed=None`` the posterior-mean mode's Monte Carlo KL and ``kl_divergence(model)``
    are seeded from the saved RNG state, so a reloaded model gives the same values."""
    import bayesflip
    from bayesflip.layers import DenseFlipout

    model = keras.Sequential(
        [keras.Input((4,)), DenseFlipout(3, prior=priors.ScaleMixtureNormal(), kl_weight=1.0)]
    )
    x = np.ones((2, 4), "float32")
    model(x)
    assert model.layers[0].posteriors[0].kl_needs_sample  # a Monte Carlo KL
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.layers[0].seed is None
    kl = float(bayesflip.elbo.kl_divergence(model))
    assert float(bayesflip.elbo.kl_divergence(loaded)) == kl
    assert float(bayesflip.elbo.kl_divergence(model)) == kl  # the RNG state did not advance
    with bayesflip.posterior_mean(model), bayesflip.posterior_mean(loaded):
        model(x)
        loaded(x)
        assert float(model.losses[0]) == float(loaded.losses[0])

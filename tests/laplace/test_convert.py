"""A fitted Laplace posterior served by bayesflip layers: exact scales and factors, NN = GLM for a linear model,
and the round trip fit → layers → .keras save/load → the same MC predictive."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip.conformal import ConformalClassifier
from bayesflip.heads import GaussianHead, RegressionPredictive
from bayesflip.laplace import fit_laplace
from bayesflip.posteriors import MatrixNormal, MeanFieldGaussian
from bayesflip.uncertainty import mc_predict


def test_diag_becomes_mean_field_with_the_posterior_std(small_mlp):
    model, x, y = small_mlp
    la = fit_laplace(model, x, y, subset_of_weights="all", hessian_structure="diag", verbose=0)
    la.optimize_prior_precision(per_layer=True)
    bnn = la.to_bayesian_model()
    variances = la.curvature.variances(la.prior_precision, 1.0)
    for i, layer in enumerate(bnn.layers):
        assert isinstance(layer.posterior, MeanFieldGaussian) and layer.estimator == "flipout"
        np.testing.assert_allclose(layer.kernel_posterior.scale() ** 2, variances[2 * i], rtol=1e-5)
        np.testing.assert_allclose(layer.bias.scale() ** 2, variances[2 * i + 1], rtol=1e-5)
        np.testing.assert_array_equal(layer.kernel_posterior.loc.numpy(), model.layers[i].kernel.numpy())
        assert layer.prior.scale == pytest.approx(la.prior_precision[i] ** -0.5)
    assert bnn.layers[0].kl_weight == pytest.approx(1 / len(x))


@pytest.mark.parametrize("structure", ["diag", "kron"])
def test_all_layer_glm_covariance_is_the_small_posterior_limit_of_the_layers(small_mlp, structure):
    """For a tight posterior the network is linear in its weight noise: the layers' logit variance is the GLM's."""
    model, x, y = small_mlp
    la = fit_laplace(
        model, x, y, subset_of_weights="all", hessian_structure=structure, prior_precision=1e4, verbose=0
    )
    _, cov = la.glm_moments(x[:4])
    logits = mc_predict(la.to_bayesian_model(), x[:4], num_samples=1500, return_samples=True)
    np.testing.assert_allclose(logits.var(0), np.diagonal(cov, 0, 1, 2), rtol=0.15)


def test_all_layer_diag_of_a_conv_net(rng):
    x = rng.normal(size=(10, 5, 5, 1)).astype("float32")
    y = rng.integers(0, 2, size=10)
    model = keras.Sequential(
        [keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
         keras.layers.Flatten(), keras.layers.Dense(2, name="out")]
    )  # fmt: skip
    la = fit_laplace(
        model, x, y, likelihood="categorical", subset_of_weights="all", hessian_structure="diag", verbose=0
    )
    assert la.groups == ["conv", "out"] and la.curvature.h[0].shape == (3, 3, 1, 2)
    bnn = la.to_bayesian_model()
    conv = bnn.layers[0]
    assert type(conv).__name__ == "Conv2DFlipout"
    var = la.curvature.variances(la.prior_precision, 1.0)[0]
    np.testing.assert_allclose(conv.kernel_posterior.scale() ** 2, var, rtol=1e-5)
    assert mc_predict(bnn, x[:3], num_samples=4, from_logits=True).shape == (3, 2)


def test_kron_becomes_matrix_normal_with_the_kfac_covariance(softmax_linear):
    model, x, y = softmax_linear
    la = fit_laplace(model, x, y, prior_precision=0.7, verbose=0)
    layer = la.to_bayesian_model().layers[-1]
    assert isinstance(layer.posterior, MatrixNormal) and layer.estimator == "shared"
    c = la.curvature
    b = c.b_sum / c.num_examples
    expected = np.linalg.inv(np.kron(c.a, b) + 0.7 * np.eye(12))
    np.testing.assert_allclose(layer.kernel_posterior.covariance(), expected, rtol=1e-4, atol=1e-7)
    bias_expected = np.linalg.inv(c.num_examples * b + 0.7 * np.eye(4))
    np.testing.assert_allclose(layer.bias.covariance(), bias_expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("structure", ["diag", "kron"])
def test_nn_predictive_of_a_linear_model_is_the_glm_one(softmax_linear, structure):
    """A linear model is its own linearisation: the layers' logit draws have the GLM's mean and covariance."""
    model, x, y = softmax_linear
    la = fit_laplace(model, x, y, hessian_structure=structure, verbose=0).optimize_prior_precision()
    mean, cov = la.glm_moments(x[:5])
    logits = mc_predict(la.to_bayesian_model(), x[:5], num_samples=1500, return_samples=True)
    emp = np.einsum("tnk,tnl->nkl", logits - logits.mean(0), logits - logits.mean(0)) / len(logits)
    scale = np.sqrt(np.einsum("nk,nl->nkl", np.diagonal(cov, 0, 1, 2), np.diagonal(cov, 0, 1, 2)))
    assert np.max(np.abs(emp - cov) / scale) < 0.15  # about 4 standard errors at 1,500 draws
    np.testing.assert_allclose(logits.mean(0), mean, atol=4 * np.sqrt(np.diagonal(cov, 0, 1, 2).max() / 1500))
    probs = la.predict(x[:5], pred_type="nn", num_samples=64)
    assert probs.shape == (5, 4) and np.allclose(probs.sum(-1), 1, atol=1e-5)


@pytest.mark.parametrize("structure", ["diag", "kron"])
def test_round_trip_through_keras_file(small_mlp, tmp_path, structure):
    model, x, y = small_mlp
    la = fit_laplace(model, x, y, hessian_structure=structure, verbose=0)
    bnn = la.to_bayesian_model(seed=5)
    path = str(tmp_path / "laplace.keras")
    bnn.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    a = mc_predict(bnn, x[:6], num_samples=8, return_samples=True)
    b = mc_predict(loaded, x[:6], num_samples=8, return_samples=True)
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    assert np.std(a, axis=0).max() > 0
    with bayesflip.posterior_mean(loaded):
        np.testing.assert_allclose(loaded(x[:6]), model(x[:6]), rtol=1e-5, atol=1e-6)
    if structure == "kron":  # serving and conformal prediction need nothing Laplace-specific
        served = tf.saved_model.load(bayesflip.export(loaded, str(tmp_path / "served"), 4, from_logits=True))
        assert served.signatures["predict"](tf.constant(x[:3]))["samples"].shape == (4, 3, 3)
        sets = ConformalClassifier(loaded, num_samples=4, from_logits=True, seed=0).fit(x[:40], y[:40])
        assert sets.predict(x[40:46], alpha=0.2).shape == (6, 3)


def test_gaussian_head_regression(rng):
    x = rng.normal(size=(40, 2)).astype("float32")
    y = (x[:, :1] - x[:, 1:] + 0.3 * rng.normal(size=(40, 1))).astype("float32")
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(1),
         GaussianHead(noise="homoscedastic", init_scale=0.4)]
    )  # fmt: skip
    la = fit_laplace(model, x, y, verbose=0)
    assert la.likelihood == "regression" and la.sigma_noise == pytest.approx(0.4, rel=1e-5)
    la.optimize_prior_precision()
    glm = la.predict(x[:4])
    assert isinstance(glm, RegressionPredictive) and glm.samples.shape == (100, 4, 1, 2)
    nn = la.predict(x[:4], pred_type="nn", num_samples=16)
    assert isinstance(nn, RegressionPredictive)
    np.testing.assert_allclose(nn.aleatoric_variance, la.sigma_noise**2, rtol=1e-4)
    hetero = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), GaussianHead()])
    pred = fit_laplace(hetero, x, y, verbose=0).predict(x[:4], num_samples=8)
    assert isinstance(pred, RegressionPredictive) and pred.samples.shape == (8, 4, 1, 2)

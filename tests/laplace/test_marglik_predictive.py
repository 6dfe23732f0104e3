"""Log marginal likelihood and GLM predictive against NumPy closed forms (softmax, Gaussian linear regression)."""

import math

import keras
import numpy as np
import pytest
from scipy import stats

from bayesflip.heads import RegressionPredictive
from bayesflip.laplace import fit_laplace
from tests.laplace.helpers import ggn, laplace_evidence, last_layer_jacobian, softmax, softmax_hessians


def _ridge(rng, use_bias=True):
    """A linear regression net set to the exact MAP (ridge) of prior precision δ = 2 and noise σ = 0.5."""
    n, d, delta, sigma = 50, 3, 2.0, 0.5
    x = rng.normal(size=(n, d))
    y = x @ np.array([[1.0], [-0.5], [0.3]]) + 0.2 + sigma * rng.normal(size=(n, 1))
    xa = np.concatenate([x, np.ones((n, 1))], axis=1) if use_bias else x
    theta = np.linalg.solve(xa.T @ xa / sigma**2 + delta * np.eye(xa.shape[1]), xa.T @ y / sigma**2)
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=use_bias)])
    model.compile(loss="mse")
    weights = [theta[:d].astype("float32")] + ([theta[d].astype("float32")] if use_bias else [])
    model.layers[-1].set_weights(weights)
    return model, x.astype("float32"), y.astype("float32"), xa, delta, sigma


@pytest.fixture
def ridge_regression(rng):
    return _ridge(rng)


@pytest.mark.parametrize("structure, use_bias", [("full", True), ("kron", False)])
def test_regression_evidence_is_the_exact_gaussian_evidence(rng, structure, use_bias):
    model, x, y, xa, delta, sigma = _ridge(rng, use_bias)
    la = fit_laplace(
        model, x, y, hessian_structure=structure, prior_precision=delta, sigma_noise=sigma, verbose=0
    )
    exact = stats.multivariate_normal(np.zeros(len(y)), sigma**2 * np.eye(len(y)) + xa @ xa.T / delta).logpdf(
        y[:, 0]
    )
    # For one output and no bias (no dropped cross term) the Kronecker form is exact, and a linear-Gaussian model's Laplace evidence is the evidence.
    assert la.log_marginal_likelihood() == pytest.approx(exact, rel=1e-6)


def test_regression_glm_predictive_closed_form(ridge_regression, rng):
    model, x, y, xa, delta, sigma = ridge_regression
    la = fit_laplace(
        model, x, y, hessian_structure="full", prior_precision=delta, sigma_noise=sigma, verbose=0
    )
    xs = rng.normal(size=(6, 3)).astype("float32")
    xsa = np.concatenate([xs, np.ones((6, 1))], axis=1).astype(np.float64)
    cov = np.linalg.inv(xa.T @ xa / sigma**2 + delta * np.eye(4))
    w, b = model.layers[-1].get_weights()
    pred = la.predict(xs, num_samples=20)
    assert isinstance(pred, RegressionPredictive)
    np.testing.assert_allclose(pred.mean[:, 0], xs @ w[:, 0] + b[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        pred.epistemic_variance[:, 0], np.einsum("np,pq,nq->n", xsa, cov, xsa), rtol=1e-5
    )
    np.testing.assert_allclose(pred.total_variance, pred.epistemic_variance + sigma**2, rtol=1e-12)
    assert pred.samples.shape == (20, 6, 1, 2)


def test_marglik_optimum_of_regression(ridge_regression):
    """The optimiser's (δ, σ) is a stationary point: no neighbour on a fine grid is better."""
    model, x, y, *_ = ridge_regression
    la = fit_laplace(model, x, y, hessian_structure="kron", verbose=0).optimize_prior_precision()
    best = la.log_marginal_likelihood()
    delta, sigma = la.prior_precision[0], la.sigma_noise
    for fd in (0.97, 1.03):
        assert la.log_marginal_likelihood(delta * fd, sigma) <= best + 1e-7
        assert la.log_marginal_likelihood(delta, sigma * fd) <= best + 1e-7


def test_softmax_evidence_and_probit_predictive_against_numpy(softmax_linear, rng):
    model, x, y = softmax_linear
    delta = 3.0
    la = fit_laplace(model, x, y, hessian_structure="full", prior_precision=delta, verbose=0)
    w, b = (v.astype(np.float64) for v in model.layers[-1].get_weights())
    phi = x.astype(np.float64)
    f = phi @ w + b
    h = ggn(phi, softmax_hessians(f))
    loglik = np.log(softmax(f)[np.arange(len(y)), y]).sum()
    theta = np.concatenate([w.reshape(-1), b])
    ref = laplace_evidence(loglik, h, delta, theta)
    assert la.log_marginal_likelihood() == pytest.approx(ref, rel=1e-8)
    assert la.log_marginal_likelihood(prior_precision=0.5) == pytest.approx(
        laplace_evidence(loglik, h, 0.5, theta), rel=1e-8
    )
    xs = rng.normal(size=(5, 3))
    j = last_layer_jacobian(xs, 4)
    cov = np.einsum("nkp,pq,nlq->nkl", j, np.linalg.inv(h + delta * np.eye(len(theta))), j)
    fs = xs @ w + b
    probit = softmax(fs / np.sqrt(1 + math.pi / 8 * np.diagonal(cov, axis1=1, axis2=2)))
    np.testing.assert_allclose(la.predict(xs.astype("float32")), probit, rtol=1e-5)
    mean, got_cov = la.glm_moments(xs.astype("float32"))
    np.testing.assert_allclose(got_cov, cov, rtol=1e-6, atol=1e-10)
    # MC over the Gaussian logits converges to the same predictive's exact MC value
    draws = la.predict(xs.astype("float32"), link_approx="mc", num_samples=4000, return_samples=True)
    assert draws.shape == (4000, 5, 4)
    chol = np.linalg.cholesky(cov)
    eps = np.random.default_rng(1).standard_normal((4000, 5, 4))
    ref_mc = softmax(fs[None] + np.einsum("nkl,tnl->tnk", chol, eps)).mean(0)
    np.testing.assert_allclose(draws.mean(0), ref_mc, atol=0.02)


def test_per_layer_marglik_and_val_nll(small_mlp):
    model, x, y = small_mlp
    la = fit_laplace(model, x, y, subset_of_weights="all", hessian_structure="diag", verbose=0)
    before = la.log_marginal_likelihood()
    la.optimize_prior_precision(per_layer=True)
    assert la.prior_precision.shape == (2,) and la.log_marginal_likelihood() >= before
    glob = fit_laplace(model, x, y, subset_of_weights="all", verbose=0, hessian_structure="diag")
    glob.optimize_prior_precision()
    assert la.log_marginal_likelihood() >= glob.log_marginal_likelihood() - 1e-8
    kron = fit_laplace(model, x, y, verbose=0)
    grid = [0.01, 1.0, 100.0]
    kron.optimize_prior_precision(method="val_nll", x_val=x[:30], y_val=y[:30], grid=grid)
    nlls = []
    for value in grid:
        p = fit_laplace(model, x, y, prior_precision=value, verbose=0).predict(x[:30])
        nlls.append(-np.mean(np.log(p[np.arange(30), y[:30]])))
    assert kron.prior_precision[0] == grid[int(np.argmin(nlls))]


def test_val_nll_fits_the_regression_noise(ridge_regression):
    model, x, y, *_ = ridge_regression
    la = fit_laplace(model, x[:30], y[:30], hessian_structure="kron", sigma_noise=0.1, verbose=0)
    la.optimize_prior_precision(method="val_nll", x_val=x[30:], y_val=y[30:], grid=[0.1, 1.0, 10.0])
    sigma = la.sigma_noise

    def val_nll(s):
        la.sigma_noise = s
        pred = la.predict(x[30:], num_samples=2)
        var = pred.total_variance
        return np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y[30:] - pred.mean) ** 2 / var)

    best = val_nll(sigma)
    assert best <= val_nll(sigma * 0.97) and best <= val_nll(sigma * 1.03)
    assert sigma > 0.2  # far from the 0.1 it started at (the data's noise is 0.5)

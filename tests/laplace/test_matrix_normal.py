"""The MatrixNormal posterior family: draws against A ⊗ B, the KL in closed form, the estimators it refuses."""

import keras
import numpy as np
import pytest

from bayesflip.layers import DenseFlipout
from bayesflip.posteriors import MatrixNormal, get
from bayesflip.priors import Normal
from bayesflip.uncertainty import mc_predict


def _model(rows, cols, prior=None):
    layer = DenseFlipout(
        cols, use_bias=False, posterior=MatrixNormal(), estimator="shared", prior=prior, seed=3
    )
    model = keras.Sequential([keras.Input((rows,)), layer])
    layer.kernel_posterior.loc.assign(np.zeros((rows, cols), "float32"))
    return model, layer.kernel_posterior


def _tril(rng, n):
    return np.tril(rng.normal(size=(n, n))) + 2 * np.eye(n)


def test_draws_have_covariance_a_kron_b(rng):
    rows, cols = 3, 2
    model, post = _model(rows, cols)
    la, lb = _tril(rng, rows), _tril(rng, cols)
    post.assign_factors(la, lb)
    np.testing.assert_allclose(post.covariance(), np.kron(la @ la.T, lb @ lb.T), rtol=1e-5)
    s = rng.uniform(0.5, 1.5, size=(rows, cols))
    post.assign_factors(la, lb, s)
    # inputs e_i read off row i of W: every MC pass is one draw of ΔW (a fresh one per pass)
    draws = mc_predict(model, np.eye(rows, dtype="float32"), num_samples=8000, return_samples=True)
    emp = np.cov(draws.reshape(len(draws), -1), rowvar=False)
    q = np.kron(la, lb)  # row-major vec(L_A (S ∘ E) L_Bᵀ) = (L_A ⊗ L_B) vec(S ∘ E)
    expected = q @ np.diag(s.reshape(-1) ** 2) @ q.T
    scale = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    assert np.max(np.abs(emp - expected) / scale) < 0.07  # about 4 standard errors at 8,000 draws
    np.testing.assert_allclose(post.covariance(), expected, rtol=1e-5)
    np.testing.assert_allclose(
        np.asarray(post.noise_scale()) ** 2, np.diag(expected).reshape(rows, cols), rtol=1e-5
    )


def test_kl_matches_the_gaussian_closed_form(rng):
    rows, cols = 3, 2
    model, post = _model(rows, cols, prior=Normal(0.1, 0.7))
    la, lb = _tril(rng, rows), _tril(rng, cols)
    s = rng.uniform(0.5, 1.5, size=(rows, cols))
    post.assign_factors(la, lb, s)
    mu = rng.normal(size=(rows, cols))
    post.loc.assign(mu.astype("float32"))
    cov = post.covariance()
    d = rows * cols
    var_p = 0.49
    diff = mu.reshape(-1) - 0.1
    ref = 0.5 * (
        np.trace(cov) / var_p + diff @ diff / var_p - d + d * np.log(var_p) - np.linalg.slogdet(cov)[1]
    )
    assert float(post.kl_divergence()) == pytest.approx(ref, rel=1e-4)


def test_estimators_and_priors_it_refuses():
    assert get("matrix_normal") == MatrixNormal()
    with pytest.raises(ValueError, match="estimator='flipout' has no meaning for posterior=MatrixNormal"):
        DenseFlipout(2, posterior=MatrixNormal())
    layer = DenseFlipout(2, posterior=MatrixNormal(), estimator="shared", prior="laplace")
    with pytest.raises(ValueError, match="closed-form KL against a Normal prior only"):
        layer.build((None, 3))

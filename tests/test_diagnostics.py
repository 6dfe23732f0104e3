"""Gradient-variance diagnostic vs the closed form of a linear regression.

Model: ``ŷ_i = x_i · w_i`` (``DenseFlipout(1, use_bias=False)``), loss
``mean_i (ŷ_i - y_i)²``, posterior ``N(μ, diag σ²)``. With ``m_i = x_i·μ - y_i``
the mini-batch gradient w.r.t. ``μ`` is ``g = (2/B) Σ_i x_i (m_i + p_i)`` where
the weight-noise term is

* flipout / local: ``p_i`` uncorrelated across examples with
  ``E[p_i²] = Σ_j x_ij² σ_j²``, so ``Var g = Var_i[h_i] / B`` with
  ``h_i = 2 x_i (m_i + p_i)``;
* shared: ``p_i = x_i · Δ`` with one ``Δ`` for the batch, so
  ``Var g = Var_i[2 x_i m_i] / B + diag E[M Σ M]`` with
  ``M = (2/B) Σ_i x_i x_iᵀ`` and ``E[M Σ M] = E[XΣX]/B + (1 - 1/B) E[X] Σ E[X]``.

Mini-batches are drawn i.i.d. with replacement (the diagnostic's default), so
these expectations are exact averages over the ``n`` examples.
"""

import keras
import numpy as np
import pytest

from bayesflip.diagnostics import gradient_variance, loglog_slope, use_estimator, variance_vs_batch_size
from bayesflip.layers import DenseFlipout

D, N = 3, 40


def _problem():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, D)).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5]) + 0.3 * rng.normal(size=N)).astype("float32")[:, None]
    mu = np.array([0.8, -1.5, 0.2], np.float32)
    sigma = np.array([0.6, 0.9, 0.4], np.float32)
    return x, y, mu, sigma


def _model(mu, sigma, estimator):
    layer = DenseFlipout(1, use_bias=False, estimator=estimator, min_scale=0.0, seed=3)
    model = keras.Sequential([keras.Input((D,)), layer])
    layer.kernel_posterior.loc.assign(mu[:, None])
    layer.kernel_posterior.rho.assign(np.log(np.expm1(sigma))[:, None])
    return model


def closed_form(x, y, mu, sigma, batch, estimator):
    """Per-weight variance of the mini-batch gradient (float64, exact)."""
    x = x.astype(np.float64)
    m = x @ mu - y[:, 0]
    s2 = sigma.astype(np.float64) ** 2
    a = 2 * x * m[:, None]  # data part of h_i, (n, D)
    data_var = a.var(axis=0)
    if estimator in ("flipout", "local"):
        noise = 4 * x**2 * (x**2 @ s2)[:, None]  # E_p[(2 x_i p_i)²]
        return (data_var + noise.mean(axis=0)) / batch
    X = 2 * x[:, :, None] * x[:, None, :]  # (n, D, D)
    exs = np.einsum("nij,j,njk->ik", X, s2, X) / len(x)
    ex = X.mean(axis=0)
    emsm = exs / batch + (1 - 1 / batch) * ex @ np.diag(s2) @ ex
    return data_var / batch + np.diag(emsm)


LOSS = keras.losses.MeanSquaredError(reduction=None)


@pytest.mark.parametrize("estimator,batch", [("flipout", 16), ("shared", 16), ("local", 16), ("flipout", 1)])
def test_matches_closed_form(estimator, batch):
    x, y, mu, sigma = _problem()
    model = _model(mu, sigma, "flipout")
    expected = closed_form(x, y, mu, sigma, batch, estimator)
    r = gradient_variance(model, x, y, LOSS, batch, num_repeats=1500, estimator=estimator, seed=5)
    # 1500 repeats: relative standard error of a variance of these heavy-ish
    # tailed gradients is ~5%; 15% is about 3 standard errors.
    np.testing.assert_allclose(r.total, expected.mean(), rtol=0.15)
    assert r.num_weights == D and r.batch_size == batch and r.estimator == estimator
    assert model.layers[0].estimator == "flipout"  # restored


def test_shared_and_flipout_closed_forms_are_distinguishable():
    # Guard: the tolerance above must be able to tell the estimators apart.
    x, y, mu, sigma = _problem()
    f = closed_form(x, y, mu, sigma, 16, "flipout").mean()
    s = closed_form(x, y, mu, sigma, 16, "shared").mean()
    assert s > 1.5 * f


def test_flipout_slope_is_minus_one_and_shared_flattens():
    x, y, mu, sigma = _problem()
    model = _model(mu, sigma, "flipout")
    sizes = [1, 4, 16, 64]
    slopes = {}
    for est in ("flipout", "shared"):
        curve = variance_vs_batch_size(model, x, y, LOSS, sizes, 400, estimator=est, small_batch_repeats=1)
        assert curve["num_repeats"] == [400] * 4 and list(curve["per_layer"]) == [model.layers[0].name]
        slopes[est] = curve["slope"]
        exact = loglog_slope(sizes, [closed_form(x, y, mu, sigma, b, est).mean() for b in sizes])
        assert abs(slopes[est] - exact) < 0.08, (est, slopes[est], exact)
    assert -1.08 < slopes["flipout"] < -0.92
    assert slopes["shared"] > -0.8


def test_without_replacement_full_batch_has_no_data_noise():
    # Whole data set, no replacement, estimator with zero noise -> gradient is
    # deterministic apart from the weight noise; sigma -> tiny gives ~0 variance.
    x, y, mu, _ = _problem()
    model = _model(mu, np.full(D, 1e-6, np.float32), "flipout")
    r = gradient_variance(model, x, y, LOSS, N, 5, replace=False)
    assert r.total < 1e-8
    assert r.mean_grad_sq > 1e-3


def test_include_kl_does_not_change_variance_for_analytic_kl():
    x, y, mu, sigma = _problem()
    model = _model(mu, sigma, "flipout")
    model.layers[0].kl_weight = 0.5
    a = gradient_variance(model, x, y, LOSS, 8, 50, seed=2)
    model2 = _model(mu, sigma, "flipout")  # same layer seed -> same noise stream
    model2.layers[0].kl_weight = 0.5
    b = gradient_variance(model2, x, y, LOSS, 8, 50, seed=2, include_kl=True)
    np.testing.assert_allclose(a.total, b.total, rtol=1e-4)


def test_errors_are_clear():
    x, y, mu, sigma = _problem()
    model = _model(mu, sigma, "flipout")
    with pytest.raises(ValueError, match="batch_size"):
        gradient_variance(model, x, y, LOSS, 0)
    with pytest.raises(ValueError, match="num_repeats"):
        gradient_variance(model, x, y, LOSS, 4, num_repeats=1)
    with pytest.raises(ValueError, match="same number of examples"):
        gradient_variance(model, x, y[:5], LOSS, 4)
    with pytest.raises(ValueError, match="exceeds"):
        gradient_variance(model, x, y, LOSS, N + 1, replace=False)
    with pytest.raises(ValueError, match="unknown estimator 'bogus'"):
        gradient_variance(model, x, y, LOSS, 4, estimator="bogus")
    with pytest.raises(ValueError, match="no bayesflip variational layers"):
        with use_estimator(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), "shared"):
            pass
    with pytest.raises(ValueError, match="increasing"):
        variance_vs_batch_size(model, x, y, LOSS, [8, 4])
    with pytest.raises(ValueError, match="equal length"):
        loglog_slope([1, 2], [1.0])

"""GGN / empirical Fisher of the Laplace approximation against NumPy closed forms and exact cases."""

import keras
import numpy as np
import tensorflow as tf

from bayesflip.laplace import fit_laplace
from tests.laplace.helpers import ggn, last_layer_jacobian, softmax, softmax_hessians


def _reference(model, x, y=None):
    w, b = (v.astype(np.float64) for v in model.layers[-1].get_weights())
    phi = x.astype(np.float64)
    f = phi @ w + b
    return phi, f, ggn(phi, softmax_hessians(f))


def test_softmax_last_layer_ggn_full_diag_kron_match_numpy(softmax_linear):
    model, x, y = softmax_linear
    phi, f, h = _reference(model, x)
    full = fit_laplace(model, x, y, hessian_structure="full", batch_size=16, verbose=0).curvature
    np.testing.assert_allclose(full.h, h, rtol=1e-6, atol=1e-8)
    diag = fit_laplace(model, x, y, hessian_structure="diag", batch_size=16, verbose=0).curvature
    np.testing.assert_allclose(diag.h_kernel.reshape(-1), np.diag(h)[:12], rtol=1e-6)
    np.testing.assert_allclose(diag.h_bias, np.diag(h)[12:], rtol=1e-6)
    kron = fit_laplace(model, x, y, hessian_structure="kron", batch_size=16, verbose=0).curvature
    a_ref = phi.T @ phi
    b_ref = softmax_hessians(f).mean(0)
    np.testing.assert_allclose(kron.a, a_ref, rtol=1e-6)
    np.testing.assert_allclose(kron.b_sum / kron.num_examples, b_ref, rtol=1e-6, atol=1e-9)
    # the bias block of the Kronecker form is exact: Σ_n Λ_n = N B
    np.testing.assert_allclose(kron.num_examples * b_ref, h[12:, 12:], rtol=1e-6, atol=1e-9)


def test_kfac_is_exact_for_a_single_example(softmax_linear):
    model, x, y = softmax_linear
    _, _, h = _reference(model, x[:1])
    kron = fit_laplace(model, x[:1], y[:1], hessian_structure="kron", verbose=0).curvature
    np.testing.assert_allclose(np.kron(kron.a, kron.b_sum), h[:12, :12], rtol=1e-6, atol=1e-9)


def test_kfac_is_exact_for_gaussian_linear_regression(rng):
    x = rng.normal(size=(30, 3)).astype("float32")
    y = rng.normal(size=(30, 2)).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    kron = fit_laplace(model, x, y, likelihood="regression", hessian_structure="kron", verbose=0)
    full = fit_laplace(model, x, y, likelihood="regression", hessian_structure="full", verbose=0)
    c = kron.curvature
    np.testing.assert_allclose(np.kron(c.a, c.b_sum / c.num_examples), full.curvature.h[:6, :6], rtol=1e-6)
    np.testing.assert_allclose(c.num_examples * c.b_sum / c.num_examples, full.curvature.h[6:, 6:], rtol=1e-6)


def test_logistic_last_layer_ggn_and_empirical_fisher(rng):
    x = rng.normal(size=(25, 3)).astype("float32")
    y = rng.integers(0, 2, size=(25, 1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    w, b = (v.astype(np.float64) for v in model.layers[-1].get_weights())
    f = x.astype(np.float64) @ w + b
    p = 1 / (1 + np.exp(-f))
    lam = (p * (1 - p))[:, :, None]
    full = fit_laplace(model, x, y, hessian_structure="full", verbose=0)
    assert full.likelihood == "bernoulli"
    np.testing.assert_allclose(full.curvature.h, ggn(x.astype(np.float64), lam), rtol=1e-6)
    ef = fit_laplace(model, x, y, hessian_structure="full", curvature="ef", verbose=0)
    e = (p - y)[:, :, None]
    np.testing.assert_allclose(ef.curvature.h, ggn(x.astype(np.float64), e * e), rtol=1e-6)


def test_softmax_empirical_fisher_diag(softmax_linear):
    model, x, y = softmax_linear
    phi, f, _ = _reference(model, x)
    grads = np.einsum("nkp,nk->np", last_layer_jacobian(phi, 4), softmax(f) - np.eye(4)[y])
    diag = fit_laplace(model, x, y, hessian_structure="diag", curvature="ef", verbose=0).curvature
    np.testing.assert_allclose(diag.h_kernel.reshape(-1), (grads**2).sum(0)[:12], rtol=1e-6)


def test_kfac_close_to_full_on_a_small_net(small_mlp):
    """Stated tolerance: KFAC's kernel block within 25 % (relative Frobenius) of the exact GGN block,
    and its GLM probit probabilities within 0.02 of the full GGN's, on a 3-8-3 net at δ = 1."""
    model, x, y = small_mlp
    kron = fit_laplace(model, x, y, hessian_structure="kron", verbose=0)
    full = fit_laplace(model, x, y, hessian_structure="full", verbose=0)
    diag = fit_laplace(model, x, y, hessian_structure="diag", verbose=0)
    c = kron.curvature
    block = full.curvature.h[:24, :24]
    approx = np.kron(c.a, c.b_sum / c.num_examples)
    assert np.linalg.norm(approx - block) / np.linalg.norm(block) < 0.25
    np.testing.assert_allclose(np.diag(block), diag.curvature.h_kernel.reshape(-1), rtol=1e-6)
    np.testing.assert_allclose(kron.predict(x), full.predict(x), atol=0.02)


def test_all_layer_diag_against_per_example_gradients(small_mlp):
    """The pfor Jacobians against plain per-example gradients of ``L_cᵀ f`` (``Λ = L Lᵀ``)."""
    model, x, y = small_mlp
    x, y = x[:12], y[:12]
    la = fit_laplace(model, x, y, subset_of_weights="all", hessian_structure="diag", batch_size=5, verbose=0)
    assert la.groups == ["hidden", "out"]
    variables = [model.layers[0].kernel, model.layers[0].bias, model.layers[1].kernel, model.layers[1].bias]
    ref = [np.zeros(v.shape) for v in variables]
    for xn in x:
        f = np.asarray(model(xn[None]), np.float64)
        p = softmax(f)[0]
        factor = np.diag(np.sqrt(p)) - np.outer(p, np.sqrt(p))  # Λ = L Lᵀ = diag p − p pᵀ
        for c in range(3):
            with tf.GradientTape() as tape:
                z = tf.reduce_sum(model(xn[None])[0] * tf.constant(factor[:, c], tf.float32))
            for r, g in zip(ref, tape.gradient(z, variables)):
                r += np.asarray(g, np.float64) ** 2
    for r, h in zip(ref, la.curvature.h):
        np.testing.assert_allclose(h, r, rtol=1e-4, atol=1e-7)
    last = fit_laplace(model, x, y, hessian_structure="diag", verbose=0).curvature
    np.testing.assert_allclose(la.curvature.h[2], last.h_kernel, rtol=1e-4)


def test_dataset_input_equals_arrays(softmax_linear):
    model, x, y = softmax_linear
    arrays = fit_laplace(model, x, y, hessian_structure="full", verbose=0)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(7)
    dataset = fit_laplace(model, data, hessian_structure="full", verbose=0)
    np.testing.assert_allclose(dataset.curvature.h, arrays.curvature.h, rtol=1e-6)
    assert dataset.num_examples == 40


def test_bayesflip_model_in_posterior_mean_mode_equals_its_deterministic_net(small_mlp):
    import bayesflip

    model, x, y = small_mlp
    bnn = bayesflip.to_bayesian(model, moped_delta=0.5)
    ref = fit_laplace(model, x, y, likelihood="categorical", verbose=0).curvature
    got = fit_laplace(bnn, x, y, likelihood="categorical", verbose=0).curvature
    np.testing.assert_allclose(got.a, ref.a, rtol=1e-5)
    np.testing.assert_allclose(got.b_sum, ref.b_sum, rtol=1e-5)
    assert not any(layer.use_posterior_mean for layer in bayesflip.variational_layers(bnn))


def test_the_model_is_not_modified(small_mlp):
    model, x, y = small_mlp
    before = [w.copy() for w in model.get_weights()]
    la = fit_laplace(model, x, y, hessian_structure="kron", verbose=0).optimize_prior_precision()
    la.to_bayesian_model()
    la.predict(x[:3], pred_type="nn", num_samples=2)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_all_layer_kfac(small_mlp):
    """Its last layer's factors are last-layer KFAC's; for one example it is exact (its diagonal is the exact one)."""
    model, x, y = small_mlp
    every = fit_laplace(model, x, y, subset_of_weights="all", batch_size=16, verbose=0)
    last = fit_laplace(model, x, y, verbose=0).curvature
    np.testing.assert_allclose(every.curvature.per_layer[1].a, last.a, rtol=1e-6)
    np.testing.assert_allclose(every.curvature.per_layer[1].b_sum, last.b_sum, rtol=1e-5, atol=1e-9)
    one = fit_laplace(model, x[:1], y[:1], subset_of_weights="all", verbose=0).curvature.per_layer[0]
    exact = fit_laplace(model, x[:1], y[:1], subset_of_weights="all", hessian_structure="diag", verbose=0)
    np.testing.assert_allclose(
        np.diag(np.kron(one.a, one.b_sum)).reshape(3, 8), exact.curvature.h[0], rtol=1e-4
    )
    np.testing.assert_allclose(np.diag(one.b_sum), exact.curvature.h[1], rtol=1e-4, atol=1e-10)

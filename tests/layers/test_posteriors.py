"""Posterior families (``posterior=``): multiplicative Gaussian noise through the one core.

Gaussian DropConnect (fixed ``α``) and variational dropout (learned ``α``, per
weight or per unit) on every layer type, against closed forms: the moments of
``x (θ ∘ (1 + √α ε))``, the exact KL to the log-uniform prior by quadrature,
pruning counted with NumPy.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

import bayesflip
from bayesflip import posteriors
from bayesflip.layers import (
    Conv1DFlipout,
    Conv2DFlipout,
    Conv2DTransposeFlipout,
    DenseFlipout,
    EmbeddingFlipout,
    GRUFlipout,
    LSTMFlipout,
)
from bayesflip.posteriors import GaussianDropConnect, VariationalDropout
from tests.layers.helpers import check_variational_layer

DROPCONNECT = GaussianDropConnect(rate=0.3)
VD_WEIGHT = VariationalDropout()
VD_UNIT = VariationalDropout(granularity="unit")
FAMILIES = [DROPCONNECT, VD_WEIGHT, VD_UNIT]


# ------------------------------------------------------------ shared battery
@pytest.mark.parametrize("family", FAMILIES, ids=repr)
@pytest.mark.parametrize("bayesian_bias", [False, True])
def test_dense_battery(family, bayesian_bias):
    check_variational_layer(
        lambda **kw: DenseFlipout(3, bayesian_bias=bayesian_bias, posterior=family, **kw), (4, 5)
    )


BATTERY_CASES = [
    (
        "conv1d_dropconnect",
        lambda **kw: Conv1DFlipout(3, 3, posterior=DROPCONNECT, **kw),
        (3, 7, 2),
        "float32",
    ),
    (
        "conv2d_vd_unit_local",
        lambda **kw: Conv2DFlipout(3, 3, estimator="local", posterior=VD_UNIT, **kw),
        (2, 5, 5, 2),
        "float32",
    ),
    (
        "conv2d_transpose_vd_unit",
        lambda **kw: Conv2DTransposeFlipout(3, 3, strides=2, posterior=VD_UNIT, **kw),
        (2, 4, 4, 2),
        "float32",
    ),
    ("lstm_vd_weight", lambda **kw: LSTMFlipout(4, posterior=VD_WEIGHT, **kw), (3, 5, 2), "float32"),
    (
        "gru_dropconnect_shared",
        lambda **kw: GRUFlipout(4, estimator="shared", posterior=DROPCONNECT, **kw),
        (3, 5, 2),
        "float32",
    ),
    ("embedding_vd_unit", lambda **kw: EmbeddingFlipout(6, 3, posterior=VD_UNIT, **kw), (3, 4), "int32"),
]


@pytest.mark.parametrize(
    "factory,input_shape,dtype", [c[1:] for c in BATTERY_CASES], ids=[c[0] for c in BATTERY_CASES]
)
def test_layer_battery(factory, input_shape, dtype):
    check_variational_layer(factory, input_shape, input_dtype=dtype)


# ---------------------------------------------------------------- moments
def _moments(layer, x, n=3000):
    draw = tf.function(lambda: layer(x))
    samples = np.stack([draw().numpy() for _ in range(n)])
    return samples.mean(0), samples.var(0)


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
@pytest.mark.parametrize("family", [GaussianDropConnect(rate=0.5), VD_UNIT], ids=repr)
def test_multiplicative_moments_match_closed_form(estimator, family, rng):
    """E[y] = x θ + b and Var[y_j] = Σ_i x_i² α_ij θ_ij² for W = θ ∘ (1 + √α ε)."""
    x = rng.normal(size=(3, 4)).astype("float32")
    layer = DenseFlipout(2, estimator=estimator, posterior=family, kernel_initializer="random_normal", seed=7)
    layer(x)
    post = layer.kernel_posterior
    theta = post.loc.numpy()
    if isinstance(family, VariationalDropout):
        post.log_alpha_unit.assign([-1.0, 0.5])  # per output unit
        alpha = np.exp(np.array([-1.0, 0.5]))[None, :] * np.ones_like(theta)
    else:
        alpha = np.full_like(theta, 1.0)  # rate 0.5
    mean = x @ theta + layer.bias.numpy()
    var = (x**2) @ (alpha * theta**2)
    n = 3000
    got_mean, got_var = _moments(layer, x, n)
    assert np.all(np.abs(got_mean - mean) < 5 * np.sqrt(var / n))
    np.testing.assert_allclose(got_var, var, rtol=0.12)


def test_one_draw_is_theta_times_one_plus_sqrt_alpha_eps():
    """With the shared estimator one call uses W = θ ∘ (1 + √α ε) for the whole batch, ε ~ N(0, 1)."""
    x = np.eye(5, dtype="float32")  # rows read out W row by row
    layer = DenseFlipout(
        40, estimator="shared", use_bias=False, posterior=GaussianDropConnect(alpha=0.25), seed=3
    )
    layer(x)
    theta = layer.kernel_posterior.loc.numpy()
    w = layer(x).numpy()
    eps = (w / theta - 1.0) / 0.5
    assert eps.std() == pytest.approx(1.0, abs=0.15) and abs(eps.mean()) < 0.2
    assert stats.kstest(eps.ravel(), "norm").pvalue > 1e-3


def test_flipout_decorrelates_identical_examples_with_multiplicative_noise():
    x = np.tile(np.random.default_rng(0).normal(size=(1, 6)).astype("float32"), (512, 1))
    out = {}
    for estimator in ("flipout", "shared"):
        layer = DenseFlipout(32, estimator=estimator, posterior=GaussianDropConnect(rate=0.5), seed=2)
        y = layer(x).numpy()
        with bayesflip.posterior_mean(layer):
            y0 = layer(x).numpy()
        d = y - y0
        out[estimator] = np.corrcoef(d[0::2].ravel(), d[1::2].ravel())[0, 1]
    assert out["shared"] > 0.99
    assert abs(out["flipout"]) < 0.1


# ------------------------------------------------------------ KL and pruning
def _exact_neg_kl_up_to_constant(log_alpha: float) -> float:
    """``½ log α − E log|1 + √α ε|`` (Molchanov et al. 2017, eq. 13 without its constant), by quadrature."""
    a = np.exp(log_alpha)
    singular = -1.0 / np.sqrt(a)

    def f(e):
        return np.log(abs(1.0 + np.sqrt(a) * e)) * stats.norm.pdf(e)

    value = (
        integrate.quad(f, -np.inf, singular, limit=200)[0] + integrate.quad(f, singular, np.inf, limit=200)[0]
    )
    return 0.5 * log_alpha - value


def test_log_uniform_kl_matches_quadrature_up_to_a_constant():
    grid = np.linspace(-8.0, 8.0, 17)
    approx = -posteriors.log_uniform_kl(tf.constant(grid, tf.float32)).numpy()
    exact = np.array([_exact_neg_kl_up_to_constant(v) for v in grid])
    offset = approx - exact
    # the published approximation's error is below 0.01 over the whole range
    assert np.ptp(offset) < 0.02
    np.testing.assert_allclose(offset, np.median(offset), atol=0.01)
    # KL → 0 as α → ∞ (the approximation's constant is −k1) and grows as α → 0
    assert float(posteriors.log_uniform_kl(tf.constant(30.0))) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.diff(-approx) < 0)


def test_variational_dropout_kl_sums_the_clipped_log_alpha():
    layer = DenseFlipout(3, posterior=VD_WEIGHT, kernel_initializer="ones", kl_weight=1.0, seed=0)
    layer(np.ones((1, 2), "float32"))
    post = layer.kernel_posterior
    post.log_sigma2.assign(
        np.array([[-20.0, 0.0, 1.0], [2.0, 30.0, -3.0]], "float32")
    )  # θ = 1: log α = log σ²
    expected = np.clip(post.log_sigma2.numpy(), -8, 8)
    np.testing.assert_allclose(post.log_alpha().numpy(), expected, atol=1e-6)
    k1, k2, k3 = 0.63576, 1.87320, 1.48695
    kl = -(k1 / (1 + np.exp(-(k2 + k3 * expected))) - 0.5 * np.log1p(np.exp(-expected)) - k1)
    np.testing.assert_allclose(float(layer.kl_divergence()), kl.sum(), rtol=1e-5)


def test_per_weight_noise_scale_has_no_gradient_wrt_theta():
    """The additive reparameterisation: σ² = α θ² is a free parameter, so ΔW carries no noise into ∂/∂θ."""
    layer = DenseFlipout(4, posterior=VD_WEIGHT, seed=0)
    layer(np.ones((1, 3), "float32"))
    post = layer.kernel_posterior
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(post.noise_scale() ** 2)
    g_loc, g_sigma = tape.gradient(s, [post.loc, post.log_sigma2])
    # exactly zero, not zero up to rounding (which differs between TF versions)
    np.testing.assert_array_equal(g_loc.numpy(), 0.0)
    assert float(tf.reduce_min(tf.abs(g_sigma))) > 0.0
    # where log α is clipped, σ follows θ instead: σ ≈ e^{high/2} |θ|
    post.log_sigma2.assign(post.log_sigma2 + 20.0)
    with tf.GradientTape() as tape:
        s = tf.reduce_sum(post.noise_scale() ** 2)
    g_loc, g_sigma = tape.gradient(s, [post.loc, post.log_sigma2])
    np.testing.assert_array_equal(g_sigma.numpy(), 0.0)
    theta = post.loc.numpy()
    # log σ² = log(θ² + 1e-8) + 8: σ = e⁴ √(θ² + 1e-8), signed like θ
    np.testing.assert_allclose(
        post.noise_scale().numpy(), np.exp(4.0) * np.sign(theta) * np.sqrt(theta**2 + 1e-8), rtol=1e-5
    )
    np.testing.assert_allclose(g_loc.numpy(), 2 * np.exp(8.0) * theta, rtol=1e-4)


def test_pruning_in_posterior_mean_mode_and_sparsity_report(rng):
    x = rng.normal(size=(5, 4)).astype("float32")
    layer = DenseFlipout(3, posterior=VD_WEIGHT, seed=1)
    layer(x)
    post = layer.kernel_posterior
    theta = post.loc.numpy()
    log_alpha = rng.uniform(-6, 6, size=theta.shape).astype("float32")
    post.log_sigma2.assign(log_alpha + np.log(theta**2 + 1e-8))
    keep = log_alpha <= 3.0
    with bayesflip.posterior_mean(layer):
        got = layer(x).numpy()
    np.testing.assert_allclose(got, x @ (theta * keep) + layer.bias.numpy(), rtol=1e-5, atol=1e-6)
    report = posteriors.sparsity(keras.Sequential([keras.Input((4,)), layer]))
    assert (report.pruned, report.total) == (int((~keep).sum()), theta.size)
    assert report.fraction == pytest.approx((~keep).mean())
    assert report.by_weight == {f"{layer.name}/kernel": (int((~keep).sum()), theta.size)}
    # without a threshold nothing is pruned
    unpruned = DenseFlipout(3, posterior=VariationalDropout(prune_threshold=None), seed=1)
    unpruned(x)
    unpruned.set_weights(layer.get_weights())
    with bayesflip.posterior_mean(unpruned):
        np.testing.assert_allclose(unpruned(x).numpy(), x @ theta + layer.bias.numpy(), rtol=1e-5, atol=1e-6)
    assert posteriors.sparsity(unpruned).total == 0
    # prune=False: the pruning layer's unpruned posterior mean, in a compiled predict too, then pruning again
    model = keras.Sequential([keras.Input((4,)), layer])
    with bayesflip.posterior_mean(model):
        pruned = model.predict(x, verbose=0)  # compiles the predict function with the mask
    with bayesflip.posterior_mean(model, prune=False):
        np.testing.assert_allclose(
            model.predict(x, verbose=0), x @ theta + layer.bias.numpy(), rtol=1e-5, atol=1e-6
        )
    assert layer.posteriors[0].prune_threshold == 3.0
    with bayesflip.posterior_mean(model):
        np.testing.assert_array_equal(model.predict(x, verbose=0), pruned)
    with pytest.raises(TypeError, match=r"posterior_mean: `prune` must be True or False, got 'no'"):
        with bayesflip.posterior_mean(model, prune="no"):
            pass


def test_dropconnect_adds_no_kl_and_no_unset_weight_warning(recwarn):
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(2, posterior=DROPCONNECT, seed=0)])
    model.compile("adam", "mse")
    model.fit(np.ones((4, 3), "float32"), np.zeros((4, 2), "float32"), epochs=1, verbose=0)
    assert model.losses == []
    assert not [w for w in recwarn if "unset KL weight" in str(w.message)]


def test_mixed_precision_multiplicative():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for family in (DROPCONNECT, VD_UNIT):
            layer = Conv2DFlipout(3, 3, posterior=family, kl_weight=1.0, seed=0)
            y = layer(np.ones((2, 5, 5, 2), "float32"))
            assert y.dtype == "float16"
            assert all(w.dtype == "float32" for w in layer.trainable_weights)
            assert all(loss.dtype == "float32" for loss in layer.losses)
            assert np.all(np.isfinite(keras.ops.convert_to_numpy(y)))
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make,match",
    [
        (
            lambda: GaussianDropConnect(rate=0.0),
            r"GaussianDropConnect: `rate` must be a number in \(0, 1\), got 0.0",
        ),
        (lambda: GaussianDropConnect(rate=1.0), r"`rate` must be a number in \(0, 1\)"),
        (lambda: GaussianDropConnect(rate=float("nan")), r"`rate` must be a number in \(0, 1\)"),
        (lambda: GaussianDropConnect(alpha=0.0), "`alpha` must be a positive finite number, got 0.0"),
        (lambda: GaussianDropConnect(alpha=-1.0), "`alpha` must be a positive finite number"),
        (lambda: GaussianDropConnect(alpha=float("inf")), "`alpha` must be a positive finite number"),
        (lambda: GaussianDropConnect(), "give exactly one of `rate` or `alpha`"),
        (lambda: GaussianDropConnect(rate=0.5, alpha=1.0), "give exactly one of `rate` or `alpha`"),
        (
            lambda: VariationalDropout(granularity="layer"),
            "`granularity` must be 'weight' or 'unit', got 'layer'",
        ),
        (lambda: VariationalDropout(init_log_alpha=9.0), r"`init_log_alpha` must be a number in \[-8, 8\]"),
        (
            lambda: DenseFlipout(2, posterior="bernoulli", name="d1"),
            "DenseFlipout 'd1': invalid `posterior`: Unknown posterior family 'bernoulli'",
        ),
        (
            lambda: DenseFlipout(2, posterior="dropconnect", name="d2"),
            r"DenseFlipout 'd2'.*GaussianDropConnect\(rate=p\)",
        ),
        (
            lambda: LSTMFlipout(
                2,
                posterior={
                    "class_name": "GaussianDropConnect",
                    "config": {"rate": 1.5},
                    "module": "bayesflip.posteriors",
                    "registered_name": "bayesflip>GaussianDropConnect",
                },
                name="l1",
            ),
            r"LSTMFlipout 'l1': invalid `posterior`.*`rate` must be a number in \(0, 1\), got 1.5",
        ),
        (
            lambda: DenseFlipout(2, posterior=VD_WEIGHT, prior="laplace", name="d3"),
            "DenseFlipout 'd3': `prior` does not apply to posterior=VariationalDropout",
        ),
        (
            lambda: EmbeddingFlipout(
                3, 2, posterior=DROPCONNECT, prior=bayesflip.priors.Normal(0, 2), name="e1"
            ),
            "EmbeddingFlipout 'e1': `prior` does not apply",
        ),
    ],
)
def test_bad_arguments_have_clear_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_type_is_a_type_error():
    with pytest.raises(
        TypeError, match="DenseFlipout 'd4': invalid `posterior`: a posterior family must be a bayesflip"
    ):
        DenseFlipout(2, posterior=0.5, name="d4")


def test_get_resolves_names_configs_and_instances():
    assert posteriors.get(None) == posteriors.MeanFieldGaussian()
    assert posteriors.get("Variational_Dropout") == VariationalDropout()
    config = keras.saving.serialize_keras_object(GaussianDropConnect(alpha=2.0))
    assert posteriors.get(config) == GaussianDropConnect(alpha=2.0)
    assert GaussianDropConnect(rate=0.2).alpha == pytest.approx(0.25)

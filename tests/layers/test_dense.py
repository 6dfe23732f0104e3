"""DenseFlipout / DenseReparameterization / DenseLocalReparameterization."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip.layers import DenseFlipout, DenseLocalReparameterization, DenseReparameterization
from tests.layers.helpers import check_variational_layer

ESTIMATOR_CLASSES = [DenseFlipout, DenseReparameterization, DenseLocalReparameterization]


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
@pytest.mark.parametrize("bayesian_bias", [False, True])
def test_shared_layer_checks(cls, bayesian_bias):
    check_variational_layer(lambda **kw: cls(4, activation="relu", bayesian_bias=bayesian_bias, **kw), (6, 3))


def test_rank3_inputs():
    check_variational_layer(lambda **kw: DenseFlipout(5, **kw), (4, 7, 3))


def _dense_twin(layer, x):
    """A keras.layers.Dense with the posterior means of ``layer``."""
    dense = keras.layers.Dense(layer.units, activation=layer.activation)
    dense(x)
    dense.set_weights([layer.kernel_posterior.loc.numpy(), layer.bias.numpy()])
    return dense


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_posterior_mean_mode_equals_keras_dense(estimator, rng):
    x = rng.normal(size=(16, 5)).astype("float32")
    model = keras.Sequential(
        [keras.Input((5,)), DenseFlipout(7, activation="tanh", estimator=estimator, seed=0)]
    )
    layer = model.layers[0]
    layer.bias.assign(rng.normal(size=7).astype("float32"))
    dense = _dense_twin(layer, x)
    with bayesflip.posterior_mean(model):
        np.testing.assert_allclose(model.predict(x, verbose=0), dense(x).numpy(), rtol=1e-6, atol=1e-6)
        state = layer.rng_state.numpy().copy()
        model(x)
        np.testing.assert_array_equal(layer.rng_state.numpy(), state)  # no draw in mean mode
    # back to sampling after the context
    assert not np.allclose(model.predict(x, verbose=0), dense(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_zero_posterior_scale_equals_keras_dense(estimator, rng):
    x = rng.normal(size=(16, 5)).astype("float32")
    layer = DenseFlipout(7, estimator=estimator, bayesian_bias=True, min_scale=0.0, seed=0)
    layer(x)
    for post in layer.posteriors:
        post.rho.assign(tf.fill(post.shape, -200.0))  # softplus(-200) == 0 in float32
    dense = keras.layers.Dense(7)
    dense(x)
    dense.set_weights([layer.kernel_posterior.loc.numpy(), layer.bias.loc.numpy()])
    np.testing.assert_allclose(layer(x).numpy(), dense(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
@pytest.mark.parametrize("bayesian_bias", [False, True])
def test_sampled_outputs_match_closed_form_moments(estimator, bayesian_bias, rng):
    """E[y] = x·loc + b and Var[y] = x²·scale² (+ scale_b²) for a linear layer."""
    x = rng.normal(size=(3, 4)).astype("float32")
    layer = DenseFlipout(2, estimator=estimator, bayesian_bias=bayesian_bias, init_scale=0.5, seed=11)
    layer(x)
    loc = layer.kernel_posterior.loc.numpy()
    scale = layer.kernel_posterior.scale().numpy()
    bias = layer.bias.mean().numpy() if bayesian_bias else layer.bias.numpy()
    mean = x @ loc + bias
    var = (x**2) @ (scale**2)
    if bayesian_bias:
        var = var + layer.bias.scale().numpy() ** 2
    n = 3000
    draw = tf.function(lambda: layer(x))
    samples = np.stack([draw().numpy() for _ in range(n)])
    stderr = np.sqrt(var / n)
    assert np.all(np.abs(samples.mean(0) - mean) < 5 * stderr)
    # relative standard error of a variance estimate is sqrt(2/n) ≈ 2.6 %
    np.testing.assert_allclose(samples.var(0), var, rtol=0.12)


def _perturbations(estimator, batch=256, units=64):
    x = np.tile(np.random.default_rng(1).normal(size=(1, 8)).astype("float32"), (batch, 1))
    layer = DenseFlipout(units, estimator=estimator, init_scale=0.3, seed=4)
    y = layer(x).numpy()
    with bayesflip.posterior_mean(layer):
        y0 = layer(x).numpy()
    return y - y0


def test_flipout_decorrelates_identical_examples():
    pert = _perturbations("flipout")
    assert not np.allclose(pert[0], pert[1])
    corr = np.corrcoef(pert)  # examples × examples, over output units
    off_diag = corr[~np.eye(len(corr), dtype=bool)]
    # Independent 64-dim vectors: correlations ~ N(0, 1/64); their mean is ~0.
    assert abs(off_diag.mean()) < 0.02
    assert off_diag.std() < 1.5 / np.sqrt(64)


def test_shared_perturbation_is_identical_across_examples():
    pert = _perturbations("shared")
    np.testing.assert_allclose(pert, np.broadcast_to(pert[:1], pert.shape), atol=1e-6)


def _gradient_variance(estimator, batch_size, draws=60):
    """Variance (over weight-noise draws) of d loss / d loc, averaged over weights."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, 16)).astype("float32"))
    t = tf.constant(rng.normal(size=(batch_size, 4)).astype("float32"))
    layer = DenseFlipout(4, estimator=estimator, init_scale=0.5, kl_weight=0.0, seed=2)
    layer(x)

    @tf.function
    def grad():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x) - t))
        return tape.gradient(loss, layer.kernel_posterior.loc)

    grads = np.stack([grad().numpy() for _ in range(draws)])
    return grads.var(0).mean()


def test_gradient_variance_falls_like_inverse_batch_size_with_flipout_only():
    flip = [_gradient_variance("flipout", b) for b in (8, 128)]
    shared = [_gradient_variance("shared", b) for b in (8, 128)]
    # 16× larger batch: flipout's weight-noise variance falls ~16× (ideal 1/B),
    # shared perturbation's much less (examples share one ΔW).
    assert flip[0] / flip[1] > 8
    assert shared[0] / shared[1] < 4
    assert flip[1] < shared[1] / 4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"units": 0}, "`units` must be a positive int, got 0"),
        ({"units": -3}, "`units` must be a positive int"),
        ({"units": 2.5}, "`units` must be a positive int"),
        ({"units": 2, "estimator": "bogus"}, "unknown estimator 'bogus'"),
        ({"units": 2, "kl_weight": -1.0}, "`kl_weight` must be a finite number >= 0"),
        ({"units": 2, "init_scale": 0.0}, "`init_scale` must be finite and greater than `min_scale`"),
        ({"units": 2, "prior": "nope"}, "Unknown prior 'nope'"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match) as info:
        DenseFlipout(**kwargs, name="my_dense")
    if "units" not in match:
        assert "DenseFlipout 'my_dense'" in str(info.value)


def test_bad_inputs_name_the_layer():
    layer = DenseFlipout(3, name="flip")
    with pytest.raises(ValueError, match="flip"):
        layer(np.ones((4,), "float32"))  # rank 1: expected rank >= 2
    layer(np.ones((2, 4), "float32"))
    with pytest.raises(ValueError, match=r"flip.*expected axis -1 of input shape to have value 4"):
        layer(np.ones((2, 5), "float32"))  # feature size changed after build
    with pytest.raises(TypeError, match="DenseFlipout 'flip' expects numeric"):
        layer(tf.constant([["a", "b", "c", "d"]]))


def test_integer_inputs_are_cast():
    layer = DenseFlipout(3, seed=0)
    out = layer(np.arange(8, dtype="int32").reshape(2, 4))
    assert out.dtype == tf.float32
    with bayesflip.posterior_mean(layer):
        np.testing.assert_allclose(
            layer(np.arange(8, dtype="int32").reshape(2, 4)).numpy(),
            layer(np.arange(8, dtype="float32").reshape(2, 4)).numpy(),
        )


@pytest.mark.parametrize("estimator", ["flipout", "shared", "local"])
def test_all_zero_input_rows_give_finite_gradients(estimator):
    # A blank example (an all-zero row) has zero pre-activation variance under the
    # local estimator, where d sqrt(v)/dv is infinite; the gradient must stay finite.
    layer = DenseFlipout(3, estimator=estimator, kl_weight=0.0, seed=0)
    x = np.zeros((4, 5), "float32")
    x[1] = 1.0
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))  # a non-zero upstream gradient at the blank rows
    grads = tape.gradient(loss, layer.trainable_variables)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    rho_grad = grads[[v.path for v in layer.trainable_variables].index(layer.kernel_posterior.rho.path)]
    assert np.abs(rho_grad.numpy()).sum() > 0  # the non-zero row still trains the scale

"""EmbeddingFlipout."""

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.layers import EmbeddingFlipout, LSTMFlipout
from tests.layers.helpers import check_variational_layer, monte_carlo_moments


def _np(t):
    return keras.ops.convert_to_numpy(t)


@pytest.mark.parametrize("estimator", ["flipout", "shared"])
def test_shared_layer_checks(estimator):
    check_variational_layer(
        lambda **kw: EmbeddingFlipout(6, 3, estimator=estimator, **kw), (4, 5), input_dtype="int32"
    )


def test_posterior_mean_equals_keras_embedding_and_mask():
    ids = np.array([[1, 2, 0, 0], [5, 5, 4, 0]])
    layer = EmbeddingFlipout(6, 3, mask_zero=True, seed=0)
    reference = keras.layers.Embedding(6, 3, mask_zero=True)
    layer.build(ids.shape)
    reference.build(ids.shape)
    reference.set_weights([_np(layer.embeddings_posterior.loc)])
    model = keras.Sequential([keras.Input((4,), dtype="int32"), layer])
    with bayesflip.posterior_mean(model):
        np.testing.assert_array_equal(_np(model(ids)), _np(reference(ids)))
    np.testing.assert_array_equal(_np(layer.compute_mask(ids)), _np(reference.compute_mask(ids)))
    assert layer.compute_output_shape(ids.shape) == (2, 4, 3)


def test_mask_reaches_a_recurrent_layer():
    """Padding ids are skipped: the output equals the LSTM run on the unpadded prefix."""
    ids = np.array([[3, 1, 0, 0], [2, 4, 4, 1]])
    emb, lstm = EmbeddingFlipout(5, 3, mask_zero=True, seed=1), LSTMFlipout(2, seed=0)
    model = keras.Sequential([keras.Input((4,), dtype="int32"), emb, lstm])
    with bayesflip.posterior_mean(model):
        full = _np(model(ids))
        prefix = _np(lstm(emb(ids[:1, :2])))
        unmasked = _np(lstm(_np(emb(ids[:1]))))
    np.testing.assert_allclose(full[:1], prefix, rtol=1e-5, atol=1e-6)
    assert not np.allclose(full[:1], unmasked, atol=1e-5)


def test_marginal_moments_match_posterior_and_repeated_tokens_share_a_row():
    batch, calls = 64, 200
    ids = np.tile(np.array([[2, 4, 2]]), (batch, 1))
    layer = EmbeddingFlipout(5, 3, init_scale=0.4, seed=3, embeddings_initializer="random_normal")
    layer.build(ids.shape)
    mean, var, samples = monte_carlo_moments(layer, ids, calls)
    loc = _np(layer.embeddings_posterior.loc)[[2, 4, 2]]
    scale2 = _np(layer.embeddings_posterior.scale())[[2, 4, 2]] ** 2
    n = batch * calls
    assert np.all(np.abs(mean - loc) <= 5 * np.sqrt(scale2 / n))
    # each output is a single N(loc, scale²) entry: 200 independent ΔW draws
    # give a relative standard error of 0.1 per element; 0.35 ≈ 3.5 of them
    np.testing.assert_allclose(var, scale2, rtol=0.35)
    np.testing.assert_allclose(var.mean(), scale2.mean(), rtol=0.15)
    # a token repeated within an example uses the same weight row ...
    np.testing.assert_array_equal(samples[:, :, 0], samples[:, :, 2])
    # ... while examples of a batch are decorrelated by their signs
    dev = samples[:, :, 1] - loc[1]
    corr = np.mean(dev[:, 0] * dev[:, 1]) / np.sqrt(np.mean(dev[:, 0] ** 2) * np.mean(dev[:, 1] ** 2))
    assert abs(corr) < 0.15, corr


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: EmbeddingFlipout(0, 3), "input_dim"),
        (lambda: EmbeddingFlipout(4, 2.5), "output_dim"),
        (lambda: EmbeddingFlipout(4, 2, estimator="local"), "estimator"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_inputs():
    layer = EmbeddingFlipout(4, 2, seed=0)
    with pytest.raises(TypeError, match="integer ids"):
        layer(np.array([["a", "b"]]))


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = EmbeddingFlipout(5, 3, seed=0)
    y = layer(np.array([[1, 2, 4]]))
    assert y.dtype == "float16" and layer.losses[0].dtype == "float32"
    assert layer.embeddings_posterior.loc.dtype == "float32"

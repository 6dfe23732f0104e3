"""to_bayesian on keras.applications networks users deploy: every convolution, depthwise and dense layer
becomes variational, normalisation layers stay deterministic, and the posterior mean is the original net."""

import warnings

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.convert import to_bayesian

NORMALISATION = ("BatchNormalization", "Normalization")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["MobileNetV2", "EfficientNetB0"])
def test_every_weighted_layer_but_normalisation_converts_with_posterior_mean_equality(name):
    keras.utils.set_random_seed(0)
    det = getattr(keras.applications, name)(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bnn = to_bayesian(det, kl_weight=1e-4)
    weighted = [layer for layer in det.layers if layer.weights]
    normalisation = [layer for layer in weighted if type(layer).__name__ in NORMALISATION]
    depthwise = [layer for layer in weighted if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert depthwise  # the layers that stayed deterministic before the depthwise flipout layers
    assert len(bayesflip.variational_layers(bnn)) == len(weighted) - len(normalisation)
    messages = " ".join(str(w.message) for w in caught)
    for layer in weighted:
        if layer not in normalisation:
            assert layer.name not in messages, f"{name}: {layer.name} reported as left deterministic"
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    with bayesflip.posterior_mean(bnn):
        got = bnn.predict(x, verbose=0)
    np.testing.assert_allclose(got, det.predict(x, verbose=0), rtol=1e-5, atol=1e-5)

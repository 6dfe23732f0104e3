"""The ResNet-20 benchmark's nets (with and without batch normalisation) and its rendered verdict."""

from __future__ import annotations

import keras
import pytest

from bayesflip.layers import Conv2DFlipout, DenseFlipout
from benchmarks import bench_resnet20, render


def _count(model: keras.Model, cls) -> int:
    return sum(type(layer) is cls for layer in model.layers)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_resnet20_has_21_convolutions_and_batch_norm_only_when_asked(batch_norm):
    det = bench_resnet20.keras_model(False, batch_norm)
    bnn = bench_resnet20.keras_model(True, batch_norm)
    # He et al. 2016 §4.2: a stem, 3 stages × 3 blocks × 2, and the 2 projection shortcuts
    assert _count(det, keras.layers.Conv2D) == 21 and _count(bnn, Conv2DFlipout) == 21
    assert _count(det, keras.layers.Dense) == 1 and _count(bnn, DenseFlipout) == 1
    expected_bn = 21 if batch_norm else 0
    assert _count(det, keras.layers.BatchNormalization) == expected_bn
    assert _count(bnn, keras.layers.BatchNormalization) == expected_bn
    conv_weights = sum(
        l.kernel.shape.num_elements() for l in det.layers if isinstance(l, keras.layers.Conv2D)
    )
    bn_weights = 4 * sum(
        l.gamma.shape[0] for l in det.layers if isinstance(l, keras.layers.BatchNormalization)
    )
    assert det.count_params() == conv_weights + 64 * 10 + 10 + bn_weights  # no conv biases
    assert det.output_shape == bnn.output_shape == (None, 10)


def _run(batch_norm, update, keras_ms, bayesflip_ms, tfp_ms, tf_keras_ms):
    ms = {
        "keras": keras_ms,
        "bayesflip_flipout": bayesflip_ms,
        "tfp_flipout": tfp_ms,
        "tf_keras": tf_keras_ms,
    }
    ratios = {
        "bayesflip_over_keras": bayesflip_ms / keras_ms,
        "tfp_over_keras": tfp_ms / keras_ms,
        "tfp_over_bayesflip": tfp_ms / bayesflip_ms,
        "tfp_over_tf_keras": tfp_ms / tf_keras_ms,
        "tf_keras_over_keras": tf_keras_ms / keras_ms,
    }
    return {"batch_norm": batch_norm, "update": update, "batch_size": 128, "median_ms": ms, "ratios": ratios}


def test_verdict_names_batch_norm_when_the_layers_alone_are_faster_than_tfps():
    runs = [_run(True, "adam", 260, 450, 410, 190), _run(False, "adam", 180, 380, 395, 180)]
    text = render.resnet20_verdict(runs)
    assert "1.73× its deterministic Keras net" in text and "TFP ÷ bayesflip 0.91" in text
    assert "TFP ÷ bayesflip 1.04 (bayesflip's step no slower)" in text
    assert "cost the Keras 3 net 80 ms a step and the tf_keras net 10 ms" in text
    assert text.endswith(
        "The gap is Keras 3's batch normalisation: bayesflip's flipout layers alone are no slower than TFP's."
    )


def test_verdict_does_not_blame_batch_norm_when_tfps_layers_are_faster_too():
    runs = [_run(True, "adam", 260, 450, 410, 190), _run(False, "adam", 180, 400, 380, 180)]
    text = render.resnet20_verdict(runs)
    assert "(TFP's step no slower)" in text
    assert text.endswith("Even so, TFP's flipout layers are the faster ones here.")


def test_verdict_when_bayesflip_is_faster_with_batch_norm():
    text = render.resnet20_verdict([_run(True, "adam", 260, 400, 410, 190)])
    assert text.endswith("and bayesflip's step is the faster one.")

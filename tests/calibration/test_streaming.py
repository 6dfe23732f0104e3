"""Streaming Keras metrics equal the calibration functions on the whole data set
(across batch splits, in model.compile/evaluate, after reset, after
serialization, and under MirroredStrategy on two logical CPUs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from bayesflip import calibration as cal
from tests.calibration.helpers import random_probs

ROOT = Path(__file__).resolve().parents[2]


def stream(metric, labels, preds, splits, weights=None):
    for idx in np.array_split(np.arange(len(labels)), splits):
        w = None if weights is None else weights[idx]
        metric.update_state(labels[idx], preds[idx], sample_weight=w)
    return float(metric.result())


@pytest.fixture
def data(rng):
    probs = random_probs(rng, 257, 5).astype("float32")
    labels = rng.integers(0, 5, size=257)
    return labels, probs


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("splits", [1, 7])
def test_streaming_ece_equals_function(data, norm, splits):
    labels, probs = data
    got = stream(cal.ExpectedCalibrationError(num_bins=12, norm=norm), labels, probs, splits)
    assert got == pytest.approx(
        cal.expected_calibration_error(labels, probs, num_bins=12, norm=norm), rel=1e-6
    )


def test_streaming_classwise_and_label_formats(data):
    labels, probs = data
    ref = cal.classwise_calibration_error(labels, probs, num_bins=8)
    m = cal.ExpectedCalibrationError(num_bins=8, classwise=True, num_classes=5)
    assert stream(m, labels, probs, 4) == pytest.approx(ref, rel=1e-6)
    onehot = np.eye(5, dtype="float32")[labels]
    m = cal.ExpectedCalibrationError(num_bins=8, classwise=True, num_classes=5)
    assert stream(m, onehot, probs, 3) == pytest.approx(ref, rel=1e-6)
    m = cal.ExpectedCalibrationError(num_bins=8)
    ref_top = cal.expected_calibration_error(labels, probs, num_bins=8)
    assert stream(m, labels[:, None].astype("float32"), probs, 3) == pytest.approx(ref_top, rel=1e-6)


def test_streaming_brier_and_nll_equal_functions(data, rng):
    labels, probs = data
    logits = rng.normal(size=probs.shape).astype("float32") * 3
    assert stream(cal.BrierScore(), labels, probs, 5) == pytest.approx(
        cal.brier_score(labels, probs), rel=1e-6
    )
    assert stream(cal.NegativeLogLikelihood(), labels, probs, 5) == pytest.approx(
        cal.negative_log_likelihood(labels, probs), rel=1e-6
    )
    assert stream(cal.BrierScore(from_logits=True), labels, logits, 2) == pytest.approx(
        cal.brier_score(labels, logits, from_logits=True), rel=1e-6
    )
    assert stream(cal.NegativeLogLikelihood(from_logits=True), labels, logits, 2) == pytest.approx(
        cal.negative_log_likelihood(labels, logits, from_logits=True), rel=1e-6
    )
    assert stream(cal.ExpectedCalibrationError(from_logits=True), labels, logits, 2) == pytest.approx(
        cal.expected_calibration_error(labels, logits, from_logits=True), rel=1e-6
    )


def test_sample_weights_equal_repeated_examples(data, rng):
    labels, probs = data
    w = rng.integers(0, 3, size=len(labels))
    rep = np.repeat(np.arange(len(labels)), w)
    for metric, func in [
        (
            cal.ExpectedCalibrationError(num_bins=9),
            lambda y, p: cal.expected_calibration_error(y, p, num_bins=9),
        ),
        (cal.BrierScore(), cal.brier_score),
        (cal.NegativeLogLikelihood(), cal.negative_log_likelihood),
    ]:
        got = stream(metric, labels, probs, 3, weights=w.astype("float32"))
        assert got == pytest.approx(func(labels[rep], probs[rep]), rel=1e-6)


def test_reset_state_forgets_previous_data(data):
    labels, probs = data
    m = cal.ExpectedCalibrationError(num_bins=10)
    stream(m, labels[:100], probs[:100], 2)
    m.reset_state()
    assert float(m.result()) == 0.0
    got = stream(m, labels[100:], probs[100:], 2)
    assert got == pytest.approx(
        cal.expected_calibration_error(labels[100:], probs[100:], num_bins=10), rel=1e-6
    )


def test_metrics_in_compile_evaluate_and_saved_model(tmp_path, rng):
    x = rng.normal(size=(150, 6)).astype("float32")
    y = rng.integers(0, 3, size=150)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(
        loss="sparse_categorical_crossentropy",
        metrics=[
            cal.ExpectedCalibrationError(num_bins=7, name="ece"),
            cal.BrierScore(),
            cal.NegativeLogLikelihood(),
        ],
    )
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    probs = model.predict(x, verbose=0)
    result = model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert result["ece"] == pytest.approx(cal.expected_calibration_error(y, probs, num_bins=7), rel=1e-5)
    assert result["brier"] == pytest.approx(cal.brier_score(y, probs), rel=1e-5)
    assert result["nll"] == pytest.approx(cal.negative_log_likelihood(y, probs), rel=1e-5)
    # a second evaluate resets the state (no accumulation across calls)
    again = model.evaluate(x[:50], y[:50], batch_size=16, verbose=0, return_dict=True)
    assert again["ece"] == pytest.approx(
        cal.expected_calibration_error(y[:50], probs[:50], num_bins=7), rel=1e-5
    )
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    reloaded = loaded.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    assert reloaded["ece"] == pytest.approx(result["ece"], rel=1e-6)


@pytest.mark.parametrize(
    "metric",
    [
        cal.ExpectedCalibrationError(
            num_bins=4, norm="l2", classwise=True, num_classes=3, from_logits=True, name="cw"
        ),
        cal.BrierScore(from_logits=True, name="b"),
        cal.NegativeLogLikelihood(name="n"),
    ],
)
def test_config_round_trip(metric):
    config = metric.get_config()
    clone = type(metric).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(restored) is type(metric) and restored.get_config() == config
    labels = np.array([0, 2, 1])
    logits = np.array([[2.0, 0.0, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]], "float32")
    metric.update_state(labels, logits)
    restored.update_state(labels, logits)
    assert float(restored.result()) == pytest.approx(float(metric.result()), rel=1e-12)


def test_streaming_errors():
    with pytest.raises(ValueError, match=r"ExpectedCalibrationError 'ece'.*classwise=True.*num_classes"):
        cal.ExpectedCalibrationError(classwise=True)
    with pytest.raises(ValueError, match=r"num_bins"):
        cal.ExpectedCalibrationError(num_bins=0)
    with pytest.raises(ValueError, match=r"norm"):
        cal.ExpectedCalibrationError(norm="l0")
    m = cal.ExpectedCalibrationError(num_bins=4, num_classes=3)
    with pytest.raises(ValueError, match=r"built for 3 classes"):
        m.update_state([0], [[0.5, 0.5]])
    with pytest.raises(
        ValueError, match=r"BrierScore 'brier' expects predictions of shape \(batch, num_classes\)"
    ):
        cal.BrierScore().update_state([0], [0.5])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"labels must be < 2"):
        cal.BrierScore().update_state([0, 2], [[0.5, 0.5], [0.5, 0.5]])


@pytest.mark.slow
def test_streaming_metrics_under_mirrored_strategy_two_logical_cpus():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "calibration" / "mirrored_metrics_script.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT ") :])
    assert out["num_replicas"] == 2
    for key, ref in out["reference"].items():
        assert out["evaluated"][key] == pytest.approx(ref, rel=1e-5), key
    assert out["custom_loop_ece"] == pytest.approx(out["reference"]["ece"], rel=1e-5)
    # both replicas accumulated part of the data; the read sums them
    counts = out["per_replica_counts"]
    assert len(counts) == 2 and all(c > 0 for c in counts) and sum(counts) == 203

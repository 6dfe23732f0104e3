"""Run by tests/calibration/test_streaming.py in a fresh Python process.

TensorFlow can split the CPU into logical devices only before it initializes
them, which another test in a shared pytest process may already have done; so
this script configures two logical CPUs at import, evaluates the streaming
calibration metrics under MirroredStrategy (``model.evaluate`` and a custom
``strategy.run`` loop) and prints one JSON line with the streamed values and the
functions' values on the whole data set.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bayesflip import calibration as cal  # noqa: E402


def main() -> dict:
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    rng = np.random.default_rng(0)
    n, d, k = 203, 5, 4  # odd size: replicas and the last batch get unequal shares
    x = rng.normal(size=(n, d)).astype("float32")
    y = rng.integers(0, k, size=n).astype("int32")
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(k, activation="softmax")])
        model.compile(
            loss="sparse_categorical_crossentropy",
            metrics=[
                cal.ExpectedCalibrationError(num_bins=10, name="ece"),
                cal.ExpectedCalibrationError(num_bins=10, norm="max", name="mce"),
                cal.ExpectedCalibrationError(num_bins=6, classwise=True, num_classes=k, name="cw"),
                cal.BrierScore(name="brier"),
                cal.NegativeLogLikelihood(name="nll"),
            ],
        )
    probs = model.predict(x, batch_size=64, verbose=0)
    reference = {
        "ece": cal.expected_calibration_error(y, probs, num_bins=10),
        "mce": cal.expected_calibration_error(y, probs, num_bins=10, norm="max"),
        "cw": cal.classwise_calibration_error(y, probs, num_bins=6),
        "brier": cal.brier_score(y, probs),
        "nll": cal.negative_log_likelihood(y, probs),
    }
    evaluated = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)

    # custom loop: each replica updates its own copy of the statistics
    with strategy.scope():
        metric = cal.ExpectedCalibrationError(num_bins=10)
    dataset = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices((x, y, probs)).batch(40)
    )

    @tf.function
    def step(batch):
        def replica_fn(xb, yb, pb):
            metric.update_state(yb, pb)

        strategy.run(replica_fn, args=batch)

    for batch in dataset:
        step(batch)
    per_replica_counts = [
        float(np.sum(v.numpy())) for v in strategy.experimental_local_results(metric.counts._value)
    ]
    return {
        "num_replicas": strategy.num_replicas_in_sync,
        "reference": reference,
        "evaluated": {key: float(evaluated[key]) for key in reference},
        "custom_loop_ece": float(metric.result()),
        "per_replica_counts": per_replica_counts,
    }


if __name__ == "__main__":
    sys.stdout.write("RESULT " + json.dumps(main()) + "\n")

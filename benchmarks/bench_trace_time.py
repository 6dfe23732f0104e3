"""Tracing cost of TFP's LeNet-5 example: bayesflip vs ``tfp.layers`` vs deterministic Keras 3.

The first epoch of ``model.fit`` traces and compiles the training step; the
second runs it. *Trace overhead* = first epoch − second epoch, measured for
each framework in its own fresh process (so no framework pays for another's
imports or caches), the processes interleaved over ``--reps`` rounds, median
reported.

Frameworks: ``bayesflip`` and deterministic ``keras`` (Keras 3), ``tfp``
(``tfp.layers``) and deterministic ``tf_keras`` (Keras 2, which TFP's layers
require): the difference of each Bayesian framework to the deterministic net of
its own Keras separates the layers' tracing from the Keras version's.

Model: the LeNet-5 of TFP's ``bayesian_neural_network.py`` example — three
5×5 flipout convolutions (6, 16, 120 filters, ``same`` padding, ReLU) with 2×2
max-pooling between them, then flipout dense 84 (ReLU) and 10 (logits); Adam,
sparse cross-entropy from logits, accuracy metric. Data: ``--examples`` random
28×28×1 images and labels (generated; tracing does not depend on the values),
batch 128. TFP runs on ``tf_keras`` (Keras 2), as TFP's layers require;
bayesflip and the deterministic net on Keras 3.

Usage: ``python -m benchmarks run trace_time [--reps 5]``; writes
``trace_time.json`` into the output folder (see ``benchmarks/_meta.py``). One worker run:
``python -m benchmarks.bench_trace_time --worker bayesflip``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks._meta import ROOT, output_dir, write_json

FRAMEWORKS = ("keras", "bayesflip", "tf_keras", "tfp")


def _tf_keras_model(bayesian: bool):
    import tf_keras as k

    if bayesian:
        import tensorflow_probability as tfp

        Conv, Dense = tfp.layers.Convolution2DFlipout, tfp.layers.DenseFlipout
    else:
        Conv, Dense = k.layers.Conv2D, k.layers.Dense
    model = k.Sequential(
        [
            k.Input((28, 28, 1)),
            Conv(6, 5, padding="SAME", activation="relu"),
            k.layers.MaxPooling2D(2, 2, padding="SAME"),
            Conv(16, 5, padding="SAME", activation="relu"),
            k.layers.MaxPooling2D(2, 2, padding="SAME"),
            Conv(120, 5, padding="SAME", activation="relu"),
            k.layers.Flatten(),
            Dense(84, activation="relu"),
            Dense(10),
        ]
    )
    model.compile(
        k.optimizers.Adam(1e-3),
        k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _keras3_model(framework: str, num_examples: int):
    import keras

    if framework == "bayesflip":
        from bayesflip.layers import Conv2DFlipout as Conv
        from bayesflip.layers import DenseFlipout as Dense

        kwargs = {"kl_weight": 1.0 / num_examples}
    else:
        Conv, Dense, kwargs = keras.layers.Conv2D, keras.layers.Dense, {}
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            Conv(6, 5, padding="same", activation="relu", **kwargs),
            keras.layers.MaxPooling2D(2, 2, padding="same"),
            Conv(16, 5, padding="same", activation="relu", **kwargs),
            keras.layers.MaxPooling2D(2, 2, padding="same"),
            Conv(120, 5, padding="same", activation="relu", **kwargs),
            keras.layers.Flatten(),
            Dense(84, activation="relu", **kwargs),
            Dense(10, **kwargs),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def worker(framework: str, num_examples: int) -> dict:
    """Build the model, run three epochs, return the epoch times (one fresh process)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    x = np.random.default_rng(0).normal(size=(num_examples, 28, 28, 1)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, size=num_examples)
    if framework in ("tfp", "tf_keras"):
        model = _tf_keras_model(bayesian=framework == "tfp")
    else:
        model = _keras3_model(framework, num_examples)
    epochs = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=128, verbose=0)
        epochs.append(time.perf_counter() - t0)
    return {"framework": framework, "epochs": epochs, "trace_overhead": epochs[0] - epochs[1]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--worker", choices=FRAMEWORKS)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, 128 examples")
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.examples)))
        return {}
    output_dir(parser, args)
    if args.quick:
        args.reps, args.examples = 1, 128
    runs = {f: [] for f in FRAMEWORKS}
    for rep in range(args.reps):
        for framework in FRAMEWORKS:  # interleaved: load changes hit every framework alike
            out = (
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_trace_time",
                        "--worker",
                        framework,
                        "--examples",
                        str(args.examples),
                    ],
                    check=True,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            runs[framework].append(json.loads(out))
            print(
                f"rep {rep}: {framework:9s} trace overhead {runs[framework][-1]['trace_overhead']:.2f} s",
                flush=True,
            )
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    summary = {f: statistics.median(r["trace_overhead"] for r in runs[f]) for f in FRAMEWORKS}
    result = {
        "model": "TFP's LeNet-5 example (3 flipout conv + 2 flipout dense), batch 128, Adam",
        "examples": args.examples,
        "reps": args.reps,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "tensorflow_probability": tfp.__version__,
        },
        "median_trace_overhead_s": summary,
        "ratio_bayesflip_to_tfp": summary["bayesflip"] / summary["tfp"],
        "ratio_bayesflip_to_keras": summary["bayesflip"] / summary["keras"],
        # each Bayesian framework's extra tracing over the deterministic net of its own Keras
        "overhead_over_own_keras_s": {
            "bayesflip": summary["bayesflip"] - summary["keras"],
            "tfp": summary["tfp"] - summary["tf_keras"],
        },
        "runs": runs,
    }
    result = write_json(os.path.join(args.output, "trace_time.json"), result, args)
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("median_trace_overhead_s", "ratio_bayesflip_to_tfp", "overhead_over_own_keras_s")
            }
        )
    )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])

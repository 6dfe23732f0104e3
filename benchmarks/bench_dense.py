"""Training-step time of a 512-512-10 MLP: bayesflip DenseFlipout vs keras Dense vs TFP.

Input width 512, hidden layer 512, output 10 (two weight matrices 512×512 and
512×10). One process; the three models' steps are interleaved (round-robin)
and the median of many steps is reported, as ratios to the deterministic step.
TFP's ``tfp.layers.DenseFlipout`` only runs on ``tf_keras`` (Keras 2), so its
model is a ``tf_keras`` model; every model trains with a compiled
``tf.function`` step (Adam, sparse categorical cross-entropy).

Usage: ``python -m benchmarks run dense [--quick] [--output DIR] [--steps 40] [--batch-sizes 256 1024]``
Writes ``dense.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.layers import DenseFlipout  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402
from benchmarks._steps import interleaved, summarize, train_step  # noqa: E402

IN, HIDDEN, OUT = 512, 512, 10


def keras_step(model):
    return train_step(
        model, keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )


def deterministic_model():
    return keras.Sequential(
        [keras.Input((IN,)), keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(OUT)]
    )


def bayesflip_model(estimator="flipout"):
    return keras.Sequential(
        [
            keras.Input((IN,)),
            DenseFlipout(HIDDEN, activation="relu", estimator=estimator, kl_weight=1e-4, seed=1),
            DenseFlipout(OUT, estimator=estimator, kl_weight=1e-4, seed=2),
        ]
    )


def tfp_step():
    import tensorflow_probability as tfp
    import tf_keras

    n = 1e4
    kl = lambda q, p, _: tfp.distributions.kl_divergence(q, p) / n  # noqa: E731
    model = tf_keras.Sequential(
        [
            tf_keras.Input((IN,)),
            tfp.layers.DenseFlipout(HIDDEN, activation="relu", kernel_divergence_fn=kl),
            tfp.layers.DenseFlipout(OUT, kernel_divergence_fn=kl),
        ]
    )
    return train_step(
        model, tf_keras.optimizers.Adam(1e-3), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )


def measure(batch_size: int, steps: int, warmup: int = 5) -> dict:
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, IN)).astype("float32"))
    y = tf.constant(rng.integers(0, OUT, size=batch_size))
    runners = {
        "keras_dense": keras_step(deterministic_model()),
        "bayesflip_flipout": keras_step(bayesflip_model("flipout")),
        "bayesflip_shared": keras_step(bayesflip_model("shared")),
        "bayesflip_local": keras_step(bayesflip_model("local")),
    }
    try:
        runners["tfp_flipout"] = tfp_step()
    except Exception as err:  # pragma: no cover - TFP missing or broken
        print(f"TFP unavailable: {err}")
    med = summarize(interleaved(runners, dict.fromkeys(runners, (x, y)), steps, warmup), {})["median_ms"]
    base = med["keras_dense"]
    ratios = {k: v / base for k, v in med.items()}
    result = {"batch_size": batch_size, "steps": steps, "median_ms": med, "ratio_to_keras_dense": ratios}
    if "tfp_flipout" in med:
        result["tfp_over_bayesflip_flipout"] = med["tfp_flipout"] / med["bayesflip_flipout"]
    return result


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps, batch 32")
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.steps, args.batch_sizes = 3, [32]
    results = []
    for bs in args.batch_sizes:
        r = measure(bs, args.steps)
        results.append(r)
        print(f"batch {bs}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["median_ms"].items()))
        print(
            "  ratio to keras Dense: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in r["ratio_to_keras_dense"].items())
        )
        if "tfp_over_bayesflip_flipout" in r:
            print(f"  TFP flipout / bayesflip flipout: {r['tfp_over_bayesflip_flipout']:.2f}x")
    write_json(
        os.path.join(args.output, "dense.json"),
        {"benchmark": "dense_512_512_10", "results": results},
        args,
        indent=2,
    )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

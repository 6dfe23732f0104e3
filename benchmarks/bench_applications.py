"""Converted keras.applications networks: flipout ÷ deterministic step time and peak memory, mixed precision, tf.data.

``keras.applications.ResNet50V2``, ``MobileNetV2`` and ``EfficientNetB0``
(``weights=None``, 64×64×3 inputs, 10 classes) made Bayesian with
``bayesflip.convert.to_bayesian`` (every convolution, depthwise and dense layer
becomes a flipout layer; normalisation layers stay deterministic by design).
For each network, each measurement in its own fresh subprocess:

- ``steps``: the deterministic and the converted model's compiled training
  steps (Keras 3 Adam, sparse categorical cross-entropy + KL with
  ``kl_weight = 1 / 50,000``) on one synthetic batch, interleaved round-robin
  after a warm-up: median step times, the ratio of medians and the median of
  per-round ratios; also the layer counts of the conversion;
- ``memory``: peak bytes held by TensorFlow's CPU allocator during training
  steps (``TF_CPU_ALLOCATOR_USE_BFC=true``, as ``bench_memory.py``), resting
  (weights, data) and peak, converted ÷ deterministic;
- ``mixed``: the ``steps`` measurement under ``keras.mixed_precision``'s
  ``mixed_float16`` policy (``--mixed-models``; on a CPU without float16
  kernels the absolute times are slow for both, the ratio is what is
  reported);
- ``tfdata``: one epoch of ``model.fit`` from a ``tf.data`` pipeline (shuffle,
  batch, prefetch) against the same data as NumPy arrays, for both models (each
  timed on its second epoch: the first traces), and ``mc_predict`` from the
  pipeline against arrays (``--tfdata-models``).

Usage: ``python -m benchmarks run applications [--steps 8] [--batch-size 32]``
(``--quick``: MobileNetV2 at 32×32, batch 2, 2 steps, into the scratch folder).
Writes ``applications.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence

from benchmarks._meta import output_dir, write_json

MODELS = ("ResNet50V2", "MobileNetV2", "EfficientNetB0")
CLASSES = 10
TRAIN_EXAMPLES = 50_000  # the KL weight 1 / N of a CIFAR-sized training set


def _build(name: str, size: int):
    """``(deterministic, converted, conversion counts)`` for ``keras.applications.<name>``."""
    import warnings

    import keras

    from bayesflip import variational_layers
    from bayesflip.convert import to_bayesian

    det = getattr(keras.applications, name)(
        weights=None, input_shape=(size, size, 3), classes=CLASSES, classifier_activation=None
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bnn = to_bayesian(det, kl_weight=1 / TRAIN_EXAMPLES)
    weighted = [layer for layer in det.layers if layer.weights]
    counts = {
        "layers_with_weights": len(weighted),
        "variational": len(variational_layers(bnn)),
        "deterministic_normalisation": sum("Normalization" in type(layer).__name__ for layer in weighted),
        "conversion_warnings": [str(w.message) for w in caught],
        "deterministic_weights": det.count_params(),
        "converted_weights": bnn.count_params(),
    }
    return det, bnn, counts


def _step(model):
    import keras

    from benchmarks._steps import train_step

    return train_step(
        model, keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )


def _batch(batch: int, size: int, n: int | None = None):
    import numpy as np

    rng = np.random.default_rng(0)
    n = n or batch
    return rng.normal(size=(n, size, size, 3)).astype("float32"), rng.integers(0, CLASSES, size=n)


def child_steps(name: str, size: int, batch: int, steps: int, warmup: int) -> dict:
    import tensorflow as tf

    from benchmarks._steps import interleaved, summarize

    det, bnn, counts = _build(name, size)
    x, y = (tf.constant(a) for a in _batch(batch, size))
    runners = {"deterministic": _step(det), "flipout": _step(bnn)}
    times = interleaved(runners, dict.fromkeys(runners, (x, y)), steps, warmup)
    return summarize(times, {"flipout_over_deterministic": ("flipout", "deterministic")}) | {"counts": counts}


def child_memory(name: str, size: int, batch: int, steps: int) -> dict:
    import tensorflow as tf

    det, bnn, _ = _build(name, size)
    x, y = (tf.constant(a) for a in _batch(batch, size))
    out = {}
    for label, model in (("deterministic", det), ("flipout", bnn)):
        step = _step(model)
        step(x, y).numpy()  # trace and allocate once
        tf.config.experimental.reset_memory_stats("CPU:0")
        resting = tf.config.experimental.get_memory_info("CPU:0")["current"]
        for _ in range(steps):
            step(x, y).numpy()
        out[label] = {"resting": resting, "peak": tf.config.experimental.get_memory_info("CPU:0")["peak"]}
    out["peak_ratio"] = out["flipout"]["peak"] / out["deterministic"]["peak"]
    transient = [out[k]["peak"] - out[k]["resting"] for k in ("flipout", "deterministic")]
    out["transient_ratio"] = transient[0] / transient[1]
    return out


def child_tfdata(name: str, size: int, batch: int, examples: int, samples: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from bayesflip.uncertainty import mc_predict

    det, bnn, _ = _build(name, size)
    x, y = _batch(batch, size, examples)
    out: dict = {}
    for label, model in (("deterministic", det), ("flipout", bnn)):
        model.compile(
            keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        pipeline = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(examples, seed=0).batch(batch)
        pipeline = pipeline.prefetch(tf.data.AUTOTUNE)
        epochs = {}
        for source, fit in (
            ("tfdata", lambda m=model, p=pipeline: m.fit(p, epochs=1, verbose=0)),
            ("arrays", lambda m=model: m.fit(x, y, epochs=1, batch_size=batch, verbose=0)),
        ):
            fit()  # the first epoch traces the train function for this input
            t0 = time.perf_counter()
            fit()
            epochs[f"fit_epoch_s_{source}"] = time.perf_counter() - t0
        out[label] = epochs
    images = tf.data.Dataset.from_tensor_slices(x).batch(batch).prefetch(tf.data.AUTOTUNE)
    mc_predict(bnn, x[:batch], num_samples=samples, batch_size=batch, from_logits=True)  # trace
    t0 = time.perf_counter()
    p_data = mc_predict(bnn, images, num_samples=samples, from_logits=True)
    out["mc_predict_s_tfdata"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    p_arrays = mc_predict(bnn, x, num_samples=samples, batch_size=batch, from_logits=True)
    out["mc_predict_s_arrays"] = time.perf_counter() - t0
    out["mc_predict_rows_sum_to_one"] = bool(
        np.allclose(p_data.sum(-1), 1, atol=1e-4) and np.allclose(p_arrays.sum(-1), 1, atol=1e-4)
    )
    out["fit_tfdata_over_arrays"] = {
        k: out[k]["fit_epoch_s_tfdata"] / out[k]["fit_epoch_s_arrays"] for k in ("deterministic", "flipout")
    }
    out["flipout_over_deterministic_fit_tfdata"] = (
        out["flipout"]["fit_epoch_s_tfdata"] / out["deterministic"]["fit_epoch_s_tfdata"]
    )
    return out


def run_child(kind: str, name: str, args: argparse.Namespace) -> dict:
    """Run one measurement in a fresh interpreter (its own allocator, dtype policy and traces)."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    if kind == "memory":
        env["TF_CPU_ALLOCATOR_USE_BFC"] = "true"
    cmd = [sys.executable, "-m", "benchmarks.bench_applications", "--child", kind, name]
    cmd += ["--size", str(args.size), "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup), "--examples", str(args.examples), "--samples", str(args.samples)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            return json.loads(line[len("RESULT") :])
    raise RuntimeError(f"bench_applications: the {kind} child for {name} failed:\n{proc.stderr[-3000:]}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--mixed-models", nargs="*", default=["MobileNetV2"], choices=MODELS)
    p.add_argument("--tfdata-models", nargs="*", default=["MobileNetV2"], choices=MODELS)
    p.add_argument("--size", type=int, default=64, help="input height and width")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8, help="interleaved timed steps per model")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--examples", type=int, default=256, help="examples of the tf.data epoch")
    p.add_argument("--samples", type=int, default=8, help="mc_predict draws in the tf.data measurement")
    p.add_argument("--quick", action="store_true", help="smoke run: MobileNetV2 at 32×32, batch 2, 2 steps")
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    p.add_argument("--child", nargs=2, metavar=("KIND", "MODEL"), help=argparse.SUPPRESS)
    return p


def _child_main(args: argparse.Namespace) -> None:
    kind, name = args.child
    if kind == "mixed":
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    if kind in ("steps", "mixed"):
        result = child_steps(name, args.size, args.batch_size, args.steps, args.warmup)
    elif kind == "memory":
        result = child_memory(name, args.size, args.batch_size, max(1, args.steps // 4))
    elif kind == "tfdata":
        result = child_tfdata(name, args.size, args.batch_size, args.examples, args.samples)
    else:
        raise ValueError(f"bench_applications: unknown child kind {kind!r}.")
    print("RESULT" + json.dumps(result))


def main(argv: Sequence[str] | None = None) -> dict:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.child:
        _child_main(args)
        return {}
    output_dir(parser, args)
    if args.quick:
        args.models, args.mixed_models, args.tfdata_models = ["MobileNetV2"], ["MobileNetV2"], ["MobileNetV2"]
        args.size, args.batch_size, args.steps, args.warmup, args.examples, args.samples = 32, 2, 2, 1, 4, 2
    results: dict = {}
    for name in args.models:
        r = {"steps": run_child("steps", name, args), "memory": run_child("memory", name, args)}
        if name in args.mixed_models:
            r["mixed_float16"] = run_child("mixed", name, args)
        if name in args.tfdata_models:
            r["tfdata"] = run_child("tfdata", name, args)
        results[name] = r
        c = r["steps"]["counts"]
        line = (
            f"{name}: {c['variational']} of {c['layers_with_weights']} weighted layers variational "
            f"({c['deterministic_normalisation']} normalisation layers deterministic); step "
            f"{r['steps']['median_paired_ratios']['flipout_over_deterministic']:.2f}x, peak memory "
            f"{r['memory']['peak_ratio']:.2f}x"
        )
        if "mixed_float16" in r:
            line += f", mixed_float16 step {r['mixed_float16']['median_paired_ratios']['flipout_over_deterministic']:.2f}x"
        if "tfdata" in r:
            t = r["tfdata"]
            line += f", tf.data fit epoch {t['flipout_over_deterministic_fit_tfdata']:.2f}x"
        print(line, flush=True)
    report = {
        "benchmark": "applications",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "input": [args.size, args.size, 3],
        "classes": CLASSES,
        "results": results,
    }
    write_json(os.path.join(args.output, "applications.json"), report, args, indent=2)
    return report


if __name__ == "__main__":
    main()

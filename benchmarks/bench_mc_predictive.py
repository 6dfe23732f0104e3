"""Monte Carlo predictive with T posterior samples: ``mc_predict`` vs T ``model.predict`` passes.

For the demo's flipout MLP (64-128-128-10, ``bayesflip.demo.build_bayesian_mlp``)
on the digits test set (360 examples) and for a wide 64-2048-2048-10 MLP, time

- ``mc_predict(model, x, num_samples=T)``: T independent forward passes inside one
  compiled ``tf.while_loop`` (one call per batch of inputs),
- ``mc_predict(..., jit_compile=True)``: the same loop compiled with XLA,
- T separate ``model.predict(x)`` passes (each a posterior sample), with
  ``batch_size=len(x)`` (one step per pass) and, for the demo's model, Keras'
  default ``batch_size=32``,
- T ``model.predict_on_batch(x)`` calls (no per-call data pipeline: the
  strictest baseline),

in one process, interleaved round-robin, reporting the median over repetitions
and the ratio ``mc_predict / predict-passes`` (the bar: <= 0.5 for the demo's
model). Both sides draw T independent posterior samples of every input.

Usage: ``python -m benchmarks run mc_predictive [--samples 32] [--reps 15] [--wide-reps 5]``
Writes ``mc_predictive.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.datasets import load_digits  # noqa: E402
from bayesflip.demo import build_bayesian_mlp  # noqa: E402
from bayesflip.uncertainty import mc_predict  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(model, x, num_samples: int, reps: int, with_batch32: bool = True) -> dict:
    n = len(x)
    contenders = {
        "mc_predict": lambda: mc_predict(model, x, num_samples=num_samples),
        "mc_predict_xla": lambda: mc_predict(model, x, num_samples=num_samples, jit_compile=True),
        "predict_passes_full_batch": lambda: [
            model.predict(x, batch_size=n, verbose=0) for _ in range(num_samples)
        ],
        "predict_on_batch_passes": lambda: [model.predict_on_batch(x) for _ in range(num_samples)],
    }
    if with_batch32:
        contenders["predict_passes_batch32"] = lambda: [
            model.predict(x, verbose=0) for _ in range(num_samples)
        ]
    for fn in contenders.values():  # warm up: trace/compile everything first
        fn()
    times = {name: [] for name in contenders}
    for _ in range(reps):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    med = {name: float(np.median(t)) for name, t in times.items()}
    ratios = {
        f"ratio_mc_vs_{name}": med["mc_predict"] / med[name] for name in med if not name.startswith("mc_")
    }
    ratios["ratio_mc_xla_vs_predict_passes_full_batch"] = (
        med["mc_predict_xla"] / med["predict_passes_full_batch"]
    )
    return {"median_seconds": med, **ratios, "reps": reps}


def wide_mlp(input_dim: int, num_classes: int, width: int, seed: int = 0) -> keras.Model:
    return build_bayesian_mlp(input_dim, num_classes, hidden=(width, width), seed=seed)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--wide-reps", type=int, default=5)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 samples, 2 repetitions, width 64")
    parser.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    args = parser.parse_args(argv)
    output_dir(parser, args, dest="out")
    if args.quick:
        args.samples, args.reps, args.wide_reps, args.width = 4, 2, 1, 64

    data = load_digits()
    x = data.x_test
    keras.utils.set_random_seed(0)
    results = {
        "setup": {
            "num_samples": args.samples,
            "test_examples": int(len(x)),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "note": "one process, interleaved round-robin, median over reps; CPU shared with other jobs",
        }
    }
    demo = build_bayesian_mlp(x.shape[1], 10, seed=0)
    results["demo_mlp_64_128_128_10"] = bench(demo, x, args.samples, args.reps)
    wide = wide_mlp(x.shape[1], 10, args.width)
    # (Keras' default batch_size=32 takes minutes per repetition here; left out for the wide model.)
    results[f"wide_mlp_64_{args.width}_{args.width}_10"] = bench(wide, x, args.samples, args.wide_reps, False)

    path = os.path.join(args.out, "mc_predictive.json")
    results = write_json(path, results, args, indent=2)
    for key, res in results.items():
        if key in ("setup", "meta"):
            continue
        med = res["median_seconds"]
        print(f"{key}: T={args.samples}, N={len(x)}")
        for name, sec in med.items():
            print(f"  {name:28s} {1e3 * sec:9.1f} ms")
        for name, ratio in res.items():
            if name.startswith("ratio_"):
                print(f"  {name:50s} {ratio:.3f}")
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])

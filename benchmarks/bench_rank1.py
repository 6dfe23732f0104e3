"""Cost of rank-1 layers: training-step time against Keras ``Dense``, and parameter counts.

A 512-512-10 MLP at batch 256, four models trained with the same compiled step
(Adam, sparse categorical cross-entropy), interleaved round-robin in one
process, medians of many steps:

- ``keras``: ``keras.layers.Dense`` (the reference);
- ``flipout``: ``DenseFlipout`` with the mean-field Gaussian posterior;
- ``rank1``: ``DenseFlipout(posterior=Rank1(K))``, examples split among the
  components (each example of the batch goes through one component);
- ``rank1_tiled``: the same layers on the batch repeated ``K`` times, so every
  component sees every example (the paper's training recipe; ``K`` × the work);
- ``rank1_shared_tiled``: the same with ``estimator="shared"`` (one draw of the factors
  per component and call, as Edward2; no per-example normal draws).

The bar of the rank-1 design: a tiled step costs at most ``1.2 · K`` Keras steps.
Also counts the parameters of the main job's MLP (64-128-128-10) with rank-1
layers against the deterministic net, for each ``K`` and with/without the
per-component bias.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from bayesflip.layers import DenseFlipout
from bayesflip.posteriors import Rank1
from benchmarks._meta import output_dir, write_json
from benchmarks._steps import train_step

IN, HIDDEN, OUT = 512, 512, 10


def _mlp(kind: str, k: int) -> keras.Model:
    if kind == "keras":
        layers = [keras.layers.Dense(HIDDEN, activation="relu"), keras.layers.Dense(OUT)]
    else:
        kw: dict = {} if kind == "flipout" else {"posterior": Rank1(num_components=k)}
        if kind == "rank1_shared":
            kw["estimator"] = "shared"
        layers = [
            DenseFlipout(HIDDEN, activation="relu", kl_weight=1e-4, seed=1, **kw),
            DenseFlipout(OUT, kl_weight=1e-4, seed=2, **kw),
        ]
    return keras.Sequential([keras.Input((IN,)), *layers])


def step_times(k: int, batch: int, steps: int, warmup: int = 5) -> dict:
    """Median seconds per training step of each model, interleaved."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, IN)).astype("float32"))
    y = tf.constant(rng.integers(0, OUT, size=batch).astype("int32"))
    x_tiled, y_tiled = tf.repeat(x, k, axis=0), tf.repeat(y, k, axis=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    runs = {}
    for name, kind, inputs in (
        ("keras", "keras", (x, y)),
        ("flipout", "flipout", (x, y)),
        ("rank1", "rank1", (x, y)),
        ("rank1_tiled", "rank1", (x_tiled, y_tiled)),
        ("rank1_shared_tiled", "rank1_shared", (x_tiled, y_tiled)),
    ):
        keras.utils.set_random_seed(0)
        step = train_step(_mlp(kind, k), keras.optimizers.Adam(1e-3), loss)
        for _ in range(warmup):
            step(*inputs)
        runs[name] = (step, inputs, [])
    for _ in range(steps):
        for step, inputs, times in runs.values():
            t = time.perf_counter()
            float(step(*inputs))
            times.append(time.perf_counter() - t)
    return {name: float(np.median(times)) for name, (_, _, times) in runs.items()}


def parameter_counts(ks: Sequence[int]) -> dict:
    """Parameters of the main job's MLP with rank-1 layers, ÷ the deterministic net's."""
    from bayesflip.demo import _parameters, build_bayesian_mlp, build_deterministic_mlp

    det = build_deterministic_mlp(64, 10).count_params()
    out: dict = {"deterministic": det}
    for k in ks:
        for bias in (True, False):
            model = build_bayesian_mlp(64, 10, posterior=Rank1(num_components=k, component_bias=bias))
            n = _parameters(model)
            out[f"rank1_K{k}{'' if bias else '_no_component_bias'}"] = {"params": n, "ratio": n / det}
    return out


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="a few steps (results go to scratch)")
    parser.add_argument("--output", default=None, help="folder of rank1.json (default: see benchmarks/_meta)")
    args = parser.parse_args(argv)
    output = output_dir(parser, args)
    steps = 5 if args.quick else args.steps
    result: dict = {
        "config": {"batch_size": args.batch_size, "steps": steps, "shape": [IN, HIDDEN, OUT]},
        "step_seconds": {},
        "ratios": {},
    }
    for k in args.components:
        times = step_times(k, args.batch_size, steps)
        result["step_seconds"][str(k)] = times
        result["ratios"][str(k)] = {
            name: t / times["keras"] for name, t in times.items() if name != "keras"
        } | {
            "rank1_tiled_per_component": times["rank1_tiled"] / (k * times["keras"]),
            "rank1_shared_tiled_per_component": times["rank1_shared_tiled"] / (k * times["keras"]),
        }
        print(f"K={k}: " + ", ".join(f"{n} {r:.2f}x" for n, r in result["ratios"][str(k)].items()))
    result["parameters"] = parameter_counts(args.components)
    return write_json(os.path.join(output, "rank1.json"), result, args)


if __name__ == "__main__":
    main()

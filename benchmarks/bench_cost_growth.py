"""How flipout's cost grows: DenseFlipout ÷ Keras Dense step time against width, batch size and depth.

A stack of ``depth`` square layers (``width → width``, ReLU between, linear
last) trained on random inputs and targets with the mean squared error and
Keras 3's Adam, in four versions built from one function:

- ``dense``: ``keras.layers.Dense`` (the denominator of every ratio);
- ``two_matmul``: each layer computes ``x W₁ + x W₂`` with two Dense kernels of
  the same shape — the arithmetic floor of flipout, which also runs two
  matmuls forward (``x W̄`` and ``(x ∘ S) ΔŴ``), two backward per input, and
  updates two weight-sized variables (``loc`` and ``rho``) with Adam;
- ``flipout``: ``bayesflip.layers.DenseFlipout`` with the library defaults;
- ``shared``: ``DenseFlipout(estimator="shared")`` — one ``ΔW`` for the batch,
  no per-example signs: flipout minus its sign path.

For each point of three sweeps (``--widths`` at ``--batch``/``--depth``,
``--batch-sizes`` at ``--width``/``--depth``, ``--depths`` at
``--width``/``--batch``), the four compiled ``tf.function`` steps run
interleaved round-robin in one process after a warm-up; reported per point:
the median step time of each and its ratio to ``dense`` (ratio of medians and
median of per-round ratios), and the *sampling share*
``(flipout − two_matmul) ÷ flipout``: the part of flipout's step that is not the
two-matmul arithmetic (drawing ``ε`` and the signs, the softplus of ``rho``, the
element-wise products and their gradients, the KL). Where the ratio is near
``two_matmul ÷ dense`` flipout is at its two-op limit; where the sampling share
is large the sampling path dominates.

Usage: ``python -m benchmarks run cost_growth [--steps 15]`` (``--quick``: tiny
layers, 2 steps, into the scratch folder). Writes ``cost_growth.json`` and
``cost_growth.png`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import os
import platform
from collections.abc import Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.layers import DenseFlipout  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402
from benchmarks._steps import interleaved, summarize, train_step  # noqa: E402

VARIANTS = ("dense", "two_matmul", "flipout", "shared")
#: kl_weight of the flipout layers: 1 / N for a training set of this size (its value does not change the cost).
TRAIN_EXAMPLES = 50_000


@keras.saving.register_keras_serializable(package="benchmarks")
class TwoMatmul(keras.layers.Layer):
    """``x W₁ + x W₂ + b``: two weight-sized kernels and two matmuls (flipout's arithmetic, no sampling)."""

    def __init__(self, units: int, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        self.k1 = self.add_weight(name="kernel_1", shape=shape, initializer="glorot_uniform")
        self.k2 = self.add_weight(name="kernel_2", shape=shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x):
        return self.activation(keras.ops.matmul(x, self.k1) + keras.ops.matmul(x, self.k2) + self.bias)


def stack(variant: str, width: int, depth: int) -> keras.Model:
    """``depth`` square layers of ``variant`` (ReLU between, linear last)."""
    layers: list = [keras.Input((width,))]
    for i in range(depth):
        activation = "relu" if i < depth - 1 else None
        if variant == "dense":
            layers.append(keras.layers.Dense(width, activation=activation))
        elif variant == "two_matmul":
            layers.append(TwoMatmul(width, activation=activation))
        elif variant in ("flipout", "shared"):
            layers.append(
                DenseFlipout(
                    width, activation=activation, estimator=variant, kl_weight=1 / TRAIN_EXAMPLES, seed=i
                )
            )
        else:
            raise ValueError(f"bench_cost_growth: unknown variant {variant!r}; expected one of {VARIANTS}.")
    return keras.Sequential(layers)


def measure(width: int, batch: int, depth: int, steps: int, warmup: int) -> dict:
    """One point: the four variants' steps interleaved; medians, ratios to ``dense``, sampling share."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch, width)).astype("float32"))
    y = tf.constant(rng.normal(size=(batch, width)).astype("float32"))
    runners = {
        v: train_step(stack(v, width, depth), keras.optimizers.Adam(1e-3), keras.losses.MeanSquaredError())
        for v in VARIANTS
    }
    runners["normal_draws"] = normal_draws(width, depth)
    times = interleaved(runners, dict.fromkeys(runners, (x, y)), steps, warmup)
    summary = summarize(times, {f"{v}_over_dense": (v, "dense") for v in VARIANTS if v != "dense"})
    med = summary["median_ms"]
    share = (med["flipout"] - med["two_matmul"]) / med["flipout"]
    draw_share = med["normal_draws"] / med["flipout"]
    return summary | {
        "width": width,
        "batch": batch,
        "depth": depth,
        "sampling_share": share,
        "normal_draw_share": draw_share,
    }


def normal_draws(width: int, depth: int):
    """A compiled step that only draws what a flipout step draws for its kernels: ``depth`` standard-normal
    ``width × width`` tensors from TensorFlow's stateless Philox kernel (the layers' ``ε``)."""
    seeds = tf.constant([[i, 7] for i in range(depth)], tf.int32)

    @tf.function
    def step(x, y):
        del x, y
        return tf.add_n(
            [tf.reduce_sum(tf.random.stateless_normal([width, width], seeds[i])) for i in range(depth)]
        )

    return step


def plot(sweeps: dict, path: str) -> None:
    """Three panels (width, batch, depth): each variant's step ÷ Dense's, with the 2× line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "flipout_over_dense": "flipout (DenseFlipout)",
        "shared_over_dense": "shared ΔW (no signs)",
        "two_matmul_over_dense": "two matmuls (flipout's arithmetic)",
    }
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, (axis, points) in zip(axes, sweeps.items()):
        xs = [p[axis] for p in points]
        for key, label in labels.items():
            ax.plot(xs, [p["median_paired_ratios"][key] for p in points], "o-", label=label)
        ax.axhline(2.0, color="k", ls=":", lw=1, label="2× (two-op limit)")
        ax.set_xscale("log", base=2)
        fixed = {k: points[0][k] for k in ("width", "batch", "depth") if k != axis}
        ax.set_xlabel(f"{axis} ({', '.join(f'{k} {v}' for k, v in fixed.items())})")
        ax.set_title(f"against {axis}")
    axes[0].set_ylabel("training-step time ÷ Keras Dense step (×)")
    axes[0].legend(fontsize=8)
    fig.suptitle("Cost of a DenseFlipout stack relative to Keras Dense (median of interleaved steps, CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--widths", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 512, 1024, 4096])
    p.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--width", type=int, default=1024, help="width of the batch and depth sweeps")
    p.add_argument("--batch", type=int, default=256, help="batch size of the width and depth sweeps")
    p.add_argument("--depth", type=int, default=2, help="depth of the width and batch sweeps")
    p.add_argument("--steps", type=int, default=15, help="interleaved timed steps per point")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smoke run: tiny layers, 2 steps")
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    return p


def main(argv: Sequence[str] | None = None) -> dict:
    parser = _parser()
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.widths, args.batch_sizes, args.depths = [8, 16], [4, 8], [1, 2]
        args.width, args.batch, args.depth, args.steps, args.warmup = 8, 4, 1, 2, 1
    sweeps: dict[str, list[dict]] = {"width": [], "batch": [], "depth": []}
    grid = {
        "width": [(w, args.batch, args.depth) for w in args.widths],
        "batch": [(args.width, b, args.depth) for b in args.batch_sizes],
        "depth": [(args.width, args.batch, d) for d in args.depths],
    }
    for axis, points in grid.items():
        for width, batch, depth in points:
            r = measure(width, batch, depth, args.steps, args.warmup)
            sweeps[axis].append(r)
            ratios = r["median_paired_ratios"]
            print(
                f"width {width:5d} batch {batch:5d} depth {depth}: dense {r['median_ms']['dense']:8.2f} ms; "
                f"flipout {ratios['flipout_over_dense']:.2f}x, shared {ratios['shared_over_dense']:.2f}x, "
                f"two matmuls {ratios['two_matmul_over_dense']:.2f}x; sampling share "
                f"{r['sampling_share']:.0%}",
                flush=True,
            )
    os.makedirs(args.output, exist_ok=True)
    figure = os.path.join(args.output, "cost_growth.png")
    plot(sweeps, figure)
    report = {
        "benchmark": "cost_growth",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "variants": {
            "dense": "keras.layers.Dense",
            "two_matmul": "x W1 + x W2 (two Dense-shaped kernels): flipout's arithmetic without sampling",
            "flipout": "bayesflip.layers.DenseFlipout (defaults)",
            "shared": "DenseFlipout(estimator='shared')",
        },
        "sampling_share": "(flipout - two_matmul) / flipout, of the median step times",
        "sweeps": sweeps,
        "figure": os.path.basename(figure),
    }
    write_json(os.path.join(args.output, "cost_growth.json"), report, args, indent=2)
    return report


if __name__ == "__main__":
    main()

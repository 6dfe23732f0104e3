"""Where a flipout training step's time goes: TensorFlow's profiler, op by op, beside Keras Dense.

The model and step of ``bench_dense`` (512-512-10 MLP, Adam, one compiled
``tf.function`` step). For each batch size, first the wall time of the
deterministic and the flipout step (interleaved, median), then each step under
``tf.profiler.experimental`` for ``--profile-steps`` steps. The profile's
host-CPU events of TensorFlow ops (``name:OpType``) are summed per step and
grouped: the matmuls, the optimizer (ops under ``adam/``), XLA computations, the ε draw
(``StatelessRandomNormalV2``), the seeds and flipout sign rows (Philox words and
the bit operations that spread them into signs), softplus and sigmoid, and the rest. An op's time
is the time its inter-op thread spent in it (including its Eigen shards), so the
sum can exceed the wall time on 2 cores.

Second part, the ε draw's alternatives for the 512×512 kernel (interleaved
medians of compiled calls): TensorFlow's ``StatelessRandomNormalV2`` (what
bayesflip draws with), the Philox words alone (the least any transform of them
can cost), and the same Box–Muller transform written in TensorFlow ops, and
compiled with XLA.

Usage: ``python -m benchmarks run step_profile [--batch-sizes 256 1024]``
Writes ``step_profile.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import shutil
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip import random as rnd  # noqa: E402
from bayesflip.posteriors import _gaussian as posteriors_gaussian  # noqa: E402
from benchmarks import bench_dense  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402
from benchmarks._steps import interleaved, summarize  # noqa: E402

#: The profiler's event for one run of an XLA computation on the CPU (bayesflip's RNG advance, and the
#: fused backward pass of large weights' draw and KL).
XLA_EVENT = "CpuExecutable::Execute"
#: The name scope of a Keras Adam optimizer's ops (``adam``, ``adam_1``, … one per instance).
_OPTIMIZER_SCOPE = re.compile(r"adam(_\d+)?")
#: Op types by group; an op under an optimizer's name scope is "optimizer" whatever its type.
GROUPS = {
    "matmul": ("MatMul", "_MklMatMul", "_MklNativeFusedMatMul", "BiasAddGrad", "BiasAdd"),
    "epsilon draw": ("StatelessRandomNormalV2",),
    "seeds, sign rows": (
        "StatelessRandomUniformFullIntV2",
        "LeftShift",
        "BitwiseAnd",
        "BitwiseOr",
        "Bitcast",
    ),
    "softplus, sigmoid": ("Softplus", "SoftplusGrad", "Sigmoid", "SigmoidGrad"),
}


def group_of(name: str) -> str:
    """The group of a profiled op event named ``scope/name:OpType``."""
    scope, _, op_type = name.rpartition(":")
    if any(_OPTIMIZER_SCOPE.fullmatch(part) for part in scope.split("/")[:-1]):
        return "optimizer"
    for group, types in GROUPS.items():
        if op_type in types:
            return group
    return "other"


def op_times(logdir: str, steps: int) -> dict[str, float]:
    """CPU milliseconds per step by group, from the XPlane file the profiler wrote into ``logdir``."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    if not files:
        raise RuntimeError(f"bench_step_profile: the profiler wrote no .xplane.pb under {logdir}.")
    space = xplane_pb2.XSpace()
    with open(files[0], "rb") as f:
        space.ParseFromString(f.read())
    totals: collections.Counter = collections.Counter()
    for plane in space.planes:
        if plane.name != "/host:CPU":
            continue
        for line in plane.lines:
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                # a TensorFlow op is ``scope/name:OpType``; runtime events use ``::`` or ``: ``
                if name.count(":") == 1 and ": " not in name:
                    totals[group_of(name)] += event.duration_ps
                elif name.startswith(XLA_EVENT):  # a compiled computation (no op event of its own)
                    totals["XLA computations"] += event.duration_ps
    return {group: ps / 1e9 / steps for group, ps in sorted(totals.items())}


def profile(step, x, y, steps: int) -> dict[str, float]:
    logdir = tempfile.mkdtemp(prefix="bayesflip_profile_")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            step(x, y).numpy()
        tf.profiler.experimental.stop()
        return op_times(logdir, steps)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def measure_step(batch_size: int, steps: int, profile_steps: int) -> dict:
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(batch_size, bench_dense.IN)).astype("float32"))
    y = tf.constant(rng.integers(0, bench_dense.OUT, size=batch_size))
    runners = {
        "keras_dense": bench_dense.keras_step(bench_dense.deterministic_model()),
        "bayesflip_flipout": bench_dense.keras_step(bench_dense.bayesflip_model("flipout")),
    }
    wall = summarize(interleaved(runners, dict.fromkeys(runners, (x, y)), steps), {})["median_ms"]
    ops = {name: profile(step, x, y, profile_steps) for name, step in runners.items()}
    return {
        "batch_size": batch_size,
        "wall_ms": wall,
        "wall_ratio": wall["bayesflip_flipout"] / wall["keras_dense"],
        "op_cpu_ms": ops,
        "op_cpu_total_ms": {name: sum(groups.values()) for name, groups in ops.items()},
    }


def box_muller(words: tf.Tensor, shape) -> tf.Tensor:
    """``tf.random.stateless_normal``'s transform of its Philox words (``BoxMullerFloat``), in TensorFlow ops."""
    mantissa = tf.bitwise.bitwise_and(words, tf.constant(0x7FFFFF, tf.uint32))
    floats = tf.bitcast(tf.bitwise.bitwise_or(mantissa, tf.constant(0x3F800000, tf.uint32)), tf.float32)
    pairs = tf.reshape(floats - 1.0, [-1, 2])
    radius = tf.sqrt(-2.0 * tf.math.log(tf.maximum(pairs[:, 0], 1.0e-7)))
    theta = (2.0 * np.pi) * pairs[:, 1]
    return tf.reshape(tf.stack([radius * tf.sin(theta), radius * tf.cos(theta)], axis=1), shape)


def measure_normal_draw(shape: tuple[int, int], repeats: int) -> dict:
    seed = tf.constant([3, 4], tf.int64)
    size = int(np.prod(shape))

    def words(s):
        return rnd._full_int(tf.constant([size], tf.int32), s, tf.uint32)

    transform_xla = tf.function(lambda w: box_muller(w, shape), jit_compile=True)
    calls = {
        "tf_stateless_normal": tf.function(lambda s: rnd.standard_normal(shape, s)),
        "philox_words_only": tf.function(words),
        "box_muller_tf_ops": tf.function(lambda s: box_muller(words(s), shape)),
        "box_muller_xla": tf.function(lambda s: transform_xla(words(s))),
        "empty_call": tf.function(lambda s: s),
    }
    reference = calls["tf_stateless_normal"](seed).numpy()
    max_difference = {
        name: float(np.max(np.abs(calls[name](seed).numpy() - reference)))
        for name in ("box_muller_tf_ops", "box_muller_xla")
    }
    medians = summarize(interleaved(calls, dict.fromkeys(calls, (seed,)), repeats), {})["median_ms"]
    return {"shape": list(shape), "median_ms": medians, "max_abs_difference_to_tf": max_difference}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=60, help="interleaved timed steps per model")
    parser.add_argument("--profile-steps", type=int, default=30, help="profiled steps per model")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per ε-draw variant")
    parser.add_argument("--quick", action="store_true", help="smoke run: batch 8, 3 steps, 10 calls")
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.batch_sizes, args.steps, args.profile_steps, args.repeats = [8], 3, 2, 10
    steps = []
    for batch_size in args.batch_sizes:
        r = measure_step(batch_size, args.steps, args.profile_steps)
        steps.append(r)
        print(f"batch {batch_size}: wall " + ", ".join(f"{k} {v:.2f} ms" for k, v in r["wall_ms"].items()))
        for name, groups in r["op_cpu_ms"].items():
            print(f"  {name} op CPU ms/step: " + ", ".join(f"{g} {v:.2f}" for g, v in groups.items()))
    normal = measure_normal_draw((bench_dense.IN, bench_dense.HIDDEN), args.repeats)
    print("ε draw 512×512: " + ", ".join(f"{k} {v:.2f} ms" for k, v in normal["median_ms"].items()))
    report = {
        "benchmark": "step_profile",
        "model": "512-512-10 MLP, Adam",
        "steps": steps,
        "normal_draw": normal,
        # weights of at least this many entries draw with the fused op and its XLA backward pass
        "fused_min_size": posteriors_gaussian.FUSED_MIN_SIZE,
    }
    write_json(os.path.join(args.output, "step_profile.json"), report, args, indent=2)
    return report


if __name__ == "__main__":
    main(sys.argv[1:])

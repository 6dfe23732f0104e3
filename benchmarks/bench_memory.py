"""Peak memory of one training step: 4096×4096 DenseFlipout vs keras Dense, batch 1024.

Method. Each variant runs in its own fresh subprocess with
``TF_CPU_ALLOCATOR_USE_BFC=true``, which makes TensorFlow's CPU allocator keep
statistics, so ``tf.config.experimental.get_memory_info("CPU:0")`` reports the
bytes held by TensorFlow tensors (``current``) and their high-water mark
(``peak``) — the CPU counterpart of the GPU measurement. In the child:

1. build the one-layer model (4096 → 4096, bias) and an SGD optimizer, make a
   1024×4096 input batch and targets;
2. run one compiled training step (forward, MSE + KL, backward, update) to
   trace it and allocate everything once;
3. ``reset_memory_stats``, record ``current`` (= resting memory: weights, data),
   run ``--steps`` more steps and record ``peak``.

Both a plain ``tf.function`` step (``graph``) and an XLA-compiled one
(``jit_compile=True``, ``xla``) are measured: XLA fuses the element-wise
sampling and KL ops and so keeps fewer weight-sized temporaries alive.

The peak depends on the order in which TensorFlow's executor happens to run
the step's ops (two inter-op threads), so it varies from process to process:
each variant is measured ``--repeats`` times, round-robin over the variants,
and the median peak is reported with the runs' range.

For ``dense`` and ``flipout`` under ``tf.function`` one more run profiles a
step (``tf.profiler``) and replays its allocator events: ``live_at_peak`` lists
the tensors of at least an eighth of the weight's bytes (size, the op that made it, shape) alive at that step's
peak — what the peak is made of.

Reported: resting bytes, median peak bytes (and every run's), and the step's
transient (``peak - resting``), each as a ratio to keras ``Dense``; plus the process's
peak RSS for reference (includes the TF runtime and Python). Explicit
per-example weights (what flipout avoids) would need ``1024·4096·4096·4 B = 64
GiB`` for the weights alone — computed, not run.

Usage: ``python -m benchmarks run memory [--units 4096] [--batch 1024] [--repeats 5]``
Writes ``memory.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from benchmarks._meta import output_dir, write_json

VARIANTS = ["dense", "flipout", "shared", "local"]

CHILD = r"""
import json, os, resource, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras, numpy as np, tensorflow as tf
from bayesflip.layers import DenseFlipout
variant, units, batch, steps, jit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
if variant == "dense":
    layer = keras.layers.Dense(units)
else:
    layer = DenseFlipout(units, estimator=variant, kl_weight=1e-6, seed=0)
model = keras.Sequential([keras.Input((units,)), layer])
opt = keras.optimizers.SGD(1e-3)
opt.build(model.trainable_variables)
x = tf.random.normal([batch, units])
y = tf.random.normal([batch, units])

@tf.function(jit_compile=jit)
def step(x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x, training=True) - y))
        if model.losses:
            loss += tf.add_n(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    opt.apply_gradients(zip(grads, model.trainable_variables))
    return loss

step(x, y).numpy()
tf.config.experimental.reset_memory_stats("CPU:0")
resting = tf.config.experimental.get_memory_info("CPU:0")["current"]
for _ in range(steps):
    step(x, y).numpy()
info = tf.config.experimental.get_memory_info("CPU:0")
params = sum(int(np.prod(v.shape)) * 4 for v in model.trainable_variables)
print("RESULT" + json.dumps({"resting": resting, "peak": info["peak"], "param_bytes": params,
      "max_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
if len(sys.argv) > 6 and sys.argv[6] == "explain":
    # one more step under the profiler: replay its allocations, list the tensors live at its peak
    import glob, tempfile
    from tensorflow.tsl.profiler.protobuf import xplane_pb2
    logdir = tempfile.mkdtemp()
    tf.profiler.experimental.start(logdir)
    step(x, y).numpy()
    tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
        for line in plane.lines:
            for e in line.events:
                kind = plane.event_metadata[e.metadata_id].name
                if kind in ("MemoryAllocation", "MemoryDeallocation"):
                    stats = {stat_names.get(t.metadata_id): t for t in e.stats}
                    def text(key):
                        t = stats.get(key)
                        return "" if t is None else (t.str_value or (plane.stat_metadata[t.ref_value].name if t.ref_value else ""))
                    events.append((line.timestamp_ns * 1000 + e.offset_ps, kind, stats["addr"].uint64_value or stats["addr"].int64_value,
                                   stats["requested_bytes"].int64_value or stats["requested_bytes"].uint64_value, text("tf_op"), text("shape")))
    events.sort()
    live, peak, at_peak = {}, -1, {}
    for _, kind, addr, size, op, shape in events:
        if kind == "MemoryAllocation":
            live[addr] = (size, op, shape)
        else:
            live.pop(addr, None)
        total = sum(v[0] for v in live.values())
        if total > peak:
            peak, at_peak = total, dict(live)
    tensors = sorted(([size, op, shape] for size, op, shape in at_peak.values() if size >= units * units // 2), reverse=True)
    print("LIVE" + json.dumps({"step_bytes_at_peak": peak, "tensors": tensors}))
"""


def measure(
    variant: str, units: int, batch: int, steps: int, jit: bool = False, explain: bool = False
) -> dict:
    env = dict(
        os.environ, TF_CPU_ALLOCATOR_USE_BFC="true", TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow"
    )
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, variant, str(units), str(batch), str(steps), "1" if jit else "0"]
        + (["explain"] if explain else []),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT"):
            result = json.loads(line[len("RESULT") :])
        if line.startswith("LIVE") and result is not None:
            result["live_at_peak"] = json.loads(line[len("LIVE") :])
    if result is not None:
        return result
    raise RuntimeError(f"bench_memory: child for {variant!r} failed:\n{proc.stderr[-3000:]}")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--units", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument(
        "--repeats", type=int, default=5, help="fresh processes per variant (median peak reported)"
    )
    p.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS, help="dense must come first")
    p.add_argument(
        "--modes",
        nargs="+",
        default=["graph", "xla"],
        choices=["graph", "xla"],
        help="tf.function step without / with jit_compile=True",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 256 units, batch 64, 1 step, graph mode only"
    )
    p.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    args = p.parse_args(argv)
    output_dir(p, args, dest="out")
    if args.quick:
        args.units, args.batch, args.steps, args.modes, args.repeats = 256, 64, 1, ["graph"], 2
    mib = 2.0**20
    res = {}
    print(
        f"{'variant':10s} {'step':8s} {'resting MiB':>12s} {'peak MiB':>10s} {'transient MiB':>14s} "
        f"{'peak/dense':>11s} {'range':>12s} {'RSS MiB':>9s}"
    )
    for mode in args.modes:
        jit = mode == "xla"
        # round-robin over the variants, one fresh process per measurement: the peak depends on the
        # order in which the executor happens to run the step's ops, so it varies from run to run
        runs: dict[str, list[dict]] = {v: [] for v in args.variants}
        for _ in range(args.repeats):
            for v in args.variants:
                runs[v].append(measure(v, args.units, args.batch, args.steps, jit=jit))
        res[mode] = {}
        for v in args.variants:
            peaks = [r["peak"] for r in runs[v]]
            r = {
                "resting": int(np.median([r["resting"] for r in runs[v]])),
                "peak": float(np.median(peaks)),
                "peak_runs": peaks,
                "param_bytes": runs[v][0]["param_bytes"],
                "max_rss": max(r["max_rss"] for r in runs[v]),
            }
            r["transient"] = r["peak"] - r["resting"]
            base = res[mode].get("dense")
            if base:
                r["peak_ratio_to_dense"] = r["peak"] / base["peak"]
                r["peak_ratio_range"] = [min(peaks) / base["peak"], max(peaks) / base["peak"]]
                r["transient_ratio_to_dense"] = r["transient"] / max(base["transient"], 1)
            if mode == "graph" and v in ("dense", "flipout"):
                # what is live at the peak, from one more (profiled) run's allocations
                r["live_at_peak"] = measure(v, args.units, args.batch, args.steps, jit=jit, explain=True)[
                    "live_at_peak"
                ]
            res[mode][v] = r
            low, high = r.get("peak_ratio_range", [1.0, 1.0])
            print(
                f"{v:10s} {mode:8s} {r['resting'] / mib:12.1f} {r['peak'] / mib:10.1f} {r['transient'] / mib:14.1f} "
                f"{r.get('peak_ratio_to_dense', 1.0):11.2f} {f'{low:.2f}–{high:.2f}':>12s} {r['max_rss'] / mib:9.1f}",
                flush=True,
            )
    explicit = args.batch * args.units * args.units * 4
    print(f"explicit per-example weights would need {explicit / 2**30:.1f} GiB for the weights alone")
    out = {
        "method": "TF CPU BFC allocator statistics (TF_CPU_ALLOCATOR_USE_BFC=true), tf.config.experimental.get_memory_info, "
        "one subprocess per measurement, peak over steady-state SGD training steps, median over the repeats "
        "(run round-robin over the variants); peak_ratio_range = the runs' least and greatest peak ÷ Dense's "
        "median; graph = tf.function, "
        "xla = tf.function(jit_compile=True)",
        "units": args.units,
        "batch": args.batch,
        "results": res,
        "explicit_per_example_weight_bytes": explicit,
    }
    return write_json(os.path.join(args.out, "memory.json"), out, args)


if __name__ == "__main__":
    main(sys.argv[1:])

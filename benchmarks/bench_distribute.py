"""Throughput of bayesflip's distributed training step: 1 vs 2 replicas, and XLA on CPU.

Splits the CPU into two *logical* devices and measures the examples/s of the
``bayesflip.distribute.fit`` training step (flipout MLP 128-512-512-10, Adam,
global batch ``--batch``) with

- no strategy (one device),
- ``MirroredStrategy`` on one logical device (the strategy's own overhead),
- ``MirroredStrategy`` on two logical devices (two replicas, half batch each).

CAVEAT: the two logical devices share the same physical cores (2 on the
project's CI machine), so two replicas cannot be faster than one here; the
numbers show the overhead of replication and all-reduce, not the speed-up
that two real GPUs (or two machines) would give.

It also measures the single-device step with ``jit_compile=True`` (XLA) against
the default, and XLA's stateless Philox normal draws against TensorFlow's
kernels. (Measured here, TF 2.21: a 512×512 Philox normal draw costs about the
same under XLA, and the XLA step is as fast as the default one on an idle
machine but was 1.9-3.2x slower while other processes loaded the 2 cores; XLA
stays opt-in on CPU.)

All configurations are interleaved round-robin in one process; medians of
``--steps`` timed steps are reported.

Usage: ``python -m benchmarks run distribute [--quick] [--output DIR] [--steps 30] [--batch 512]``
Writes ``distribute.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bayesflip import distribute as bd  # noqa: E402

DEVICES = bd.split_cpu(2)  # before anything creates a tensor

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.distribute._fit import _make_train_step  # noqa: E402
from bayesflip.distribute._loss import _per_example_loss_fn  # noqa: E402
from bayesflip.layers import DenseFlipout  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402

IN, HIDDEN, OUT = 128, 512, 10


def build(strategy, jit_compile=False):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [
                keras.Input((IN,)),
                DenseFlipout(HIDDEN, activation="relu", seed=1, kl_weight=1e-4),
                DenseFlipout(HIDDEN, activation="relu", seed=2, kl_weight=1e-4),
                DenseFlipout(OUT, seed=3, kl_weight=1e-4),
            ]
        )
        optimizer = keras.optimizers.Adam(1e-3)
        optimizer.build(model.trainable_variables)
        trackers = {n: keras.metrics.Mean(name=n) for n in ("loss", "nll", "kl")}
    loss = _per_example_loss_fn(keras.losses.SparseCategoricalCrossentropy(from_logits=True), "bench")
    return _make_train_step(model, strategy, loss, optimizer, trackers, [], jit_compile)


def rng_draw_ms(steps: int) -> dict:
    seed = tf.constant([1, 2], tf.int64)
    fns = {
        jit: tf.function(lambda s: tf.random.stateless_normal([512, 512], s, alg="philox"), jit_compile=jit)
        for jit in (False, True)
    }
    times = {False: [], True: []}
    for fn in fns.values():
        fn(seed).numpy()
    for _ in range(steps):
        for jit, fn in fns.items():
            t = time.perf_counter()
            fn(seed).numpy()
            times[jit].append(time.perf_counter() - t)
    tf_ms, xla_ms = (1e3 * float(np.median(times[j])) for j in (False, True))
    return {"tf_kernel_ms": tf_ms, "xla_ms": xla_ms, "xla_over_tf": xla_ms / tf_ms}


def measure(batch: int, steps: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * 4, IN)).astype("float32")
    y = rng.integers(0, OUT, size=batch * 4).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).repeat()
    configs = {
        "1 device": tf.distribute.get_strategy(),
        "1 device, XLA": tf.distribute.get_strategy(),
        "Mirrored, 1 replica": tf.distribute.MirroredStrategy(DEVICES[:1]),
        "Mirrored, 2 replicas": tf.distribute.MirroredStrategy(DEVICES),
    }
    runs = {}
    for name, strategy in configs.items():
        step = build(strategy, jit_compile=name.endswith("XLA"))
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        for _ in range(3):  # trace, compile, warm up
            step(next(iterator))
        runs[name] = (step, iterator, [])
    for _ in range(steps):
        for step, iterator, times in runs.values():
            batch_data = next(iterator)
            t = time.perf_counter()
            step(batch_data)
            times.append(time.perf_counter() - t)
    median = {name: float(np.median(times)) for name, (_, _, times) in runs.items()}
    return {
        "batch": batch,
        "steps": steps,
        "median_step_ms": {k: 1e3 * v for k, v in median.items()},
        "examples_per_s": {k: batch / v for k, v in median.items()},
        "ratio_to_1_device": {k: v / median["1 device"] for k, v in median.items()},
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps, batch 64")
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.steps, args.batch = 3, 64
    r = measure(args.batch, args.steps)
    r["rng_512x512_normal"] = rng_draw_ms(args.steps)
    r["physical_cpu_cores"] = os.cpu_count()
    r["caveat"] = "logical CPU devices share the physical cores: 2 replicas cannot beat 1 here"
    print(f"flipout MLP {IN}-{HIDDEN}-{HIDDEN}-{OUT}, global batch {args.batch}, {os.cpu_count()} cores")
    for name in r["median_step_ms"]:
        print(
            f"  {name:22s} {r['median_step_ms'][name]:8.2f} ms/step"
            f"  {r['examples_per_s'][name]:9.0f} examples/s"
            f"  time ratio {r['ratio_to_1_device'][name]:.2f}x"
        )
    rng = r["rng_512x512_normal"]
    print(
        f"  512x512 normal draw: TF kernel {rng['tf_kernel_ms']:.2f} ms, XLA {rng['xla_ms']:.2f} ms "
        f"({rng['xla_over_tf']:.1f}x)"
    )
    print(f"  caveat: {r['caveat']}")
    write_json(
        os.path.join(args.output, "distribute.json"),
        {"benchmark": "distribute_throughput", "results": r},
        args,
        indent=2,
    )
    return r


if __name__ == "__main__":
    main(sys.argv[1:])

"""The compiled training step every speed benchmark times (Keras 3 and tf_keras alike).

Imported by the ``bench_*.py`` scripts, which run from this folder (it is on
``sys.path`` when a script here is executed).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf


def sgd_update(variables, grads, lr: float = 1e-2) -> None:
    """The same plain update for every framework (isolates the layers' cost)."""
    for v, g in zip(variables, grads):
        v.assign_sub(lr * g)


def train_step(model, optimizer, loss_fn, update: str = "adam"):
    """A ``tf.function`` step: ``loss_fn`` + the model's added losses (KL), gradient, update.

    Args:
        model: a Keras 3 or ``tf_keras`` model.
        optimizer: that framework's optimizer (used when ``update="adam"``).
        loss_fn: that framework's loss, called as ``loss_fn(y, model(x))``.
        update: ``"adam"`` (the optimizer) or ``"sgd"`` (:func:`sgd_update`).

    Returns:
        ``step(x, y) -> loss``.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        optimizer.build(model.trainable_variables)  # create slots outside tf.function

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
            if model.losses:
                loss = loss + tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        if update == "adam":
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        else:
            sgd_update(model.trainable_variables, grads)
        return loss

    return step


def interleaved(runners: dict, data: dict, steps: int, warmup: int = 5) -> dict[str, np.ndarray]:
    """Per-call seconds of each runner, the runners called round-robin (``warmup`` untimed rounds first).

    Args:
        runners: ``name -> callable`` returning a tensor (a compiled step, a draw …).
        data: ``name -> tuple`` of the call's arguments.
        steps: timed rounds.
    """
    for _ in range(warmup):
        for name, step in runners.items():
            step(*data[name]).numpy()
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(steps):
        for name, step in runners.items():
            t0 = time.perf_counter()
            step(*data[name]).numpy()
            times[name].append(time.perf_counter() - t0)
    return {k: np.asarray(v) for k, v in times.items()}


def summarize(times: dict, pairs: dict) -> dict:
    """Median ms per runner; for each ratio ``name -> (numerator, denominator)`` both the ratio of
    medians and the median of per-round ratios (robust to load drifting on a shared machine)."""
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    ratios, paired = {}, {}
    for name, (num, den) in pairs.items():
        if num in times and den in times:
            ratios[name] = med[num] / med[den]
            paired[name] = float(np.median(times[num] / times[den]))
    return {"median_ms": med, "ratios": ratios, "median_paired_ratios": paired}


def parse_step_args(
    argv: Sequence[str] | None, description: str, steps: int, batch_size: int, quick_steps: int
) -> argparse.Namespace:
    """The command line of a training-step benchmark: ``--steps``, ``--batch-size``, ``--updates``,
    ``--quick`` (``quick_steps`` steps at batch 8, Adam only) and ``--output`` (folder chosen by
    :func:`benchmarks._meta.output_dir`)."""
    from benchmarks._meta import output_dir

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--steps", type=int, default=steps, help="interleaved timed steps per model")
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--updates", nargs="+", default=["adam", "sgd"], choices=["adam", "sgd"])
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {quick_steps} steps at batch 8, Adam only"
    )
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.steps, args.batch_size, args.updates = quick_steps, 8, ["adam"]
    return args

"""Flipout evolution strategies (paper §4.2): speed and learning on digits.

Speed: perturbations evaluated per second by

* ``flipout`` — :meth:`bayesflip.es.FlipoutES.estimate_gradient`: every example
  of the batch evaluates its own flipout perturbation (and its antithetic
  mirror) in one batched pass, gradient included;
* ``explicit loop`` — :meth:`~bayesflip.es.FlipoutES.explicit_gradient`: a
  Python loop over examples, each drawing a full independent Gaussian
  perturbation of every weight and running one explicitly perturbed copy of the
  network (a compiled ``tf.function`` per perturbation), gradient included.

Both in one process, interleaved, median over ``--reps`` calls; an MLP
64-256-256-10 on digits, ``--batch`` examples per call (×2 perturbations with
antithetic sampling).

Learning: flipout ES (antithetic, centered ranks, Adam) trains a 64-64-10 MLP
on digits (1400 train / 397 test); test accuracy of the mean network is logged
along the way, next to the same network trained by backpropagation for the
same number of steps as a reference.

Usage: ``python -m benchmarks run es [--batch 128] [--iterations 1000]``
Writes ``es.json`` and ``es.png`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bayesflip.es import FlipoutES  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402


def digits_split(seed=0):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32"), y.astype("int64")
    p = np.random.default_rng(seed).permutation(len(x))
    x, y = x[p], y[p]
    return x[:1400], y[:1400], x[1400:], y[1400:]


def fitness(y, logits):
    return -keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True)


def speed(batch, reps, sizes):
    xtr, ytr, _, _ = digits_split()
    es = FlipoutES(sizes, sigma=0.05, seed=0)
    x, y = xtr[:batch], ytr[:batch]
    es.estimate_gradient(fitness, x, y)  # trace
    es.explicit_gradient(fitness, x[:2], y[:2])
    t_flip, t_loop = [], []
    for _ in range(reps):
        t = time.perf_counter()
        g, f = es.estimate_gradient(fitness, x, y)
        _ = g[0].numpy()
        t_flip.append((time.perf_counter() - t) / int(f.shape[0]))
        t = time.perf_counter()
        g, f = es.explicit_gradient(fitness, x, y)
        _ = g[0].numpy()
        t_loop.append((time.perf_counter() - t) / int(f.shape[0]))
    pf, pl = 1.0 / np.median(t_flip), 1.0 / np.median(t_loop)
    return {
        "layer_sizes": sizes,
        "batch": batch,
        "perturbations_per_call": 2 * batch,
        "flipout_perturbations_per_s": pf,
        "explicit_loop_perturbations_per_s": pl,
        "speedup": pf / pl,
    }


def learn(iterations, batch, log_every, sigma, lr):
    xtr, ytr, xte, yte = digits_split()
    rng = np.random.default_rng(1)
    es = FlipoutES([64, 64, 10], activation="tanh", sigma=sigma, seed=1)
    opt = keras.optimizers.Adam(lr)
    bp = keras.Sequential([keras.Input((64,)), keras.layers.Dense(64, "tanh"), keras.layers.Dense(10)])
    bp.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    curve = {"iteration": [], "es_test_accuracy": [], "backprop_test_accuracy": [], "es_train_fitness": []}
    t0 = time.time()
    for it in range(1, iterations + 1):
        idx = rng.integers(0, len(xtr), batch)
        f = es.step(fitness, xtr[idx], ytr[idx], opt)
        bp.train_on_batch(xtr[idx], ytr[idx])
        if it % log_every == 0 or it == 1:
            curve["iteration"].append(it)
            curve["es_test_accuracy"].append(float(np.mean(np.argmax(es.predict(xte), 1) == yte)))
            curve["backprop_test_accuracy"].append(
                float(np.mean(np.argmax(bp.predict(xte, verbose=0), 1) == yte))
            )
            curve["es_train_fitness"].append(float(f))
            print(
                f"iter {it:5d}  ES test acc {curve['es_test_accuracy'][-1]:.3f}  "
                f"backprop test acc {curve['backprop_test_accuracy'][-1]:.3f}",
                flush=True,
            )
    curve["seconds"] = time.time() - t0
    curve.update(sigma=sigma, learning_rate=lr, batch=batch, perturbations_per_step=2 * batch)
    return curve


def plot(curve, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curve["iteration"], curve["es_test_accuracy"], "o-", label="flipout ES")
    ax.plot(curve["iteration"], curve["backprop_test_accuracy"], "s--", label="backprop (reference)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("digits test accuracy")
    ax.set_title(f"ES, 2×{curve['batch']} perturbations/step")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--sigma", type=float, default=0.05)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--skip-learning", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 repetitions, 20 ES steps")
    p.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    args = p.parse_args(argv)
    output_dir(p, args, dest="out")
    if args.quick:
        args.reps, args.iterations, args.log_every = 2, 20, 10
    out = {"speed": speed(args.batch, args.reps, [64, 256, 256, 10])}
    s = out["speed"]
    print(
        f"perturbations/s: flipout {s['flipout_perturbations_per_s']:.0f}, explicit loop "
        f"{s['explicit_loop_perturbations_per_s']:.0f}  -> speedup {s['speedup']:.1f}x",
        flush=True,
    )
    os.makedirs(args.out, exist_ok=True)
    if not args.skip_learning:
        out["learning"] = learn(args.iterations, args.batch, args.log_every, args.sigma, args.lr)
        plot(out["learning"], os.path.join(args.out, "es.png"))
    return write_json(os.path.join(args.out, "es.json"), out, args)


if __name__ == "__main__":
    main(sys.argv[1:])

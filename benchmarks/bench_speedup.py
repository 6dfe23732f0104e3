"""Training speed-up with multiplicative Gaussian weight noise: flipout vs shared (paper §4.2).

Claim reproduced (Wen et al. 2018, ICLR, §4.2, large-batch training with
multiplicative Gaussian perturbations): when every weight carries multiplicative
Gaussian noise, a single weight draw shared by the whole mini-batch leaves a
gradient-noise term that does not shrink with the batch size, so training with
shared perturbations stops getting faster (in iterations) as the batch grows;
flipout's pseudo-independent per-example perturbations keep the 1/batch
variance reduction and keep speeding up, closer to a net without noise.

Data (shipped, no downloads): scikit-learn's bundled digits (1,797 8×8 images,
pixels scaled to [0, 1]) enlarged to 32,346 training examples: each image
shifted by every (dy, dx) in {−1, 0, 1}² (9 copies, vacated pixels 0), and each
shifted image taken twice with independent Gaussian pixel noise (sd 0.05,
clipped to [0, 1]): 1,797 × 9 × 2 = 32,346.

Networks: ``mlp`` 64-256-256-10 (ReLU), ``conv`` Conv 16 3×3 → Conv 32 3×3
stride 2 → Dense 10 (ReLU, "same" padding). Every weight matrix / kernel
(biases deterministic) carries fixed multiplicative noise
``W = θ ∘ (1 + √α ε)``, ``bayesflip.posteriors.GaussianDropConnect(alpha=α)``,
default α = 1 (the Gaussian counterpart of DropConnect with drop rate 0.5, the
classical dropout strength), no KL term. Methods:

* ``flipout``: ``estimator="flipout"`` (per-example pseudo-independent noise);
* ``shared``: ``estimator="shared"`` (one weight draw per mini-batch);
* ``none``: the same net from plain Keras layers (no noise), as a reference.

All three start from the same initial weights (θ of the noisy nets = the plain
net's initial kernels). Mini-batches are drawn without replacement from a
reshuffled training set (an epoch's remainder is dropped; every batch size is
below the 32,346 examples); Adam.

Loss target: the *noisy training loss*, ``E_ε[mean cross-entropy]`` over a
fixed subset of ``--eval-examples`` (2,048) training examples, estimated with
flipout draws (per-example noise; each example's weight noise has the same
marginal distribution under flipout and shared perturbations, so this is the
same expectation for both, estimated with less variance than with one shared
draw); for ``none`` it is the plain cross-entropy. It is evaluated at every
step up to 20, then on a geometric grid (ratio ``--eval-growth``, 1.05), so an
iteration count is the first grid step at which the loss is ≤ ``--target``
(0.8 nats, about a third of the initial ln 10; a level both noisy estimators
pass at every batch size within the cap) and its resolution is 5 %. A run
stops at the target, at the step cap (``--max-steps``, 3,000: "not reached"),
or, in the learning-rate sweep, once it has run as many steps as the best
learning rate of its cell already needed (it cannot win: ``pruned``).

Learning rate: per (net, batch size, method, seed) the best of the same Adam
grid ``--lrs`` (3e-3, 1e-2, 1e-3: a half-decade log grid), the one reaching the
target in the fewest iterations (ties: lower loss at that step). The sweep
order changes only the cost (a pruned run still reaches the target if it ties).
Wall-clock seconds to the target = the summed time of the chosen run's training
steps (evaluations excluded) on this machine's shared CPUs: noisy; iterations
are the measure. ``--seeds`` (default 0 1) change the initial weights, the
weight-noise streams and the batch order (the data stay the same); tables
give the mean over seeds of each seed's best run, the ratio is of those means.

Bar (issue 16): at the largest batch, flipout reaches the target in at most
0.6× the iterations of shared perturbations, and the ratio flipout/shared
falls as the batch grows (checked on the seed means and reported per seed).

Usage: ``python -m benchmarks run speedup [--quick] [--nets mlp conv]
[--batch-sizes 128 512 2048 4096] [--lrs 3e-3 1e-2 1e-3] [--max-steps 3000]
[--target 0.8] [--alpha 1] [--seeds 0 1] [--output DIR] [--replot]``.
``--quick`` is a seconds-long smoke test (batches 32 and 128, 20 steps, one
seed, target 2.0); ``--replot`` redraws the figures from an existing JSON.
Writes ``speedup.json`` (config, versions, per cell the iterations and seconds
per seed, best lrs, every run's evaluated loss curve and the chosen runs'
per-step mini-batch losses, the flipout/shared ratios and the bar's verdict),
``speedup.png`` (iterations to the target vs batch size) and
``speedup_curves.png`` (loss curves at the largest batch) into
the output folder (``--output``; default: see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip import layers as bl  # noqa: E402
from bayesflip.posteriors import GaussianDropConnect  # noqa: E402
from benchmarks._meta import metadata, output_dir  # noqa: E402

METHODS = ("flipout", "shared", "none")
NETS = ("mlp", "conv")
NOT_REACHED = "not reached"
BAR_RATIO = 0.6


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------
def make_data(noise_copies: int = 2, pixel_noise: float = 0.05, seed: int = 0):
    """Digits shifted by every (dy, dx) in {-1, 0, 1}², each taken ``noise_copies`` times with pixel noise."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    img = (x / 16.0).reshape(-1, 8, 8).astype("float32")
    padded = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    shifted = [padded[:, 1 + dy : 9 + dy, 1 + dx : 9 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    base = np.concatenate(shifted)
    labels = np.tile(y, 9)
    rng = np.random.default_rng(seed)
    xs = [np.clip(base + rng.normal(0.0, pixel_noise, base.shape), 0.0, 1.0) for _ in range(noise_copies)]
    return np.concatenate(xs).astype("float32")[..., None], np.tile(labels, noise_copies).astype("int32")


# ---------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------
def build_model(net: str, method: str, alpha: float, seed: int = 0) -> keras.Model:
    """``net`` in {mlp, conv}; ``method`` flipout / shared (GaussianDropConnect(alpha)) or none (plain Keras)."""
    if method == "none":
        dense = lambda units, i, **kw: keras.layers.Dense(units, **kw)  # noqa: E731
        conv = lambda filters, i, **kw: keras.layers.Conv2D(filters, 3, padding="same", **kw)  # noqa: E731
    else:
        noise = dict(posterior=GaussianDropConnect(alpha=alpha), estimator=method)
        dense = lambda units, i, **kw: bl.DenseFlipout(units, seed=seed + i, **noise, **kw)  # noqa: E731
        conv = lambda filters, i, **kw: bl.Conv2DFlipout(  # noqa: E731
            filters, 3, padding="same", seed=seed + i, **noise, **kw
        )
    if net == "mlp":
        body = [
            keras.layers.Flatten(),
            dense(256, 0, activation="relu"),
            dense(256, 1, activation="relu"),
            dense(10, 2),
        ]
    elif net == "conv":
        body = [
            conv(16, 0, activation="relu"),
            conv(32, 1, strides=2, activation="relu"),
            keras.layers.Flatten(),
            dense(10, 2),
        ]
    else:
        raise ValueError(f"bench_speedup: unknown net {net!r}; expected one of {NETS}.")
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 1)), *body], name=f"{net}_{method}")


def copy_trainable(dst: keras.Model, src: keras.Model) -> None:
    """Assign ``src``'s trainable weights to ``dst`` (same architecture, any method)."""
    dw, sw = dst.trainable_weights, src.trainable_weights
    if [tuple(v.shape) for v in dw] != [tuple(v.shape) for v in sw]:
        raise ValueError(f"bench_speedup: {dst.name} and {src.name} have different trainable weights.")
    for d, s in zip(dw, sw):
        d.assign(s)


class Trainer:
    """One model, optimizer and compiled step per (net, method); reset for every (batch size, lr) run."""

    def __init__(self, net, method, alpha, x, y, x_eval, y_eval, reference, eval_model, seed):
        self.method = method
        self.model = build_model(net, method, alpha, seed)
        copy_trainable(self.model, reference)  # same initial weights for every method
        self.init_weights = [np.array(w) for w in self.model.get_weights()]
        self.opt = keras.optimizers.Adam(learning_rate=1e-3)
        self.opt.build(self.model.trainable_variables)
        self.x, self.y = tf.constant(x), tf.constant(y)
        self.x_eval, self.y_eval = tf.constant(x_eval), tf.constant(y_eval)
        self.eval_model = eval_model  # flipout twin for the noisy loss; None: the model itself (no noise)
        ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model, opt = self.model, self.opt

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int32)])
        def step(idx):
            xb, yb = tf.gather(self.x, idx), tf.gather(self.y, idx)
            with tf.GradientTape() as tape:
                loss = ce(yb, model(xb, training=True))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        target_model = eval_model if eval_model is not None else model

        @tf.function
        def evaluate():
            if eval_model is not None:
                for d, s in zip(eval_model.trainable_variables, model.trainable_variables):
                    d.assign(s)
            return ce(self.y_eval, target_model(self.x_eval, training=True))

        self.step, self.evaluate = step, evaluate

    def reset(self, lr: float) -> None:
        self.model.set_weights(self.init_weights)
        for v in self.opt.variables:
            v.assign(tf.zeros_like(v))
        self.opt.learning_rate.assign(lr)

    def warm_up(self, batch: int) -> None:
        """Trace and run the compiled functions once (not timed)."""
        self.reset(1e-3)
        self.step(tf.range(batch, dtype=tf.int32)).numpy()
        self.evaluate().numpy()


def eval_grid(max_steps: int, growth: float) -> list[int]:
    """Steps at which the loss is evaluated: 0, every step up to 20, then geometric with ratio ``growth``."""
    steps, s = set(range(0, min(20, max_steps) + 1)), 20.0
    while s < max_steps:
        s *= growth
        steps.add(min(int(math.ceil(s)), max_steps))
    steps.add(max_steps)
    return sorted(steps)


def train_run(trainer: Trainer, batch: int, lr: float, target: float, max_steps: int, grid, stop_after, seed):
    """Train until the noisy loss ≤ target, ``max_steps`` or ``stop_after`` steps; return the run's record."""
    trainer.reset(lr)
    rng = np.random.default_rng(seed)
    n = int(trainer.x.shape[0])
    order, pos = rng.permutation(n), 0
    grid_set = set(grid)
    curve_steps, curve_loss, batch_loss = [0], [float(trainer.evaluate())], []
    seconds, reached, status = 0.0, None, NOT_REACHED
    limit = min(max_steps, stop_after) if stop_after is not None else max_steps
    if curve_loss[0] <= target:
        reached, status = 0, "reached"
    step = 0
    while reached is None and step < limit:
        if pos + batch > n:  # new epoch: reshuffle, drop the remainder
            order, pos = rng.permutation(n), 0
        idx = tf.constant(order[pos : pos + batch], tf.int32)
        pos += batch
        t0 = time.perf_counter()
        loss = float(trainer.step(idx))
        seconds += time.perf_counter() - t0
        step += 1
        batch_loss.append(loss)
        if not math.isfinite(loss):
            status = "diverged"
            break
        if step in grid_set:
            value = float(trainer.evaluate())
            curve_steps.append(step)
            curve_loss.append(value)
            if value <= target:
                reached, status = step, "reached"
    if (
        reached is None
        and status == NOT_REACHED
        and stop_after is not None
        and step >= stop_after < max_steps
    ):
        status = "pruned"
    return {
        "lr": lr,
        "status": status,
        "iterations": reached if reached is not None else NOT_REACHED,
        "steps_run": step,
        "train_seconds": seconds,
        "ms_per_step": 1e3 * seconds / max(step, 1),
        "eval_steps": curve_steps,
        "eval_loss": curve_loss,
        "minibatch_loss": batch_loss,
    }


def _better(a: dict, b: dict | None) -> bool:
    """Is run ``a`` better than ``b``: reached in fewer iterations (ties: lower loss at that step)."""
    if b is None:
        return True
    if a["status"] != "reached":
        return b["status"] != "reached" and min(a["eval_loss"]) < min(b["eval_loss"])
    if b["status"] != "reached":
        return True
    return (a["iterations"], a["eval_loss"][-1]) < (b["iterations"], b["eval_loss"][-1])


def run(args) -> dict:
    t_start = time.time()
    x, y = make_data(seed=0)  # the same data for every seed
    eval_idx = np.random.default_rng(1).permutation(len(x))[: args.eval_examples]
    x_eval, y_eval = x[eval_idx], y[eval_idx]
    grid = eval_grid(args.max_steps, args.eval_growth)
    out = {
        "task": (
            "scikit-learn digits (1,797 8x8 images, pixels /16) shifted by every (dy, dx) in {-1,0,1}^2 and taken "
            f"twice with Gaussian pixel noise sd 0.05 (clipped to [0, 1]): {len(x)} training examples"
        ),
        "loss_definition": (
            f"noisy training loss E_eps[mean cross-entropy] on a fixed subset of {len(x_eval)} training examples, "
            "estimated with flipout draws (same marginal weight noise per example as shared); plain cross-entropy "
            "for 'none'; evaluated on the step grid (every step to 20, then geometric); iterations = first grid "
            "step with loss <= target"
        ),
        "lr_choice": (
            "per (net, batch size, method, seed): the lr of the grid reaching the target in the fewest iterations "
            "(ties: lower loss there); runs stop at the target, the cap, or the best iteration count so far (pruned)"
        ),
        "config": {
            **{k: v for k, v in vars(args).items() if k not in ("output", "replot")},
            "train_examples": int(len(x)),
            "eval_grid_points": len(grid),
        },
        "versions": {
            "bayesflip": bayesflip.__version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        },
        "nets": {},
    }
    for net in args.nets:
        per_seed = {b: {m: [] for m in args.methods} for b in args.batch_sizes}
        for seed in args.seeds:
            reference = build_model(net, "none", args.alpha, seed)
            eval_model = build_model(net, "flipout", args.alpha, seed + 100)
            trainers = {}
            for method in args.methods:
                trainers[method] = Trainer(
                    net,
                    method,
                    args.alpha,
                    x,
                    y,
                    x_eval,
                    y_eval,
                    reference,
                    None if method == "none" else eval_model,
                    seed,
                )
                trainers[method].warm_up(args.batch_sizes[0])
            for batch in args.batch_sizes:
                for method in args.methods:
                    best, runs = None, []
                    for lr in args.lrs:
                        stop_after = (
                            best["iterations"] if (best is not None and best["status"] == "reached") else None
                        )
                        r = train_run(
                            trainers[method],
                            batch,
                            lr,
                            args.target,
                            args.max_steps,
                            grid,
                            stop_after,
                            seed * 100_003 + batch,
                        )
                        runs.append(r)
                        if _better(r, best):
                            best = r
                        print(
                            f"[{net} seed {seed} B={batch:5d} {method:7s} lr={lr:g}] {r['status']:11s} "
                            f"it={r['iterations']!s:>11} steps={r['steps_run']:5d} min loss={min(r['eval_loss']):.4f} "
                            f"{r['ms_per_step']:.1f} ms/step  ({time.time() - t_start:.0f} s)",
                            flush=True,
                        )
                    for r in runs:  # per-step mini-batch losses kept for the chosen run only (file size)
                        if r is not best:
                            del r["minibatch_loss"]
                    per_seed[batch][method].append((best, runs))
        res_net = {"batch_sizes": {}}
        for batch in args.batch_sizes:
            cell = {method: _cell(per_seed[batch][method], args.max_steps) for method in args.methods}
            if "flipout" in cell and "shared" in cell:
                cell["ratio_flipout_over_shared"] = _ratio(
                    cell["flipout"]["iterations_mean"], cell["shared"]["iterations_mean"]
                )
                cell["ratio_flipout_over_shared_per_seed"] = [
                    _ratio(f, s_, args.max_steps)
                    for f, s_ in zip(cell["flipout"]["iterations"], cell["shared"]["iterations"])
                ]
            res_net["batch_sizes"][str(batch)] = cell
        out["nets"][net] = res_net
    out["wall_seconds"] = time.time() - t_start
    out["bar"] = bar_verdict(out, args)
    return out


def _round(values, digits=5):
    return [round(float(v), digits) for v in values]


def _cell(results, cap) -> dict:
    """Summary of one (net, batch size, method) over seeds; ``results`` = [(best run, all runs)] per seed."""
    its = [best["iterations"] for best, _ in results]
    secs = [best["train_seconds"] if best["status"] == "reached" else NOT_REACHED for best, _ in results]
    for _, runs in results:
        for r in runs:
            r["eval_loss"] = _round(r["eval_loss"])
            if "minibatch_loss" in r:
                r["minibatch_loss"] = _round(r["minibatch_loss"])
    missed = [i for i in its if i == NOT_REACHED]
    return {
        "best_lr": [best["lr"] for best, _ in results],
        "iterations": its,
        # mean over seeds; with a seed that missed the target it is a lower bound (cap counted), marked so
        "iterations_mean": (
            float(np.mean(its))
            if not missed
            else {"at_least": float(np.mean([cap if i == NOT_REACHED else i for i in its]))}
        ),
        "seconds_to_target": secs,
        "seconds_to_target_mean": NOT_REACHED if missed else float(np.mean(secs)),
        "ms_per_step": [best["ms_per_step"] for best, _ in results],
        "runs": [runs for _, runs in results],
    }


def _ratio(flip, shared, cap=None):
    """flipout/shared iterations. Per seed (``cap`` given): shared missing the target gives an upper bound
    ``{"at_most": flip/cap}``. For means: ``{"at_least": m}`` entries mark lower bounds."""
    if flip == NOT_REACHED or isinstance(flip, dict):
        return NOT_REACHED
    if shared == NOT_REACHED:
        return {"at_most": flip / cap}
    if isinstance(shared, dict):
        return {"at_most": flip / shared["at_least"]}
    return flip / max(shared, 1)


def _ratio_value(r):
    if isinstance(r, dict):
        return r["at_most"]
    return None if r == NOT_REACHED else r


def bar_verdict(out, args) -> dict:
    """The issue's bar on the ratio of the seed-mean iterations, and per seed."""
    verdict = {"threshold": BAR_RATIO, "nets": {}}
    for net, res in out["nets"].items():
        cells = [res["batch_sizes"][str(b)] for b in args.batch_sizes]
        ratios = [_ratio_value(c.get("ratio_flipout_over_shared", NOT_REACHED)) for c in cells]
        if any(r is None for r in ratios):
            verdict["nets"][net] = {
                "met": False,
                "ratios": ratios,
                "why": "a ratio is missing (flipout not reached)",
            }
            continue
        largest = ratios[-1] <= BAR_RATIO
        widening = all(b <= a for a, b in zip(ratios, ratios[1:]))
        per_seed = [
            [_ratio_value(c["ratio_flipout_over_shared_per_seed"][k]) for c in cells]
            for k in range(len(args.seeds))
        ]
        verdict["nets"][net] = {
            "met": bool(largest and widening),
            "largest_batch_ratio_at_most_threshold": bool(largest),
            "ratio_falls_with_batch": bool(widening),
            "ratios": ratios,
            "met_per_seed": [
                bool(None not in rs and rs[-1] <= BAR_RATIO and all(b <= a for a, b in zip(rs, rs[1:])))
                for rs in per_seed
            ],
        }
    verdict["met"] = bool(verdict["nets"]) and all(v["met"] for v in verdict["nets"].values())
    return verdict


# ---------------------------------------------------------------------------
# Plots
# ---------------------------------------------------------------------------
STYLE = {
    "flipout": dict(color="C0", marker="o"),
    "shared": dict(color="C3", marker="s"),
    "none": dict(color="gray", marker="^", ls="--"),
}


def _mean_value(m):
    return m["at_least"] if isinstance(m, dict) else m


def plot(out, path_iters, path_curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = list(out["nets"])
    cfg = out["config"]
    cap = cfg["max_steps"]
    fig, axes = plt.subplots(1, len(nets), figsize=(4.8 * len(nets), 4.6), squeeze=False)
    for ax, net in zip(axes[0], nets):
        cells = out["nets"][net]["batch_sizes"]
        sizes = [int(b) for b in cells]
        for method in cfg["methods"]:
            means = [cells[str(b)][method]["iterations_mean"] for b in sizes]
            ax.plot(sizes, [_mean_value(m) for m in means], label=method, **STYLE[method])
            for b in sizes:  # single seeds, faint; a seed that missed the target at the cap as x
                for it in cells[str(b)][method]["iterations"]:
                    hit = it != NOT_REACHED
                    ax.scatter(
                        [b],
                        [it if hit else cap],
                        s=12 if hit else 30,
                        alpha=0.4,
                        marker="." if hit else "x",
                        color=STYLE[method]["color"],
                    )
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(f"iterations to noisy train loss ≤ {cfg['target']:g}")
        ax.set_title(f"{net}, multiplicative noise α = {cfg['alpha']:g}")
        n_seeds = len(cfg["seeds"])
        ax.legend(
            fontsize=8,
            title=f"mean of {n_seeds} seed{'s' if n_seeds > 1 else ''} (dots: each seed)",
            title_fontsize=8,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=3,
        )
    fig.tight_layout()
    fig.savefig(path_iters, dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(nets), figsize=(4.8 * len(nets), 3.9), squeeze=False)
    for ax, net in zip(axes[0], nets):
        cells = out["nets"][net]["batch_sizes"]
        largest = max(cells, key=int)
        for method in cfg["methods"]:
            c = cells[largest][method]
            for k, (lr, runs) in enumerate(zip(c["best_lr"], c["runs"])):
                best = next(r for r in runs if r["lr"] == lr)
                ax.plot(
                    best["eval_steps"][1:],
                    best["eval_loss"][1:],
                    color=STYLE[method]["color"],
                    ls=STYLE[method].get("ls", "-"),
                    alpha=1.0 if k == 0 else 0.45,
                    label=f"{method} (seed {cfg['seeds'][k]}, lr {lr:g})",
                )
        ax.axhline(cfg["target"], color="k", lw=0.8, ls=":", label="target")
        ax.set_xscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("noisy training loss (nats)")
        ax.set_title(f"{net}, batch {largest} (best lr; runs stop at the target)", fontsize=10)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path_curves, dpi=120)
    plt.close(fig)


def _fmt(v):
    if isinstance(v, dict):
        ((k, x),) = v.items()
        return f"{k.replace('_', ' ')} {x:.3g}"
    return v if isinstance(v, str) else f"{v:.3g}"


def _lrs(values) -> str:
    return "/".join(f"{v:.0e}".replace("e-0", "e-") for v in dict.fromkeys(values))


def _its(c) -> str:
    mean = c["iterations_mean"]
    head = f"≥ {mean['at_least']:g}" if isinstance(mean, dict) else f"{mean:g}"
    seeds = ", ".join(str(i) for i in c["iterations"])
    return f"{head} [{seeds}], lr {_lrs(c['best_lr'])}"


def _secs(c) -> str:
    m = c["seconds_to_target_mean"]
    return "—" if m == NOT_REACHED else f"{m:.2f}"


def table_markdown(out) -> str:
    """The README's table (between ``<!-- speedup-table -->`` markers): one row per (net, batch size)."""
    methods = out["config"]["methods"]
    names = {"flipout": "flipout", "shared": "shared", "none": "no noise"}
    lines = [
        "| net | batch | "
        + " | ".join(f"{names[m]}: iterations [per seed], lr" for m in methods)
        + " | flipout / shared | seconds to target "
        + " / ".join(names[m] for m in methods)
        + " |",
        "|---|---:|" + "---:|" * (len(methods) + 2),
    ]
    for net, res in out["nets"].items():
        for b, cell in res["batch_sizes"].items():
            ratio = cell.get("ratio_flipout_over_shared", NOT_REACHED)
            if isinstance(ratio, dict):
                ratio_s = f"≤ {ratio['at_most']:.3f}"
            else:
                ratio_s = ratio if isinstance(ratio, str) else f"**{ratio:.3f}**"
            lines.append(
                f"| {net} | {b} | "
                + " | ".join(_its(cell[m]) for m in methods)
                + f" | {ratio_s} | "
                + " / ".join(_secs(cell[m]) for m in methods)
                + " |"
            )
    return "\n".join(lines) + "\n"


def summary_lines(out) -> list[str]:
    lines = []
    for net, res in out["nets"].items():
        for b, cell in res["batch_sizes"].items():
            parts = [
                f"{m}: {_fmt(cell[m]['iterations_mean'])} it {cell[m]['iterations']} (lr {cell[m]['best_lr']})"
                for m in out["config"]["methods"]
            ]
            ratio = _fmt(cell.get("ratio_flipout_over_shared", "n/a"))
            lines.append(f"{net} batch {b}: " + "; ".join(parts) + f"; flipout/shared {ratio}")
    return lines


def write_json(out, path) -> None:
    """Indented JSON with every list of plain numbers on one line (the curves would be a line per number)."""
    import re

    text = json.dumps(out, indent=1, ensure_ascii=False)
    text = re.sub(
        r"\[\s*(-?[0-9][-0-9.eE+]*(?:,\s*-?[0-9][-0-9.eE+]*)*)\s*\]",
        lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]",
        text,
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny run (seconds): a smoke test of the pipeline")
    p.add_argument("--nets", nargs="+", default=list(NETS), choices=NETS)
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 512, 2048, 4096])
    p.add_argument(
        "--lrs",
        nargs="+",
        type=float,
        default=[3e-3, 1e-2, 1e-3],
        help="Adam learning rates, swept in this order (the order changes only the cost)",
    )
    p.add_argument(
        "--alpha", type=float, default=1.0, help="multiplicative noise variance α (rate 0.5 ⇔ α = 1)"
    )
    p.add_argument("--target", type=float, default=0.8, help="noisy training loss to reach (nats)")
    p.add_argument("--max-steps", type=int, default=3000)
    p.add_argument("--eval-examples", type=int, default=2048)
    p.add_argument("--eval-growth", type=float, default=1.05)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    p.add_argument(
        "--replot", action="store_true", help="redraw the figures from --output's speedup.json, no training"
    )
    args = p.parse_args(argv)
    output_dir(p, args, ignore=("replot",))
    if args.replot:
        with open(os.path.join(args.output, "speedup.json")) as f:
            out = json.load(f)
        plot(out, os.path.join(args.output, "speedup.png"), os.path.join(args.output, "speedup_curves.png"))
        return out
    if args.quick:
        args.batch_sizes, args.lrs, args.max_steps, args.eval_examples = [32, 128], [1e-2, 3e-3], 20, 256
        args.seeds = [0]
        args.target = 2.0
    args.batch_sizes = sorted(args.batch_sizes)
    out = run(args)
    for line in summary_lines(out):
        print(line)
    bar = out["bar"]
    for net, v in bar["nets"].items():
        print(
            f"[{net}] bar (flipout/shared ≤ {BAR_RATIO} at the largest batch, falling with batch): "
            f"{'MET' if v['met'] else 'NOT met'}; ratios {v['ratios']}"
        )
    print(f"bar met overall: {bar['met']}; wall time {out['wall_seconds']:.0f} s")
    os.makedirs(args.output, exist_ok=True)
    out = {"meta": metadata(args), **out}
    write_json(out, os.path.join(args.output, "speedup.json"))
    plot(out, os.path.join(args.output, "speedup.png"), os.path.join(args.output, "speedup_curves.png"))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])

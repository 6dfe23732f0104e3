"""Gradient variance vs batch size: flipout vs shared perturbation (paper §4.1).

For a fully connected net, a convolutional net (scikit-learn digits as 8×8
images) and an LSTM (each digit's 8 pixel rows as a length-8 sequence), this
script

1. trains the Bayesian model briefly with flipout on the negative ELBO
   (``kl_weight = 1/N``) so the variance is measured at a sensible point of
   training, not at the initialisation;
2. for batch sizes 1, 2, 4, …, ``--max-batch``, estimates the variance of the
   mini-batch gradient of the data term (mean cross-entropy) with respect to the
   posterior means, averaged over all weights
   (:func:`bayesflip.diagnostics.gradient_variance`; mini-batches i.i.d. with
   replacement; ``--repeats`` mini-batches per point, ``repeats·16/batch`` for
   batches below 16, whose single-example gradients are heavy-tailed), for ``flipout`` and
   ``shared``;
3. fits the log-log slope of variance against batch size and writes the slopes
   and curves to ``gradient_variance.json`` and the figure to ``gradient_variance.png``
   in the output folder (see ``benchmarks/_meta.py``).

An estimator whose per-example noise is independent has slope −1. Shared
perturbation adds a batch-size-independent term (every example sees the same
weight draw), so its curve flattens once that term dominates. The paper
reports exactly this; the numbers here are whatever this run produced.

The posterior scale matters: the weight noise has to be a visible part of the
gradient noise for the two estimators to differ. ``--init-scale`` sets the
initial posterior standard deviation (default 0.1, about the size of the
trained weights' spread on this data).

Usage: ``python -m benchmarks run gradient_variance [--repeats 100] [--max-batch 512] [--models fc conv lstm]``
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

import bayesflip  # noqa: E402
from bayesflip import layers as bl  # noqa: E402
from bayesflip.diagnostics import loglog_slope, variance_vs_batch_size  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402


def load_digits():
    from sklearn.datasets import load_digits as _load

    x, y = _load(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int64")


def _lstm_class():
    for name in ("LSTMFlipout", "LSTMCellFlipout"):
        if hasattr(bl, name):
            return getattr(bl, name)
    return None


def build_model(kind: str, init_scale: float, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)  # initial posterior means and fit's shuffling
    kw = dict(init_scale=init_scale)
    if kind == "fc":
        return keras.Sequential(
            [
                keras.Input((64,)),
                bl.DenseFlipout(128, activation="relu", seed=seed, **kw),
                bl.DenseFlipout(128, activation="relu", seed=seed + 1, **kw),
                bl.DenseFlipout(10, seed=seed + 2, **kw),
            ],
            name="fc",
        )
    if kind == "conv":
        return keras.Sequential(
            [
                keras.Input((8, 8, 1)),
                bl.Conv2DFlipout(16, 3, padding="same", activation="relu", seed=seed, **kw),
                bl.Conv2DFlipout(32, 3, strides=2, padding="same", activation="relu", seed=seed + 1, **kw),
                keras.layers.Flatten(),
                bl.DenseFlipout(10, seed=seed + 2, **kw),
            ],
            name="conv",
        )
    if kind == "lstm":
        lstm = _lstm_class()
        if lstm is None:
            raise RuntimeError("bayesflip.layers has no LSTMFlipout yet")
        return keras.Sequential(
            [keras.Input((8, 8)), lstm(64, seed=seed, **kw), bl.DenseFlipout(10, seed=seed + 2, **kw)],
            name="lstm",
        )
    raise ValueError(f"bench_gradient_variance: unknown model kind {kind!r}; expected fc, conv or lstm.")


def inputs_for(kind: str, x: np.ndarray) -> np.ndarray:
    return {"fc": x, "conv": x.reshape(-1, 8, 8, 1), "lstm": x.reshape(-1, 8, 8)}[kind]


def run(kinds, repeats, max_batch, init_scale, train_epochs, seed=0):
    x, y = load_digits()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    sizes = [2**k for k in range(int(np.log2(max_batch)) + 1)]
    out = {
        "method": (
            "variance over i.i.d. mini-batches (with replacement) of the gradient of the mean cross-entropy "
            "w.r.t. the posterior means, averaged over all weights; fresh weight noise per mini-batch"
        ),
        "batch_sizes": sizes,
        "repeats": repeats,
        "repeats_rule": "max(repeats, repeats*16//batch)",
        "init_scale": init_scale,
        "train_epochs": train_epochs,
        "models": {},
    }
    for kind in kinds:
        try:
            model = build_model(kind, init_scale, seed)
        except RuntimeError as err:
            print(f"[{kind}] skipped: {err}")
            out["models"][kind] = {"skipped": str(err)}
            continue
        xi = inputs_for(kind, x)
        bayesflip.set_kl_weight(model, num_examples=len(xi))
        model.compile(
            keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        t0 = time.time()
        hist = model.fit(xi, y, batch_size=64, epochs=train_epochs, verbose=0)
        with bayesflip.posterior_mean(model):
            acc = float(np.mean(np.argmax(model.predict(xi, verbose=0), -1) == y))
        res = {"train_loss": float(hist.history["loss"][-1]), "train_accuracy_posterior_mean": acc}
        for est in ("flipout", "shared"):
            curve = variance_vs_batch_size(model, xi, y, loss, sizes, repeats, estimator=est, seed=seed)
            v = curve["variance"]
            slope = loglog_slope(sizes, v)
            slope_small = loglog_slope(sizes[: len(sizes) // 2 + 1], v[: len(sizes) // 2 + 1])
            slope_large = loglog_slope(sizes[len(sizes) // 2 :], v[len(sizes) // 2 :])
            res[est] = {
                "variance": v,
                "per_layer": curve["per_layer"],
                "slope": slope,
                "slope_small_batches": slope_small,
                "slope_large_batches": slope_large,
            }
            print(
                f"[{kind}] {est:8s} slope {slope:+.3f}  (batches {sizes[0]}-{sizes[len(sizes) // 2]}: {slope_small:+.3f}, "
                f"{sizes[len(sizes) // 2]}-{sizes[-1]}: {slope_large:+.3f})  var@1={v[0]:.3g} var@{sizes[-1]}={v[-1]:.3g}",
                flush=True,
            )
        res["variance_ratio_shared_over_flipout_at_max_batch"] = (
            res["shared"]["variance"][-1] / res["flipout"]["variance"][-1]
        )
        res["seconds"] = time.time() - t0
        out["models"][kind] = res
    return out


def plot(out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k, r in out["models"].items() if "skipped" not in r]
    fig, axes = plt.subplots(1, max(1, len(kinds)), figsize=(4.2 * max(1, len(kinds)), 3.6), squeeze=False)
    sizes = np.array(out["batch_sizes"], float)
    for ax, kind in zip(axes[0], kinds):
        r = out["models"][kind]
        for est, style in (("flipout", "o-"), ("shared", "s--")):
            ax.loglog(sizes, r[est]["variance"], style, label=f"{est} (slope {r[est]['slope']:+.2f})")
        v0 = r["flipout"]["variance"][0]
        ax.loglog(sizes, v0 / sizes, ":", color="gray", label="ideal 1/batch")
        ax.set_title(kind)
        ax.set_xlabel("batch size")
        ax.set_ylabel("gradient variance (mean over weights)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["fc", "conv", "lstm"], choices=["fc", "conv", "lstm"])
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--max-batch", type=int, default=512)
    p.add_argument("--init-scale", type=float, default=0.1)
    p.add_argument("--train-epochs", type=int, default=5)
    p.add_argument(
        "--quick", action="store_true", help="smoke run: FC only, 4 repeats, batches up to 8, 1 epoch"
    )
    p.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    args = p.parse_args(argv)
    output_dir(p, args, dest="out")
    if args.quick:
        args.models, args.repeats, args.max_batch, args.train_epochs = ["fc"], 4, 8, 1
    os.makedirs(args.out, exist_ok=True)
    out = run(args.models, args.repeats, args.max_batch, args.init_scale, args.train_epochs)
    out = write_json(os.path.join(args.out, "gradient_variance.json"), out, args)
    plot(out, os.path.join(args.out, "gradient_variance.png"))
    print(f"wrote {args.out}/gradient_variance.json and gradient_variance.png")
    return out


if __name__ == "__main__":
    main(sys.argv[1:])

"""Ablation of a flipout BNN's defaults on the main job's task (digits, 64-128-128-10 MLP).

Each configuration changes one choice against the library defaults
(``Normal(0, 1)`` prior, ``init_scale=1e-2``, no KL warm-up, ``T = 1``: the
per-example negative ELBO) and is trained exactly as ``bayesflip demo`` trains
its BNN (Adam 1e-2, 60 epochs, batch 64, on 85 % of the training split), for
several seeds. Reported per configuration, mean ± sd over seeds:

* ``val_nll``: NLL of the MC predictive on the held-out 15 % — the number a
  choice is made on (the test split is never used to choose);
* test accuracy, NLL and ECE (15 bins) of the MC predictive (32 draws);
* OOD AUROC from the predictive entropy against the demo's ``permuted`` and
  ``noise`` digits;
* the last epoch's training NLL and KL per example (``ELBOTerms``).

The deterministic net of the demo is trained on the same data as a reference.

Usage::

    python -m benchmarks run ablation_defaults               # all, seeds 0 1 2
    python -m benchmarks run ablation_defaults --configs default temperature_0.1

Writes ``ablation_defaults.json`` and ``ablation_defaults.md`` into the output folder (see
``benchmarks/_meta.py``; runs of other configurations/seeds already there are kept).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from bayesflip import calibration, priors, uncertainty  # noqa: E402
from bayesflip.datasets import corrupt_images, load_digits  # noqa: E402
from bayesflip.demo import (  # noqa: E402
    OOD_KINDS,
    _holdout,
    build_bayesian_mlp,
    build_deterministic_mlp,
    fit_bayesian_mlp,
    fit_deterministic_mlp,
)
from benchmarks._meta import output_dir, write_json  # noqa: E402


class FanInNormal(priors.Prior):
    """``N(0, gain² / fan_in)`` per weight tensor (the He/LeCun initialisation scale as a prior)."""

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def build(self, layer, shape, name):
        fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        return priors.Normal(0.0, self.gain / math.sqrt(fan_in))

    def distribution(self, shape, dtype="float32"):
        return priors.Normal().distribution(shape, dtype)

    def get_config(self):
        return {"gain": self.gain}


#: name -> (layer kwargs, fit kwargs, what it tests)
CONFIGS: dict[str, tuple[dict, dict, str]] = {
    "default": ({}, {"temperature": 1.0}, "N(0, 1) prior, init_scale 1e-2, T = 1"),
    "prior_fan_in": ({"prior": FanInNormal(1.0)}, {"temperature": 1.0}, "prior N(0, 1/fan_in)"),
    "prior_he": ({"prior": FanInNormal(math.sqrt(2.0))}, {"temperature": 1.0}, "prior N(0, 2/fan_in)"),
    "prior_0.3": ({"prior": priors.Normal(0.0, 0.3)}, {"temperature": 1.0}, "prior N(0, 0.3²)"),
    "prior_learnable": (
        {"prior": priors.LearnableNormal(scale=1.0)},
        {"temperature": 1.0},
        "empirical Bayes LearnableNormal (init 1)",
    ),
    "prior_scale_mixture": (
        {"prior": priors.ScaleMixtureNormal()},
        {"temperature": 1.0},
        "ScaleMixtureNormal(0.5, 1, 0.0025), Monte Carlo KL",
    ),
    "init_scale_1e-3": ({"init_scale": 1e-3}, {"temperature": 1.0}, "posterior init scale 1e-3"),
    "init_scale_1e-1": ({"init_scale": 1e-1}, {"temperature": 1.0}, "posterior init scale 1e-1"),
    "kl_warmup_10": ({}, {"temperature": 1.0, "kl_warmup_epochs": 10}, "linear KL warm-up over 10 epochs"),
    "temperature_0.3": ({}, {"temperature": 0.3}, "tempered posterior T = 0.3"),
    "temperature_0.1": ({}, {"temperature": 0.1}, "tempered posterior T = 0.1"),
    "temperature_0.03": ({}, {"temperature": 0.03}, "tempered posterior T = 0.03"),
    "temperature_0.3_warmup": ({}, {"temperature": 0.3, "kl_warmup_epochs": 10}, "T = 0.3 and KL warm-up 10"),
    "temperature_0.1_warmup": ({}, {"temperature": 0.1, "kl_warmup_epochs": 10}, "T = 0.1 and KL warm-up 10"),
    "temperature_0.03_warmup": (
        {},
        {"temperature": 0.03, "kl_warmup_epochs": 10},
        "T = 0.03 and KL warm-up 10",
    ),
    "temperature_0.3_cosine": (
        {},
        {"temperature": 0.3, "schedule": "cosine"},
        "T = 0.3, cosine learning-rate decay",
    ),
    "temperature_0.1_cosine": (
        {},
        {"temperature": 0.1, "schedule": "cosine"},
        "T = 0.1, cosine learning-rate decay",
    ),
    "temperature_0.1_warmup_cosine": (
        {},
        {"temperature": 0.1, "kl_warmup_epochs": 10, "schedule": "cosine"},
        "T = 0.1, KL warm-up 10, cosine learning-rate decay",
    ),
    "temperature_0.1_prior_fan_in": (
        {"prior": FanInNormal(1.0)},
        {"temperature": 0.1},
        "T = 0.1 and prior N(0, 1/fan_in)",
    ),
    "temperature_0.1_learnable": (
        {"prior": priors.LearnableNormal(scale=1.0)},
        {"temperature": 0.1},
        "T = 0.1 and LearnableNormal prior",
    ),
}
#: deterministic references: name -> learning-rate schedule
DETERMINISTIC = {None: "constant", "deterministic_cosine": "cosine"}
METRICS = ("val_nll", "accuracy", "nll", "ece", "auroc_permuted", "auroc_noise", "train_nll", "train_kl")


def _scores(labels, probs) -> dict:
    return {
        "accuracy": float(np.mean(np.argmax(probs, -1) == labels)),
        "nll": calibration.negative_log_likelihood(labels, probs),
        "ece": calibration.expected_calibration_error(labels, probs, num_bins=15),
    }


def run_one(name: str | None, seed: int, epochs: int, num_samples: int = 32) -> dict:
    """Train one configuration (``None``/``"deterministic_cosine"``: the deterministic reference) for one seed."""
    data = load_digits(seed=seed)
    x_train, x_val, y_train, y_val = _holdout(data.x_train, data.y_train, seed)
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    if name in DETERMINISTIC:
        model = build_deterministic_mlp(64, 10)
        fit_deterministic_mlp(model, x_train, y_train, epochs=epochs, schedule=DETERMINISTIC[name])

        def predict(x):  # the demo's networks output logits
            return keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0), axis=-1))

        extra = {}
    else:
        layer_kwargs, fit_kwargs, _ = CONFIGS[name]
        model = build_bayesian_mlp(64, 10, seed=seed, **layer_kwargs)
        history = fit_bayesian_mlp(model, x_train, y_train, epochs=epochs, **fit_kwargs).history

        def predict(x):
            return uncertainty.mc_predict(model, x, num_samples=num_samples, from_logits=True)

        extra = {"train_nll": float(history["nll"][-1]), "train_kl": float(history["kl"][-1])}
    seconds = time.perf_counter() - t0
    probs = predict(data.x_test)
    result = {"config": name or "deterministic", "seed": seed, "seconds": seconds, **extra}
    result |= _scores(data.y_test, probs)
    result["val_nll"] = calibration.negative_log_likelihood(y_val, predict(x_val))
    entropy_in = uncertainty.predictive_entropy(probs)
    for kind in OOD_KINDS:
        entropy_out = uncertainty.predictive_entropy(predict(corrupt_images(data.x_test, kind, seed=seed)))
        result[f"auroc_{kind}"] = uncertainty.ood_auroc(entropy_in, entropy_out)
    return result


def summarize(runs: list[dict]) -> dict:
    """Mean and sd over seeds of every metric, per configuration (in ``CONFIGS`` order)."""
    order = ["deterministic", "deterministic_cosine", *CONFIGS]
    table: dict = {}
    for run in sorted(runs, key=lambda r: (order.index(r["config"]), r["seed"])):
        table.setdefault(run["config"], []).append(run)
    out = {}
    for config, rows in table.items():
        out[config] = {"seeds": len(rows)}
        for metric in METRICS:
            values = [r[metric] for r in rows if metric in r]
            if values:
                out[config][metric] = {
                    "mean": float(np.mean(values)),
                    "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                }
    return out


def markdown(summary: dict) -> str:
    head = "| configuration | what changes | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for config, row in summary.items():
        what = CONFIGS[config][2] if config in CONFIGS else f"keras Dense, same training ({config})"
        cells = [f"{row[m]['mean']:.4f} ± {row[m]['sd']:.4f}" if m in row else "—" for m in METRICS]
        lines.append(f"| {config} | {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=[*CONFIGS, "deterministic_cosine"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 configurations, 1 seed, 2 epochs")
    parser.add_argument(
        "--output",
        default=None,
        help="output folder (default: see benchmarks/_meta.py); runs already in its ablation_defaults.json "
        "for other configurations/seeds are kept, so extra seeds join the committed results with "
        "--output benchmarks/results",
    )
    args = parser.parse_args(argv)
    output_dir(parser, args)
    if args.quick:
        args.configs, args.seeds, args.epochs = ["default", "temperature_0.1"], [0], 2
    path = os.path.join(args.output, "ablation_defaults.json")
    runs = []
    if os.path.exists(path):  # keep the runs of configurations/seeds not rerun now
        with open(path) as f:
            rerun = {(c, s) for c in ["deterministic", *args.configs] for s in args.seeds}
            runs = [r for r in json.load(f)["runs"] if (r["config"], r["seed"]) not in rerun]
    for seed in args.seeds:
        for name in [None, *args.configs]:
            runs.append(run_one(name, seed, args.epochs))
            print(
                json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in runs[-1].items()}),
                flush=True,
            )
    summary = summarize(runs)
    os.makedirs(args.output, exist_ok=True)
    write_json(path, {"epochs": args.epochs, "runs": runs, "summary": summary}, args)
    table = markdown(summary)
    with open(os.path.join(args.output, "ablation_defaults.md"), "w") as f:
        f.write(table)
    print(table)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])

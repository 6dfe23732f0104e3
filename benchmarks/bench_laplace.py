"""Laplace approximations of trained MAP networks: test NLL / ECE / LL against MAP, and fit time.

Run from the repository root::

    KERAS_BACKEND=tensorflow python benchmarks/bench_laplace.py            # 3 seeds
    KERAS_BACKEND=tensorflow python benchmarks/bench_laplace.py --quick    # 1 seed, short training

Protocol, per seed:

- **Digits** (scikit-learn, the main job's data): the demo's split
  (``bayesflip.datasets.load_digits``, 20 % test) and its 15 % held-out part;
  the demo's deterministic 64-128-128-10 MLP, optimizer and budget
  (``bayesflip.demo.build_deterministic_mlp`` / ``fit_deterministic_mlp``, 60
  epochs, batch 64, Adam 1e-2, cosine decay) trained on the other 85 %: the MAP
  network.
- **Diabetes** (scikit-learn's bundled regression set, 442 examples): a random
  64 / 16 / 20 % train / validation / test split, inputs and targets
  standardised on the training part, a 10-50-1 ReLU MLP trained with MSE (Adam
  1e-2, batch 32, at most 500 epochs, early-stopped on the validation loss with
  patience 20, best weights restored). MAP predictive: ``N(f(x), σ²)`` with ``σ`` the
  validation RMSE (a fair noise estimate for the MAP baseline).

Laplace methods on the same MAP network (no retraining): last-layer KFAC with
the GLM predictive (probit for digits) and all-layer diagonal with the GLM
predictive, each with the prior precision (and for diabetes the noise) chosen
by the marginal likelihood on the training data, and last-layer KFAC with the
prior precision chosen by validation NLL on the held-out part (the grid of
``optimize_prior_precision``, with the noise's NLL-best value at each grid
point for diabetes); plus their NN predictives
(weights sampled through the network, 100 draws) to back the "which
predictive" advice. Metrics on the test split: accuracy, NLL, ECE (15 equal-width
bins), Brier for digits; mean Gaussian log-likelihood per example (targets in
original units) for diabetes. Times: the MAP net's training (``model.fit``)
and each Laplace fit (curvature + hyper-parameter optimisation). Reported:
mean and standard deviation over seeds. Writes ``laplace.json`` into
``--output`` (default ``benchmarks/results/scratch``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Sequence

import keras
import numpy as np

from bayesflip import calibration
from bayesflip.datasets import load_digits
from bayesflip.demo import build_deterministic_mlp, fit_deterministic_mlp
from bayesflip.laplace import fit_laplace
from benchmarks._meta import output_dir, write_json

#: name -> (fit_laplace arguments, how the prior precision is chosen)
_METHODS = {
    "kfac_last_layer": ({"subset_of_weights": "last_layer", "hessian_structure": "kron"}, "marglik"),
    "kfac_last_layer_val_nll": ({"subset_of_weights": "last_layer", "hessian_structure": "kron"}, "val_nll"),
    "diag_all_layers": ({"subset_of_weights": "all", "hessian_structure": "diag"}, "marglik"),
}


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    return {
        "accuracy": float(np.mean(np.argmax(probs, -1) == labels)),
        "nll": calibration.negative_log_likelihood(labels, probs),
        "ece": calibration.expected_calibration_error(labels, probs, num_bins=15),
        "brier": calibration.brier_score(labels, probs),
    }


def run_digits(seed: int, epochs: int) -> dict:
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(seed)
    data = load_digits(seed=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        data.x_train, data.y_train, test_size=0.15, random_state=seed, stratify=data.y_train
    )
    net = build_deterministic_mlp(64, 10)
    start = time.perf_counter()
    fit_deterministic_mlp(net, x_train, y_train, epochs=epochs, schedule="cosine")
    train_time = time.perf_counter() - start
    out = {
        "train_time_s": train_time,
        "map": _scores(data.y_test, _softmax(net.predict(data.x_test, verbose=0))),
    }
    for name, (kwargs, tuning) in _METHODS.items():
        start = time.perf_counter()
        la = fit_laplace(net, x_train, y_train, likelihood="categorical", verbose=0, **kwargs)
        la.optimize_prior_precision(method=tuning, x_val=x_val, y_val=y_val)
        fit_time = time.perf_counter() - start
        glm = la.predict(data.x_test)
        nn = la.predict(data.x_test, pred_type="nn", num_samples=100, seed=seed)
        out[name] = {
            "fit_time_s": fit_time,
            "fit_time_fraction_of_training": fit_time / train_time,
            "prior_precision": la.prior_precision.tolist(),
            "glm": _scores(data.y_test, glm),
            "nn": _scores(data.y_test, nn),
        }
    return out


def _gaussian_ll(y: np.ndarray, mean: np.ndarray, var: np.ndarray, y_scale: float) -> float:
    ll = -0.5 * np.log(2 * np.pi * var) - 0.5 * (y - mean) ** 2 / var
    return float(np.mean(ll) - np.log(y_scale))  # per example, in the target's original units


def run_diabetes(seed: int, epochs: int) -> dict:
    from sklearn.datasets import load_diabetes

    keras.utils.set_random_seed(seed)
    x, y = load_diabetes(return_X_y=True)
    perm = np.random.default_rng(seed).permutation(len(x))
    n_test, n_val = int(0.2 * len(x)), int(0.16 * len(x))
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    x_mean, x_std = x[train].mean(0), x[train].std(0)
    y_mean, y_std = y[train].mean(), y[train].std()
    xs = ((x - x_mean) / x_std).astype("float32")
    ys = ((y - y_mean) / y_std).astype("float32")[:, None]
    net = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(50, activation="relu"), keras.layers.Dense(1)]
    )
    net.compile(keras.optimizers.Adam(1e-2), "mse")
    start = time.perf_counter()
    stop = keras.callbacks.EarlyStopping(patience=20, restore_best_weights=True)
    net.fit(
        xs[train],
        ys[train],
        epochs=epochs,
        batch_size=32,
        validation_data=(xs[val], ys[val]),
        callbacks=[stop],
        verbose=0,
    )
    train_time = time.perf_counter() - start
    mean_val = net.predict(xs[val], verbose=0)
    sigma = float(np.sqrt(np.mean((mean_val - ys[val]) ** 2)))
    mean_test = net.predict(xs[test], verbose=0)
    out = {
        "train_time_s": train_time,
        "map": {
            "ll": _gaussian_ll(ys[test], mean_test, np.full_like(mean_test, sigma**2), y_std),
            "sigma": sigma,
        },
    }
    for name, (kwargs, tuning) in _METHODS.items():
        start = time.perf_counter()
        la = fit_laplace(net, xs[train], ys[train], likelihood="regression", verbose=0, **kwargs)
        la.optimize_prior_precision(method=tuning, x_val=xs[val], y_val=ys[val])
        fit_time = time.perf_counter() - start
        glm = la.predict(xs[test])
        nn = la.predict(xs[test], pred_type="nn", num_samples=100, seed=seed)
        out[name] = {
            "fit_time_s": fit_time,
            "fit_time_fraction_of_training": fit_time / train_time,
            "prior_precision": la.prior_precision.tolist(),
            "sigma": la.sigma_noise,
            "glm": {"ll": _gaussian_ll(ys[test], glm.mean, glm.total_variance, y_std)},
            "nn": {"ll": _gaussian_ll(ys[test], nn.mean, nn.total_variance, y_std)},
        }
    return out


def _summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of every number (same nesting as one run)."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: _summarise([r[k] for r in runs]) for k in first}
    if isinstance(first, list):
        return {"per_seed": runs}
    values = np.asarray(runs, np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "per_seed": values.tolist()}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, short training (smoke run)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta)")
    args = parser.parse_args(argv)
    output = output_dir(parser, args)
    seeds = list(range(1 if args.quick else args.seeds))
    digits_epochs, diabetes_epochs = (5, 20) if args.quick else (60, 500)
    digits = [run_digits(s, digits_epochs) for s in seeds]
    diabetes = [run_diabetes(s, diabetes_epochs) for s in seeds]
    report = {
        "config": {
            "seeds": seeds,
            "quick": args.quick,
            "digits_epochs": digits_epochs,
            "diabetes_epochs": diabetes_epochs,
            "methods": _METHODS,
            "prior_precision": "global; marglik (noise too for diabetes) or val_nll on the held-out part",
            "nn_predictive_samples": 100,
            "keras": keras.__version__,
            "machine": platform.machine(),
        },
        "digits": _summarise(digits),
        "diabetes": _summarise(diabetes),
    }
    path = os.path.join(output, "laplace.json")
    report = write_json(path, report, args)
    _print(report)
    print(f"\nwritten to {path}")
    return report


def _print(report: dict) -> None:
    d, r = report["digits"], report["diabetes"]
    print("digits            NLL      ECE      acc      fit/train")
    print(
        f"  MAP           {d['map']['nll']['mean']:.4f}   {d['map']['ece']['mean']:.4f}   {d['map']['accuracy']['mean']:.4f}"
    )
    for name in _METHODS:
        for pred in ("glm", "nn"):
            s = d[name][pred]
            frac = d[name]["fit_time_fraction_of_training"]["mean"]
            print(
                f"  {name}/{pred:<3} {s['nll']['mean']:.4f}   {s['ece']['mean']:.4f}   {s['accuracy']['mean']:.4f}   {frac:.3f}"
            )
    print("diabetes          test LL (per example, original units)   fit/train")
    print(f"  MAP           {r['map']['ll']['mean']:.4f}")
    for name in _METHODS:
        for pred in ("glm", "nn"):
            frac = r[name]["fit_time_fraction_of_training"]["mean"]
            print(f"  {name}/{pred:<3} {r[name][pred]['ll']['mean']:.4f}   {frac:.3f}")


if __name__ == "__main__":
    main()

"""Settings of the main job's rank-1 net, chosen on held-out NLL (never the test split).

The demo's MLP (64-128-128-10) on the demo's split of digits (train on 85 % of
the training split, score on the other 15 %), each setting over seeds 0–2 with
the demo's budget (60 epochs, Adam 1e-2 with cosine decay, 10-epoch KL warm-up,
batch 64, 32 posterior samples). The grid varies one thing at a time around
the paper's settings (``Rank1()``: ``K = 4``, prior ``N(1, 0.1²)``, random-sign
init 0.5; ``T = 1``; batches tiled ``K`` times): the posterior temperature, the
init, the prior scale (0.03 / 0.1 / 0.3 / 1, with the Gaussian init), ``K``, and tiled
vs split batches. The deterministic net is scored on the
same split for reference. Writes ``demo_rank1_settings.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence

import keras
import numpy as np

from bayesflip import calibration, uncertainty
from bayesflip.datasets import load_digits
from bayesflip.demo import (
    _holdout,
    _softmax,
    build_bayesian_mlp,
    build_deterministic_mlp,
    fit_bayesian_mlp,
    fit_deterministic_mlp,
)
from bayesflip.posteriors import Rank1
from benchmarks._meta import output_dir, write_json

#: name -> (Rank1 keyword arguments, posterior temperature, tiled)
GRID = {
    "K4 sign0.5 T1 tiled (paper)": (dict(num_components=4), 1.0, True),
    "K4 sign0.5 T0.3 tiled": (dict(num_components=4), 0.3, True),
    "K4 gauss0.5 T1 tiled": (dict(num_components=4, random_sign_init=-0.5), 1.0, True),
    "K4 gauss0.5 prior0.3 T1 tiled": (
        dict(num_components=4, random_sign_init=-0.5, prior_scale=0.3),
        1.0,
        True,
    ),
    "K4 gauss0.5 prior1 T1 tiled": (
        dict(num_components=4, random_sign_init=-0.5, prior_scale=1.0),
        1.0,
        True,
    ),
    "K4 gauss0.5 prior0.03 T1 tiled": (
        dict(num_components=4, random_sign_init=-0.5, prior_scale=0.03),
        1.0,
        True,
    ),
    "K2 sign0.5 T1 tiled": (dict(num_components=2), 1.0, True),
    "K4 sign0.5 T1 split": (dict(num_components=4), 1.0, False),
}


def _scores(labels: np.ndarray, probs: np.ndarray) -> dict:
    return {
        "nll": calibration.negative_log_likelihood(labels, probs),
        "ece": calibration.expected_calibration_error(labels, probs, num_bins=15),
        "accuracy": float(np.mean(probs.argmax(-1) == labels)),
    }


def run(seeds: Sequence[int], epochs: int, grid: dict) -> dict:
    results: dict = {"deterministic": {}} | {name: {} for name in grid}
    for seed in seeds:
        data = load_digits(seed=seed)
        x_train, x_val, y_train, y_val = _holdout(data.x_train, data.y_train, seed)
        keras.utils.set_random_seed(seed)
        det = build_deterministic_mlp(x_train.shape[1], 10)
        fit_deterministic_mlp(det, x_train, y_train, epochs=epochs, schedule="cosine")
        results["deterministic"][seed] = _scores(y_val, _softmax(det.predict(x_val, verbose=0)))
        for name, (family, temperature, tiled) in grid.items():
            keras.utils.set_random_seed(seed)
            t0 = time.process_time()
            model = build_bayesian_mlp(x_train.shape[1], 10, seed=seed, posterior=Rank1(**family))
            fit_bayesian_mlp(
                model,
                x_train,
                y_train,
                temperature=temperature,
                epochs=epochs,
                schedule="cosine",
                kl_warmup_epochs=10,
                tile_components=family["num_components"] if tiled else 1,
            )
            probs = np.asarray(uncertainty.mc_predict(model, x_val, num_samples=32, from_logits=True))
            results[name][seed] = _scores(y_val, probs) | {"cpu_seconds": time.process_time() - t0}
            print(seed, name, results[name][seed], flush=True)
    summary = {
        name: {key: float(np.mean([r[key] for r in per_seed.values()])) for key in ("nll", "ece", "accuracy")}
        for name, per_seed in results.items()
    }
    best = min((n for n in grid), key=lambda n: summary[n]["nll"])
    return {"per_seed": results, "mean": summary, "best_held_out_nll": best}


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs (results go to scratch)")
    parser.add_argument("--output", default=None, help="folder of the JSON (default: see benchmarks/_meta)")
    args = parser.parse_args(argv)
    output = output_dir(parser, args)
    seeds, epochs = ([0], 2) if args.quick else (args.seeds, args.epochs)
    result = {"config": {"seeds": seeds, "epochs": epochs, "grid": {k: list(v) for k, v in GRID.items()}}}
    result |= run(seeds, epochs, GRID)
    result = write_json(os.path.join(output, "demo_rank1_settings.json"), result, args)
    print(json.dumps(result["mean"], indent=1), "\nbest:", result["best_held_out_nll"])
    return result


if __name__ == "__main__":
    main()

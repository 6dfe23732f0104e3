"""Conformal prediction on the flipout BNN: coverage and width / set size over random splits.

Run from the repository root::

    python -m benchmarks run conformal            # 20 splits (~10 min on 2 cores)
    python -m benchmarks run conformal --quick    # smoke run (< 1 min)

Protocol (reuses ``suite.py``'s data loaders, networks and compiled training loop):

- **Regression** (UCI sets of ``uci_data.py``): each split is a random permutation
  into train 60 % / calibration 20 % / test 20 % (the UCI protocol's 90/10
  train/test, with a calibration part carved out and a larger test part so the
  per-split coverage is less noisy). Inputs and targets standardised on the
  training part; ``suite.build_regressor("flipout")`` (one hidden layer of 50
  ReLU units, ``DenseFlipout`` with library defaults, homoscedastic
  ``GaussianHead``, ``set_kl_weight(model, num_examples=n_train)``), the suite's
  epochs/batch/learning rate; plus the same network with a heteroscedastic
  ``GaussianHead`` (``flipout_hetero``). Predictive: ``mc_predict`` with the
  suite's number of samples (a ``RegressionPredictive``).
  Methods at α = 0.1: ``raw`` (the predictive mixture's 5 % / 95 % quantiles,
  no calibration), ``absolute`` (``μ ± q̂``), ``normalized`` (``μ ± q̂ σ``,
  σ = predictive sd), ``cqr`` (mixture quantiles widened by ``q̂``). Widths in
  the target's original units.
- **Digits** (scikit-learn): each split a random permutation into train 60 % /
  calibration 20 % / test 20 %; the demo's 64-128-128-10 flipout MLP
  (``suite.build_classifier("flipout")``) with the demo's training budget;
  MC-averaged probabilities. Methods at α = 0.1: ``raw`` (smallest set of top
  classes with predictive mass ≥ 1 − α, no calibration), ``lac``,
  ``aps`` / ``raps`` (randomised), ``aps_nonrand`` / ``raps_nonrand``
  (non-randomised, plain split-conformal sets).

Every split: coverage, mean width / set size, and the worst coverage over
groups (quintiles of the predictive sd; true classes for digits). Reported:
mean ± standard error over splits. Writes ``conformal.json`` and ``conformal.md``
into ``--output`` (default ``benchmarks/results``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip import conformal as cf  # noqa: E402
from bayesflip import heads  # noqa: E402
from bayesflip.layers import DenseFlipout  # noqa: E402
from bayesflip.uncertainty import mc_predict  # noqa: E402
from benchmarks import suite, uci_data  # noqa: E402
from benchmarks._meta import metadata, output_dir  # noqa: E402

REG_METHODS = ("raw", "absolute", "normalized", "cqr")
CLS_METHODS = ("raw", "lac", "aps", "aps_nonrand", "raps", "raps_nonrand")
MODELS = ("flipout", "flipout_hetero")
FRACTIONS = (0.6, 0.2, 0.2)  # train / calibration / test


#: The regression nets' fixed budget (epochs, Adam learning rate): the suite's before its validation
#: search; conformal calibration needs a trained net, not the best one.
REG_EPOCHS, QUICK_REG_EPOCHS, REG_LR = 40, 3, 1e-2


def split_indices(n: int, rng: np.random.Generator):
    perm = rng.permutation(n)
    a, b = int(round(FRACTIONS[0] * n)), int(round((FRACTIONS[0] + FRACTIONS[1]) * n))
    return perm[:a], perm[a:b], perm[b:]


def build_hetero(dim: int, n_train: int, cfg, seed: int = 0) -> keras.Model:
    """The suite's regression BNN with a heteroscedastic Gaussian head (loc and raw scale)."""
    model = keras.Sequential(
        [
            keras.Input((dim,)),
            DenseFlipout(cfg.hidden, activation="relu", seed=seed),
            DenseFlipout(2, seed=seed + 1),
            heads.GaussianHead(units=1),
        ],
        name="reg_hetero",
    )
    bayesflip.set_kl_weight(model, num_examples=n_train)
    return model


def _worst_group(covered, values, groups=5) -> float:
    return cf.coverage_by_group(covered, cf.quantile_groups(values, groups)).worst


def regression_split(model, xs, ys, x_cal, y_cal, x_te, y_te, alpha, num_samples) -> dict:
    p_cal = mc_predict(model, xs.transform(x_cal), num_samples=num_samples)
    p_te = mc_predict(model, xs.transform(x_te), num_samples=num_samples)
    y_cal_s = ys.transform(y_cal)
    out = {}
    lo, hi = (b[:, 0] for b in p_te.interval(1 - alpha))
    intervals = {"raw": (lo, hi)}
    for score in ("absolute", "normalized", "cqr"):
        cr = cf.ConformalRegressor(score=score).fit_predictive(p_cal, y_cal_s)
        intervals[score] = cr.predict_predictive(p_te, alpha)
    sd = np.sqrt(p_te.total_variance[:, 0])
    y_te_s = ys.transform(y_te)
    for m, (a, b) in intervals.items():
        covered = cf.interval_covered(y_te_s, a, b)
        out[m] = {
            "coverage": float(covered.mean()),
            "width": cf.mean_width(a, b) * float(ys.std),
            "worst_sd_quintile": _worst_group(covered, sd),
        }
    return out


def run_regression(name: str, cfg, args, log=print) -> dict:
    x, y = uci_data.load(name)
    n = len(x)
    tr0, ca0, te0 = split_indices(n, np.random.default_rng(0))
    n_train = len(tr0)
    _, loss_fn, head_name = suite.gaussian_head()
    builders = {
        "flipout": (lambda seed=0: suite.build_regressor("flipout", x.shape[1], n_train, cfg, seed), loss_fn),
        "flipout_hetero": (
            lambda seed=0: build_hetero(x.shape[1], n_train, cfg, seed),
            heads.GaussianNLL(reduction=None),
        ),
    }
    learners = {m: suite.Learner(b, lf, REG_LR) for m, (b, lf) in builders.items() if m in args.models}
    per = {
        m: {k: {s: [] for s in ("coverage", "width", "worst_sd_quintile")} for k in REG_METHODS}
        for m in learners
    }
    diverged = {m: 0 for m in learners}
    t0 = time.perf_counter()
    for split in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, split])
        tr, ca, te = split_indices(n, rng)
        xs, ys = suite.Standardizer.fit(x[tr]), suite.Standardizer.fit(y[tr])
        for m, learner in learners.items():
            learner.reset(1000 * cfg.seed + 100 * split + 1)
            ok = learner.fit(
                xs.transform(x[tr]),
                ys.transform(y[tr])[:, None],
                suite.batch_indices(len(tr), cfg.reg_batch, args.reg_epochs, rng),
            )
            if not ok:
                diverged[m] += 1
                continue
            res = regression_split(
                learner.model, xs, ys, x[ca], y[ca], x[te], y[te], args.alpha, cfg.reg_samples
            )
            for k, vals in res.items():
                for s, v in vals.items():
                    per[m][k][s].append(v)
        log(
            f"  {name} split {split + 1}/{cfg.splits} ({time.perf_counter() - t0:.0f} s): "
            + "  ".join(
                f"{m}: "
                + " ".join(
                    f"{k} {per[m][k]['coverage'][-1]:.2f}/{per[m][k]['width'][-1]:.2f}" for k in REG_METHODS
                )
                for m in learners
                if per[m]["raw"]["coverage"]
            )
        )
    out = {
        "n": n,
        "d": int(x.shape[1]),
        "n_train": n_train,
        "n_cal": len(ca0),
        "n_test": len(te0),
        "head": {"flipout": head_name, "flipout_hetero": "bayesflip.heads.GaussianHead(units=1)"},
        "models": {},
    }
    for m in learners:
        res = {k: {s: suite.mean_se(v) for s, v in d.items()} for k, d in per[m].items()}
        w = per[m]
        narrower = [a < b for a, b in zip(w["normalized"]["width"], w["absolute"]["width"])]
        out["models"][m] = {
            "methods": res,
            "diverged_splits": diverged[m],
            "normalized_narrower_than_absolute_splits": int(sum(narrower)),
            "per_split": {k: {"coverage": d["coverage"], "width": d["width"]} for k, d in w.items()},
        }
    return out


def run_digits(cfg, args, log=print) -> dict:
    from sklearn.datasets import load_digits

    data = load_digits()
    x, y = (data.data / 16.0).astype("float32"), data.target.astype("int64")
    n = len(x)
    n_train = len(split_indices(n, np.random.default_rng(0))[0])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)  # logit outputs
    learner = suite.Learner(
        lambda seed=0: suite.build_classifier("flipout", n_train, cfg, seed), loss_fn, cfg.cls_lr
    )
    per = {k: {s: [] for s in ("coverage", "size", "worst_class")} for k in CLS_METHODS}
    accuracy, diverged = [], 0
    t0 = time.perf_counter()
    for split in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, 50, split])
        tr, ca, te = split_indices(n, rng)
        learner.reset(1000 * cfg.seed + 100 * split + 7)
        if not learner.fit(x[tr], y[tr], suite.batch_indices(len(tr), cfg.cls_batch, cfg.cls_epochs, rng)):
            diverged += 1
            continue
        p_cal = mc_predict(learner.model, x[ca], num_samples=cfg.cls_samples, from_logits=True)
        p_te = mc_predict(learner.model, x[te], num_samples=cfg.cls_samples, from_logits=True)
        accuracy.append(float(np.mean(p_te.argmax(1) == y[te])))
        raw = cf.class_scores(p_te, "aps", randomized=False)
        sets = {"raw": cf.prediction_sets(raw, 1 - args.alpha, include_last=True)}
        for k in CLS_METHODS[1:]:
            score, randomized = k.split("_")[0], not k.endswith("nonrand")
            cc = cf.ConformalClassifier(
                score=score,
                randomized=randomized,
                lam=args.lam,
                k_reg=args.k_reg,
                seed=1000 * cfg.seed + split,
            )
            sets[k] = cc.fit_predictive(p_cal, y[ca]).predict_predictive(p_te, args.alpha)
        for k, s in sets.items():
            covered = cf.set_covered(s, y[te])
            per[k]["coverage"].append(float(covered.mean()))
            per[k]["size"].append(cf.mean_set_size(s))
            per[k]["worst_class"].append(cf.coverage_by_group(covered, y[te]).worst)
        log(
            f"  digits split {split + 1}/{cfg.splits} ({time.perf_counter() - t0:.0f} s): acc {accuracy[-1]:.3f}  "
            + "  ".join(f"{k} {per[k]['coverage'][-1]:.2f}/{per[k]['size'][-1]:.2f}" for k in CLS_METHODS)
        )
    return {
        "n": n,
        "n_train": n_train,
        "accuracy": suite.mean_se(accuracy),
        "diverged_splits": diverged,
        "raps": {"lam": args.lam, "k_reg": args.k_reg},
        "methods": {k: {s: suite.mean_se(v) for s, v in d.items()} for k, d in per.items()},
        "per_split": {k: {"coverage": d["coverage"], "size": d["size"]} for k, d in per.items()},
    }


# --------------------------------------------------------------------------- report
def _pm(pair, digits=3):
    m, se = pair
    return "—" if m is None or not math.isfinite(m) else f"{m:.{digits}f} ± {se:.{digits}f}"


def bars(report: dict) -> list[str]:
    lo, hi = 0.88, 0.93
    lines = []
    ok_cov = []
    for name, r in report["regression"].items():
        for m, mr in r["models"].items():
            for k in REG_METHODS[1:]:
                ok_cov.append((f"{name}/{m}/{k}", lo <= mr["methods"][k]["coverage"][0] <= hi))
    for k in CLS_METHODS[1:]:
        ok_cov.append((f"digits/{k}", lo <= report["digits"]["methods"][k]["coverage"][0] <= hi))
    miss = [n for n, ok in ok_cov if not ok]
    lines.append(
        f"- mean coverage at α = 0.1 within [{lo}, {hi}] for every conformal method: "
        f"{'**met**' if not miss else '**not met** for ' + ', '.join(miss)} "
        f"({len(ok_cov) - len(miss)}/{len(ok_cov)})"
    )
    models = sorted({m for r in report["regression"].values() for m in r["models"]})
    for m in models:
        narrower = [
            (
                name,
                r["models"][m]["methods"]["normalized"]["width"][0]
                < r["models"][m]["methods"]["absolute"]["width"][0],
            )
            for name, r in report["regression"].items()
            if m in r["models"]
        ]
        n_ok = sum(ok for _, ok in narrower)
        lines.append(
            f"- BNN-normalised intervals narrower on average than absolute-residual ones on most sets "
            f"({m}): {'**met**' if n_ok > len(narrower) / 2 else '**not met**'} ({n_ok}/{len(narrower)}: "
            + ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in narrower)
            + ")"
        )
    raps = report["digits"]["methods"]["raps"]["size"][0]
    lines.append(
        f"- RAPS mean set size at α = 0.1 on digits ≤ 1.5: {'**met**' if raps <= 1.5 else '**not met**'} "
        f"({raps:.3f})"
    )
    return lines


def markdown(report: dict) -> str:
    cfg = report["config"]
    out = [
        f"# Conformal prediction on the flipout BNN (α = {cfg['alpha']}, {cfg['splits']} random splits)",
        "",
        f"Splits train/calibration/test = {'/'.join(str(int(100 * f)) for f in FRACTIONS)} %; mean ± standard "
        f"error over splits. `raw` = the BNN's own 90 % predictive interval / set, no calibration. "
        f"Widths in the target's units. 'worst group' = lowest coverage over quintiles of the predictive sd "
        f"(regression) or over true classes (digits). Run time {report['seconds']:.0f} s.",
        "",
        "## Bars",
        "",
        *bars(report),
        "",
        "## Regression",
        "",
    ]
    for name, r in report["regression"].items():
        for m, mr in r["models"].items():
            out += [
                f"### {name} ({r['n']} × {r['d']}; train {r['n_train']}, calibration {r['n_cal']}, "
                f"test {r['n_test']}) — {m}: {r['head'][m]}",
                "",
                "| method | coverage | mean width | worst sd-quintile coverage |",
                "|---|---:|---:|---:|",
            ]
            for k in REG_METHODS:
                v = mr["methods"][k]
                out.append(
                    f"| {k} | {_pm(v['coverage'])} | {_pm(v['width'], 2)} | {_pm(v['worst_sd_quintile'])} |"
                )
            out += [
                "",
                f"normalised narrower than absolute on {mr['normalized_narrower_than_absolute_splits']}"
                f"/{len(mr['per_split']['normalized']['width'])} splits; diverged splits: "
                f"{mr['diverged_splits']}",
                "",
            ]
    d = report["digits"]
    out += [
        "## Digits",
        "",
        f"{d['n']} digits, train {d['n_train']}; test accuracy {_pm(d['accuracy'])}; "
        f"RAPS λ = {d['raps']['lam']}, k_reg = {d['raps']['k_reg']}; diverged splits: {d['diverged_splits']}",
        "",
        "| method | coverage | mean set size | worst class coverage |",
        "|---|---:|---:|---:|",
    ]
    for k in CLS_METHODS:
        v = d["methods"][k]
        out.append(f"| {k} | {_pm(v['coverage'])} | {_pm(v['size'])} | {_pm(v['worst_class'])} |")
    out += [
        "",
        "Notes: the non-randomised APS/RAPS score of a confidently right prediction is its top "
        "probability, which the MC-averaged float32 softmax often rounds to exactly 1.0; with more than "
        "α of the calibration scores tied at the top, q̂ sits on the tie and every class up to cumulative "
        "mass 1 enters the set: over-coverage and large APS sets. Randomisation (`aps`, `raps`) breaks the "
        "ties; so does RAPS' rank penalty, in part.",
    ]
    return "\n".join(out) + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 splits, short training (smoke run)")
    p.add_argument("--splits", type=int, default=None)
    p.add_argument("--sets", nargs="*", default=None)
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--lam", type=float, default=0.01, help="RAPS penalty λ")
    p.add_argument("--k-reg", type=int, default=1, help="RAPS k_reg")
    p.add_argument("--no-digits", action="store_true")
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    p.add_argument(
        "--render", action="store_true", help="only rewrite conformal.md from --output's conformal.json"
    )
    args = p.parse_args(argv)
    output_dir(p, args, ignore=("render",))
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.render:
        with open(os.path.join(args.output, "conformal.json")) as f:
            report = json.load(f)
        with open(os.path.join(args.output, "conformal.md"), "w") as f:
            f.write(markdown(report))
        return report
    cfg = suite.make_config(args.quick, sets=args.sets, splits=args.splits)
    args.reg_epochs = QUICK_REG_EPOCHS if args.quick else REG_EPOCHS
    t0 = time.perf_counter()
    report = {
        "meta": metadata(args),
        "config": {
            "alpha": args.alpha,
            "splits": cfg.splits,
            "fractions": FRACTIONS,
            "quick": args.quick,
            "reg_epochs": args.reg_epochs,
            "reg_lr": REG_LR,
            "reg_samples": cfg.reg_samples,
            "cls_epochs": cfg.cls_epochs,
            "cls_samples": cfg.cls_samples,
            "seed": cfg.seed,
        },
        "regression": {},
    }
    for name in cfg.sets:
        reason = uci_data.available(name)
        if reason:
            print(f"skipping {name}: {reason}")
            continue
        report["regression"][name] = run_regression(name, cfg, args)
        report["regression"][name]["provenance"] = uci_data.provenance(name)
    if not args.no_digits:
        report["digits"] = run_digits(cfg, args)
    report["seconds"] = time.perf_counter() - t0
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "conformal.json"), "w") as f:
        json.dump(suite._json_safe(report), f, indent=1)
    if "digits" in report:
        with open(os.path.join(args.output, "conformal.md"), "w") as f:
            f.write(markdown(report))
        print(markdown(report))
    return report


if __name__ == "__main__":
    main()

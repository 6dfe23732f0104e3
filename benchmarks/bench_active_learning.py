"""Active learning on scikit-learn's digits with a flipout MLP, and its uncertainty's decisions.

Run from the repository root (bayesflip installed)::

    python -m benchmarks run active_learning            # full protocol, writes benchmarks/results/
    python -m benchmarks run active_learning --quick    # a smoke run, to benchmarks/results/scratch/

The active-learning part can run as one process per seed sharing ``--output``
(``--seed-list 0`` … ``--seed-list 4`` with ``--no-decisions``); every loop keeps
its state in ``<output>/active_learning_state/`` and resumes from it, so a last
run without ``--seed-list`` only collects the finished runs into the JSON and plot.

Protocol (active learning):

- Data: ``bayesflip.datasets.load_digits(seed=0)``: the 1,437 training digits
  are the pool (their labels the oracle), the 360 test digits the test set.
- Per seed: a balanced seed set of 20 labels (2 per class, drawn with the
  seed), then 10 acquisitions per round up to 300 labels (28 acquisitions,
  29 trainings); 5 seeds; every acquisition function of
  ``bayesflip.decisions.ACQUISITIONS`` (BALD, BatchBALD, max entropy,
  variation ratios, mean std, random) with the same builder and trainer.
- Builder: the demo's 64-128-128-10 flipout MLP
  (``bayesflip.demo.build_bayesian_mlp``) trained from scratch every round
  (``ActiveLearningLoop(retrain="scratch")``) with the demo's recipe: the
  tempered posterior ``kl_weight = T / n`` with ``T = demo.DEFAULT_TEMPERATURE``,
  Adam at 1e-2 with a cosine decay to 0, a linear KL warm-up over the first
  third of the run. To fit 870 trainings in the time budget, a training is a
  fixed number of Adam steps on minibatches of 32 drawn with replacement, in one
  compiled loop (``--steps``, default 150: the budget's cut; measured on one
  training with 300 labels, 250 steps gave 0.919 test accuracy and 500 steps
  0.944), and "from scratch" restores the model's initial
  weights and zeroes the optimizer's state instead of building a new model
  (identical start, no re-tracing). MC predictive: 20 draws (acquisition and test).
  BatchBALD keeps 300 sampled label configurations (``--num-configurations``).
- Reported per function: the learning curves (test accuracy, NLL, ECE per
  round and seed), and the labels BALD and the others need to reach random
  acquisition's final mean accuracy (first round whose mean over seeds reaches it).

Protocol (decisions, ``--no-decisions`` skips): per seed, the demo's BNN and
deterministic MLP trained on the whole training split with the demo's recipe
(``fit_bayesian_mlp`` / ``fit_deterministic_mlp``, 60 epochs); E-AURC of the
0/1 error with each score as confidence on the test digits; the OOD table of
every score (``bayesflip.decisions.ood_scores``, plus Mahalanobis and DDU on
the last hidden layer) on test digits vs pixel-permuted digits and uniform
noise (``bayesflip.datasets.corrupt_images``).

Writes ``active_learning.json`` and ``active_learning.png`` (active learning) and
``uncertainty_decisions.json`` (decisions) into ``--output``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip import decisions  # noqa: E402
from bayesflip.datasets import corrupt_images, load_digits  # noqa: E402
from bayesflip.demo import (  # noqa: E402
    DEFAULT_TEMPERATURE,
    build_bayesian_mlp,
    build_deterministic_mlp,
    fit_bayesian_mlp,
    fit_deterministic_mlp,
)
from bayesflip.uncertainty import mc_predict  # noqa: E402
from benchmarks._meta import output_dir, write_json  # noqa: E402

NUM_CLASSES = 10


class FastRecipe:
    """The demo's flipout MLP and training recipe as a compiled fixed-step loop (one trace per run).

    ``build()`` returns the model restored to its initial weights (optimizer state
    zeroed), ``fit(model, x, y)`` trains it for ``steps`` Adam steps.
    """

    def __init__(self, seed: int, steps: int, batch_size: int = 32, learning_rate: float = 1e-2) -> None:
        keras.utils.set_random_seed(seed)
        self.model = build_bayesian_mlp(64, NUM_CLASSES, seed=seed)
        self.initial = [v.numpy() for v in self.model.weights]
        self.steps, self.batch_size = steps, batch_size
        self.optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))
        self.optimizer.build(self.model.trainable_variables)
        self.round_seed = tf.Variable(0, dtype=tf.int64, trainable=False)
        model, optimizer = self.model, self.optimizer
        warmup = max(steps // 3, 1)
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

        @tf.function(input_signature=[tf.TensorSpec([None, 64], tf.float32), tf.TensorSpec([None], tf.int64)])
        def train(x, y):
            n = tf.shape(x)[0]
            for step in tf.range(steps):
                seed_pair = tf.stack([self.round_seed, tf.cast(step, tf.int64)])
                idx = tf.random.stateless_uniform([batch_size], seed=seed_pair, maxval=n, dtype=tf.int32)
                xb, yb = tf.gather(x, idx), tf.gather(y, idx)
                with tf.GradientTape() as tape:
                    logits = model(xb, training=True)
                    ramp = tf.minimum(1.0, tf.cast(step + 1, tf.float32) / warmup)
                    loss = loss_fn(yb, logits) + ramp * tf.add_n(model.losses)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        self._train = train

    def build(self) -> keras.Model:
        self.model.set_weights(self.initial)
        for v in self.optimizer.variables:
            v.assign(tf.zeros_like(v))
        return self.model

    def fit(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
        bayesflip.set_kl_weight(model, num_examples=len(x), temperature=DEFAULT_TEMPERATURE)
        self.round_seed.assign(int(np.random.randint(0, 2**31 - 1)))  # seeded by the loop each round
        self._train(np.asarray(x, np.float32), np.asarray(y, np.int64))


def seed_set(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.nonzero(y == c)[0], per_class, replace=False) for c in range(NUM_CLASSES)]
    )


#: Order of the work: the acquisition functions of the issue's bars first (all seeds), then the
#: rest, so that a run cut short still holds complete comparisons.
GROUPS = (("random", "bald", "batchbald"), ("max_entropy", "variation_ratios"), ("mean_std",))


def run_active_learning(args, data, out: dict) -> None:
    curves: dict = {name: [] for name in args.acquisitions}
    timing: dict = {}
    recipes: dict = {}
    groups = [[n for n in g if n in args.acquisitions] for g in GROUPS]
    groups.append([n for n in args.acquisitions if not any(n in g for g in GROUPS)])
    for group in groups:
        for seed in args.seed_list if args.seed_list is not None else range(args.seeds):
            if seed not in recipes:
                recipes[seed] = FastRecipe(seed, args.steps)
            recipe = recipes[seed]
            initial = seed_set(data.y_train, 2, seed)
            for name in group:
                t0 = time.perf_counter()
                loop = decisions.ActiveLearningLoop(
                    recipe.build,
                    recipe.fit,
                    data.x_train,
                    data.y_train,
                    initial,
                    data.x_test,
                    data.y_test,
                    acquisition=name,
                    k=args.k,
                    retrain="scratch",
                    num_samples=args.num_samples,
                    seed=seed,
                    num_configurations=args.num_configurations,
                    state_path=os.path.join(args.output, "active_learning_state", f"{name}_seed{seed}.json"),
                    verbose=0,
                )
                rounds = loop.run(max_labels=args.max_labels)
                timing.setdefault(name, []).append(time.perf_counter() - t0)
                curves[name].append(
                    {
                        "seed": seed,
                        "num_labels": [r["num_labels"] for r in rounds],
                        "accuracy": [r["accuracy"] for r in rounds],
                        "nll": [r["nll"] for r in rounds],
                        "ece": [r["ece"] for r in rounds],
                        "acquired": loop.labelled,
                    }
                )
                done = {n: c for n, c in curves.items() if c}
                partial = {"curves": done, "seconds": timing, "summary": summarise(done), "partial": True}
                write(args, out | {"active_learning": partial}, "active_learning.json")
                print(
                    f"seed {seed} {name:<17} final accuracy {rounds[-1]['accuracy']:.4f} ({timing[name][-1]:.0f} s)",
                    flush=True,
                )
    out["active_learning"] = {
        "curves": curves,
        "seconds": timing,
        "summary": summarise(curves),
        "partial": False,
    }


def _first_reaching(labels: np.ndarray, accuracy: np.ndarray, target: float) -> int | None:
    hit = np.nonzero(np.asarray(accuracy) >= target - 1e-12)[0]
    return int(labels[hit[0]]) if hit.size else None


def summarise(curves: dict) -> dict:
    """Mean curves, and the labels each function needs to reach random acquisition's final accuracy.

    Comparisons with random use the seeds both have. ``labels_to_random_final``: the first
    label count at which the function's mean curve reaches random's mean final accuracy;
    ``fraction_of_random_labels``: that count over random's final label count;
    ``..._per_seed``: the same per seed against the same seed's random run (``None``: not reached).
    """
    labels = np.asarray(next(iter(curves.values()))[0]["num_labels"])
    summary: dict = {"num_labels": labels.tolist()}
    for name, runs in curves.items():
        acc = np.asarray([c["accuracy"] for c in runs])
        summary[name] = {
            "seeds": [c["seed"] for c in runs],
            "mean_accuracy": acc.mean(0).tolist(),
            "std_accuracy": acc.std(0).tolist(),
            "final_mean_accuracy": float(acc.mean(0)[-1]),
            "final_mean_nll": float(np.mean([c["nll"][-1] for c in runs])),
            "final_mean_ece": float(np.mean([c["ece"][-1] for c in runs])),
        }
    if "random" not in curves:
        return summary
    random_by_seed = {c["seed"]: c for c in curves["random"]}
    for name, runs in curves.items():
        common = [c for c in runs if c["seed"] in random_by_seed]
        if not common:
            continue
        rand = np.asarray([random_by_seed[c["seed"]]["accuracy"] for c in common])
        mine = np.asarray([c["accuracy"] for c in common])
        target = float(rand.mean(0)[-1])
        need = _first_reaching(labels, mine.mean(0), target)
        per_seed = [_first_reaching(labels, m, r[-1]) for m, r in zip(mine, rand)]
        fractions = [None if n is None else n / int(labels[-1]) for n in per_seed]
        summary[name].update(
            {
                "common_seeds_with_random": [c["seed"] for c in common],
                "random_final_mean_accuracy": target,
                "labels_to_random_final": need,
                "fraction_of_random_labels": None if need is None else need / int(labels[-1]),
                "labels_to_random_final_per_seed": per_seed,
                "fraction_of_random_labels_per_seed": fractions,
                "mean_fraction_per_seed": None
                if any(f is None for f in fractions)
                else float(np.mean([f for f in fractions if f is not None])),
                "mean_accuracy_gain_over_random": float((mine - rand).mean()),
            }
        )
    return summary


def plot_curves(curves: dict, path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, runs in curves.items():
        labels = np.asarray(runs[0]["num_labels"])
        acc = np.asarray([r["accuracy"] for r in runs])
        m, s = acc.mean(0), acc.std(0)
        ax.plot(labels, m, label=f"{name} (final {m[-1]:.3f})")
        ax.fill_between(labels, m - s, m + s, alpha=0.15)
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy (mean ± sd over seeds)")
    ax.set_title("Active learning on digits, flipout MLP")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=110)


def run_decisions(args, data, out: dict) -> None:
    ood_sets = {kind: corrupt_images(data.x_test, kind, seed=0) for kind in ("permuted", "noise")}
    results: dict = {"bnn": [], "deterministic": []}
    for seed in range(args.seeds):
        keras.utils.set_random_seed(seed)
        bnn = build_bayesian_mlp(64, NUM_CLASSES, seed=seed)
        fit_bayesian_mlp(
            bnn, data.x_train, data.y_train, epochs=args.epochs, schedule="cosine", kl_warmup_epochs=10
        )
        det = build_deterministic_mlp(64, NUM_CLASSES)
        fit_deterministic_mlp(det, data.x_train, data.y_train, epochs=args.epochs, schedule="cosine")
        for key, model in (("bnn", bnn), ("deterministic", det)):

            def draws(x, model=model, key=key):
                if key == "bnn":
                    return mc_predict(model, x, args.num_samples, return_samples=True)
                return model.predict(x, verbose=0)[None]

            s_in = draws(data.x_test)
            scores_in = decisions.ood_scores(s_in, from_logits=True)
            probs = np.exp(s_in - s_in.max(-1, keepdims=True))
            probs = (probs / probs.sum(-1, keepdims=True)).mean(0)
            errors = (probs.argmax(-1) != data.y_test).astype(float)
            row: dict = {
                "seed": seed,
                "accuracy": float(1 - errors.mean()),
                "e_aurc": {n: decisions.excess_aurc(-s, errors) for n, s in scores_in.items()},
                "aurc": {n: decisions.aurc(-s, errors) for n, s in scores_in.items()},
                "ood": {},
            }
            # features of the last hidden layer, computed once per set (posterior mean for the BNN)
            sets = {"train": data.x_train, "test": data.x_test, **ood_sets}
            stacked = decisions.layer_features(model, np.concatenate(list(sets.values())), "hidden_1")
            ends = np.cumsum([len(v) for v in sets.values()])
            z = dict(zip(sets, np.split(stacked, ends[:-1])))
            feats = {
                cls.kind: cls().fit_features(z["train"], data.y_train)
                for cls in (decisions.MahalanobisScore, decisions.GaussianDensityScore)
            }
            for name, f in feats.items():
                scores_in[name] = f.score_features(z["test"])
            for kind, x_ood in ood_sets.items():
                scores_out = decisions.ood_scores(draws(x_ood), from_logits=True)
                for name, f in feats.items():
                    scores_out[name] = f.score_features(z[kind])
                row["ood"][kind] = dict(decisions.evaluate_ood(scores_in, scores_out))
            results[key].append(row)
        print(
            f"seed {seed} decisions: BNN E-AURC(MSP) {results['bnn'][-1]['e_aurc']['max_softmax_probability']:.4f}, "
            f"deterministic {results['deterministic'][-1]['e_aurc']['max_softmax_probability']:.4f}",
            flush=True,
        )
        out["decisions"] = {"per_seed": results, "mean_over_seeds": _decisions_summary(results)}
        write(args, out, "uncertainty_decisions.json")


def _decisions_summary(results: dict) -> dict:
    summary: dict = {}
    for key, rows in results.items():
        summary[key] = {
            "seeds": [r["seed"] for r in rows],
            "accuracy": float(np.mean([r["accuracy"] for r in rows])),
            "e_aurc": {n: float(np.mean([r["e_aurc"][n] for r in rows])) for n in rows[0]["e_aurc"]},
            "aurc": {n: float(np.mean([r["aurc"][n] for r in rows])) for n in rows[0]["aurc"]},
            "ood": {
                kind: {
                    n: {
                        m: float(np.mean([r["ood"][kind][n][m] for r in rows]))
                        for m in rows[0]["ood"][kind][n]
                    }
                    for n in rows[0]["ood"][kind]
                }
                for kind in rows[0]["ood"]
            },
        }
    return summary


def write(args, out: dict, name: str) -> None:
    """Write ``out`` with the metadata record, atomically (the per-seed processes share the folder)."""
    path = os.path.join(args.output, name)
    write_json(path + ".tmp", out, args)
    os.replace(path + ".tmp", path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 60 labels, 100 steps, 10 epochs")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--seed-list",
        type=int,
        nargs="+",
        default=None,
        help="run only these seeds of the active-learning part (parallel processes sharing --output; "
        "a last run without it collects every seed's finished state)",
    )
    parser.add_argument("--max-labels", type=int, default=300)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--steps", type=int, default=150, help="Adam steps per training")
    parser.add_argument("--epochs", type=int, default=60, help="epochs of the decisions part's networks")
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument(
        "--num-configurations", type=int, default=300, help="BatchBALD's sampled label configurations"
    )
    parser.add_argument(
        "--acquisitions",
        nargs="+",
        default=["random", "bald", "batchbald", "max_entropy", "variation_ratios", "mean_std"],
    )
    parser.add_argument("--no-decisions", action="store_true")
    parser.add_argument("--no-active", action="store_true")
    args = parser.parse_args(argv)
    output_dir(parser, args, ignore=("seed_list", "no_decisions", "no_active"))
    if args.quick:
        args.seeds, args.max_labels, args.steps, args.epochs = 2, 60, 100, 10
    os.makedirs(args.output, exist_ok=True)
    data = load_digits(seed=0)
    out: dict = {
        "config": {k: v for k, v in vars(args).items()},
        "versions": {
            "bayesflip": bayesflip.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
    }
    t0 = time.perf_counter()
    if not args.no_active:
        run_active_learning(args, data, out)
        plot_curves(out["active_learning"]["curves"], os.path.join(args.output, "active_learning.png"))
        out["seconds"] = time.perf_counter() - t0
        write(args, out, "active_learning.json")
    if not args.no_decisions:
        t0 = time.perf_counter()
        report = {k: v for k, v in out.items() if k != "active_learning"}
        run_decisions(args, data, report)
        report["seconds"] = time.perf_counter() - t0
        report["partial"] = False
        write(args, report, "uncertainty_decisions.json")
        out["decisions"] = report["decisions"]
    return out


if __name__ == "__main__":
    main()

"""Benchmark suite against published baselines: UCI regression and digits under dataset shift.

Run from the repository root::

    python -m benchmarks run suite            # full suite (~30 min on 2 cores)
    python -m benchmarks run suite --quick    # smoke run (< 1 min)

1. **Regression** (protocol of Hernández-Lobato & Adams 2015, as used by Gal &
   Ghahramani 2016 and Lakshminarayanan et al. 2017): random 90/10 splits, one
   hidden layer of 50 ReLU units, inputs and targets standardised on the training
   split, a Gaussian likelihood with a learned homoscedastic noise scale. Test
   RMSE of the predictive mean and test log-likelihood
   ``mean_i log (1/T) sum_t N(y_i | mu_ti, sigma_ti)`` in the original units
   (``mu = loc * std_y + mean_y``, ``sigma = scale * std_y``), mean ± standard
   error over splits.
2. **Classification under dataset shift** (after Ovadia et al. 2019): the demo's
   64-128-128-10 MLP on scikit-learn's digits; rotation, Gaussian noise and pixel
   dropout at five severities; accuracy, NLL, ECE (15 bins), Brier; OOD AUROC /
   AUPR from the predictive entropy on the demo's OOD kinds.

Methods (same architecture and training budget per network):
``map`` (deterministic, L2 = the N(0, 1) prior, learned noise), ``mc_dropout``
(p = 0.05 regression / 0.1 classification), ``ensemble`` (independently trained
``map`` nets, mixture predictive), ``flipout`` (``DenseFlipout`` with the library's
default arguments and ``set_kl_weight(model, num_examples=n_train)``: the plain ELBO),
``flipout_cold`` (the same with the demo's posterior temperature,
``set_kl_weight(..., temperature=bayesflip.demo.DEFAULT_TEMPERATURE)``), ``local``
and ``shared`` (``flipout`` with ``estimator="local"`` / ``"shared"``).

Writes ``suite.json``, ``suite.md`` and ``shift_<metric>.png`` into ``--output``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import time
from collections.abc import Sequence
from typing import NamedTuple

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy import ndimage, special  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip import calibration, uncertainty  # noqa: E402
from bayesflip.datasets import corrupt_images, load_digits  # noqa: E402
from bayesflip.demo import (
    DEFAULT_TEMPERATURE,
    OOD_KINDS,
    build_bayesian_mlp,
    build_deterministic_mlp,
    run_demo,
)  # noqa: E402
from bayesflip.layers import DenseFlipout  # noqa: E402
from benchmarks import uci_data  # noqa: E402
from benchmarks._meta import metadata, output_dir  # noqa: E402

METHODS = ("map", "mc_dropout", "ensemble", "flipout", "flipout_cold", "local", "shared")
# method -> estimator; all DenseFlipout with the library's default arguments otherwise.
BAYESIAN = {"flipout": "flipout", "flipout_cold": "flipout", "local": "local", "shared": "shared"}
# method -> posterior temperature of set_kl_weight (1 = the Bayesian posterior / plain ELBO). "flipout_cold"
# is the demo's tempered default (kl_weight = T / n_train), for reference.
TEMPERATURE = {"flipout_cold": DEFAULT_TEMPERATURE}
SHIFTS = ("rotation", "gaussian_noise", "pixel_dropout")
# Five severities per shift: rotation angle (degrees), noise sd (pixel range is [0, 1]),
# fraction of pixels set to 0.
SEVERITY_LEVELS = {
    "rotation": (15.0, 30.0, 45.0, 60.0, 75.0),
    "gaussian_noise": (0.1, 0.2, 0.3, 0.4, 0.5),
    "pixel_dropout": (0.1, 0.2, 0.3, 0.4, 0.5),
}
CLS_METRICS = ("accuracy", "nll", "ece", "brier")

# --------------------------------------------------------------------------- published baselines
# Test RMSE and test log-likelihood (original units), mean ± error as printed in the papers.
#  - "VI" (Graves 2011) and "PBP": Hernández-Lobato & Adams, "Probabilistic Backpropagation for
#    Scalable Learning of Bayesian Neural Networks", ICML 2015, Table 1 (± standard errors).
#  - "MC dropout": Gal & Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016, Tables 1/2.
#  - "Deep ensembles (5)": Lakshminarayanan et al., NeurIPS 2017, Table 1 (printed as NLL; negated
#    here). That table reprints the PBP and MC-dropout figures above unchanged.
#  The ± of G&G 2016 and Lakshminarayanan 2017 are about as large as the spread of single splits
#  (compare the "sd" of our runs), i.e. they look like standard deviations, not standard errors.
# Only values we are sure of are listed: the VI RMSE on concrete (7.13 or 7.19?) is left out.
# diabetes is not a UCI benchmark set: no published figures.
PUBLISHED = {
    "boston": {
        "VI (Graves 2011) [HL&A 2015]": {"rmse": (4.32, 0.29), "ll": (-2.90, 0.07)},
        "PBP [HL&A 2015]": {"rmse": (3.01, 0.18), "ll": (-2.57, 0.09)},
        "MC dropout [G&G 2016]": {"rmse": (2.97, 0.85), "ll": (-2.46, 0.25)},
        "Deep ensembles (5) [Lakshminarayanan 2017]": {"rmse": (3.28, 1.00), "ll": (-2.41, 0.25)},
    },
    "concrete": {
        "VI (Graves 2011) [HL&A 2015]": {"ll": (-3.39, 0.02)},
        "PBP [HL&A 2015]": {"rmse": (5.67, 0.09), "ll": (-3.16, 0.02)},
        "MC dropout [G&G 2016]": {"rmse": (5.23, 0.53), "ll": (-3.04, 0.09)},
        "Deep ensembles (5) [Lakshminarayanan 2017]": {"rmse": (6.03, 0.58), "ll": (-3.06, 0.18)},
    },
}
CITATIONS = {
    "HL&A 2015": "J. M. Hernández-Lobato and R. P. Adams. Probabilistic Backpropagation for Scalable "
    "Learning of "
    "Bayesian Neural Networks. ICML 2015, Table 1.",
    "G&G 2016": "Y. Gal and Z. Ghahramani. Dropout as a Bayesian Approximation: Representing Model "
    "Uncertainty in "
    "Deep Learning. ICML 2016, Tables 1-2.",
    "Lakshminarayanan 2017": "B. Lakshminarayanan, A. Pritzel, C. Blundell. Simple and Scalable Predictive "
    "Uncertainty Estimation using Deep Ensembles. NeurIPS 2017, Table 1 (NLL, negated here).",
    "Ovadia 2019": "Y. Ovadia et al. Can You Trust Your Model's Uncertainty? Evaluating Predictive "
    "Uncertainty "
    "Under Dataset Shift. NeurIPS 2019 (protocol).",
}


class Config(NamedTuple):
    """Budgets of one run (see :func:`make_config`)."""

    sets: tuple[str, ...]
    methods: tuple[str, ...]
    splits: int
    seed: int
    reg_epochs: int
    reg_batch: int
    reg_lr: float
    reg_samples: int
    ensemble_size: int
    cls_epochs: int
    cls_batch: int
    cls_lr: float
    cls_samples: int
    severities: tuple[int, ...]  # 1-based indices into SEVERITY_LEVELS
    dropout_reg: float = 0.05
    dropout_cls: float = 0.1
    hidden: int = 50


def _demo_default(name):
    return inspect.signature(run_demo).parameters[name].default


def make_config(quick: bool, sets=None, methods=None, splits=None, seed: int = 0) -> Config:
    """Full or quick budgets; the classification budget follows the demo's defaults."""
    if quick:
        # Mostly tracing time: one compiled training loop per network (and per MC sampler).
        cfg = Config(
            sets=("diabetes", "boston"),
            methods=METHODS,
            splits=2,
            seed=seed,
            reg_epochs=4,
            reg_batch=32,
            reg_lr=1e-2,
            reg_samples=10,
            ensemble_size=2,
            cls_epochs=3,
            cls_batch=64,
            cls_lr=1e-2,
            cls_samples=4,
            severities=(1, 3),
        )
    else:
        cfg = Config(
            sets=("boston", "concrete", "diabetes"),
            methods=METHODS,
            splits=20,
            seed=seed,
            reg_epochs=40,
            reg_batch=32,
            reg_lr=1e-2,
            reg_samples=100,
            ensemble_size=5,
            cls_epochs=_demo_default("epochs"),
            cls_batch=_demo_default("batch_size"),
            cls_lr=_demo_default("learning_rate"),
            cls_samples=_demo_default("num_samples"),
            severities=(1, 2, 3, 4, 5),
        )
    return cfg._replace(
        sets=tuple(sets) if sets else cfg.sets,
        methods=tuple(methods) if methods else cfg.methods,
        splits=splits if splits else cfg.splits,
    )


# --------------------------------------------------------------------------- likelihood head
def gaussian_head():
    """The likelihood head: ``(layers, per-example loss, description)``.

    ``bayesflip.heads.GaussianHead(units=1, noise="homoscedastic")`` (one learned noise scale) and
    its ``loss()``. The single place that decides.
    """
    from bayesflip.heads import GaussianHead

    head = GaussianHead(units=1, noise="homoscedastic", name="gaussian_head")
    return [head], head.loss(), "bayesflip.heads.GaussianHead(units=1, noise='homoscedastic')"


# --------------------------------------------------------------------------- standardisation / metrics
class Standardizer(NamedTuple):
    """Per-column mean and standard deviation of a training split (std 1 for constant columns)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, a: np.ndarray) -> Standardizer:
        a = np.asarray(a, dtype="float64")
        std = a.std(axis=0)
        return cls(a.mean(axis=0), np.where(std > 0, std, 1.0))

    def transform(self, a):
        return ((np.asarray(a, "float64") - self.mean) / self.std).astype("float32")

    def inverse(self, a):
        return np.asarray(a, "float64") * self.std + self.mean


def mixture_log_likelihood(y, locs, scales) -> np.ndarray:
    """Per-point log density of the equal-weight Gaussian mixture over draws.

    ``log (1/T) sum_t N(y_i | locs[t, i], scales[t, i])`` for ``locs, scales (T, N)``, ``y (N,)``.
    """
    y, locs, scales = (np.asarray(a, "float64") for a in (y, locs, scales))
    z = (y[None] - locs) / scales
    log_dens = -0.5 * z * z - np.log(scales) - 0.5 * np.log(2 * np.pi)
    return special.logsumexp(log_dens, axis=0) - np.log(locs.shape[0])


def regression_scores(y, params, y_stats: Standardizer) -> dict:
    """Test RMSE and log-likelihood in original units from standardised draws ``params (T, N, 1, 2)``."""
    params = np.asarray(params, "float64")
    locs = y_stats.inverse(params[..., 0, 0])  # loc * std_y + mean_y
    scales = params[..., 0, 1] * y_stats.std  # scale * std_y (the log-likelihood gets -log std_y)
    y = np.asarray(y, "float64")
    rmse = float(np.sqrt(np.mean((locs.mean(0) - y) ** 2)))
    ll = float(np.mean(mixture_log_likelihood(y, locs, scales)))
    return {"rmse": rmse, "ll": ll}


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    v = np.asarray(values, "float64")
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0


# --------------------------------------------------------------------------- training
def batch_indices(n: int, batch: int, epochs: int, rng: np.random.Generator) -> np.ndarray:
    """``(steps, batch)`` indices: ``epochs`` shuffled passes, ``ceil(n / batch)`` steps each."""
    steps = epochs * math.ceil(n / batch)
    stream = np.concatenate([rng.permutation(n) for _ in range(math.ceil(steps * batch / n) + 1)])
    return stream[: steps * batch].reshape(steps, batch).astype("int32")


class Learner:
    """One network + its Adam optimizer + a compiled whole-training loop (traced once, reused).

    ``reset(seed)`` re-draws the initial weights (from a fresh twin of the model) and zeroes the
    optimizer, so the same compiled loop trains a new network on every split.
    """

    def __init__(self, build, loss_fn, learning_rate: float):
        self.build, self.loss_fn = build, loss_fn
        self.model = build()
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        # Initial optimizer state (iterations, moments, and the learning-rate variable) to restore.
        self._opt_init = [v.numpy() for v in self.optimizer.variables]
        self._train = tf.function(self._loop, reduce_retracing=True)
        self.traces = 0  # Python side effect: counts traces (1 expected per learner)

    def _loop(self, x, y, batches):
        self.traces += 1
        model, opt = self.model, self.optimizer

        def body(i, _):
            idx = batches[i]
            xb, yb = tf.gather(x, idx), tf.gather(y, idx)
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.loss_fn(yb, model(xb, training=True)))
                if model.losses:
                    loss = loss + tf.add_n(model.losses)
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return i + 1, loss

        _, last = tf.while_loop(
            lambda i, _: i < tf.shape(batches)[0], body, (tf.constant(0), tf.constant(0.0))
        )
        return last

    def reset(self, seed: int) -> None:
        keras.utils.set_random_seed(seed)
        self.model.set_weights(self.build(seed=seed).get_weights())
        for v, init in zip(self.optimizer.variables, self._opt_init):
            v.assign(init)

    def fit(self, x, y, batches) -> bool:
        """Train; return whether the final loss and every weight are finite (False: diverged)."""
        loss = float(self._train(tf.constant(x), tf.constant(y), tf.constant(batches)))
        if hasattr(self.model, "_clear_losses"):
            self.model._clear_losses()  # the loop's graph KL tensors
        return math.isfinite(loss) and all(np.isfinite(w).all() for w in self.model.get_weights())


def sample_outputs(
    learners: Sequence[Learner], method: str, x, num_samples: int, from_logits: bool = False
) -> np.ndarray:
    """Predictive draws ``(T, N, ...)``: posterior / dropout samples, ensemble members or one pass.

    ``from_logits``: the models output logits (the classifiers); each draw is then a softmax.
    """
    if method in BAYESIAN or method == "mc_dropout":
        out = uncertainty.mc_predict(
            learners[0].model,
            x,
            num_samples=num_samples,
            return_samples=True,
            training=method == "mc_dropout",
            from_logits=from_logits,
        )
        return np.asarray(getattr(out, "samples", out))
    draws = np.stack([np.asarray(l.model(x, training=False)) for l in learners])
    return np.asarray(tf.nn.softmax(draws, axis=-1)) if from_logits else draws


def members(method: str, cfg: Config) -> int:
    return cfg.ensemble_size if method == "ensemble" else 1


# --------------------------------------------------------------------------- regression
def build_regressor(method: str, dim: int, n_train: int, cfg: Config, seed: int = 0) -> keras.Model:
    """One hidden layer of ``cfg.hidden`` ReLU units + the Gaussian head, for ``method``."""
    head, _, _ = gaussian_head()
    if method in BAYESIAN:  # library defaults; only the estimator varies
        est = BAYESIAN[method]
        body = [
            DenseFlipout(cfg.hidden, activation="relu", estimator=est, seed=seed),
            DenseFlipout(1, estimator=est, seed=seed + 1),
        ]
    else:
        reg = keras.regularizers.L2(1.0 / (2.0 * n_train))  # MAP under the N(0, 1) prior, per example
        body = [
            keras.layers.Dense(cfg.hidden, activation="relu", kernel_regularizer=reg),
            keras.layers.Dense(1, kernel_regularizer=reg),
        ]
        if method == "mc_dropout":  # Gal & Ghahramani: dropout on the input and the hidden layer
            body = [
                keras.layers.Dropout(cfg.dropout_reg, seed=seed),
                body[0],
                keras.layers.Dropout(cfg.dropout_reg, seed=seed + 1),
                body[1],
            ]
    model = keras.Sequential([keras.Input((dim,)), *body, *head], name=f"reg_{method}")
    if method in BAYESIAN:
        bayesflip.set_kl_weight(model, num_examples=n_train, temperature=TEMPERATURE.get(method, 1.0))
    return model


def run_regression(name: str, cfg: Config, log=print) -> dict:
    x, y = uci_data.load(name)
    n = len(x)
    n_train = int(round(0.9 * n))
    _, loss_fn, head_name = gaussian_head()
    out = {"head": head_name, "n": n, "d": int(x.shape[1]), "n_train": n_train, "methods": {}}
    learners = {
        m: [
            Learner(
                lambda seed=0, m=m: build_regressor(m, x.shape[1], n_train, cfg, seed), loss_fn, cfg.reg_lr
            )
            for _ in range(members(m, cfg))
        ]
        for m in cfg.methods
    }
    per = {m: {"rmse": [], "ll": [], "train_seconds": []} for m in cfg.methods}
    for split in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, split])
        perm = rng.permutation(n)
        tr, te = perm[:n_train], perm[n_train:]
        xs, ys = Standardizer.fit(x[tr]), Standardizer.fit(y[tr])
        x_tr, x_te, y_tr = xs.transform(x[tr]), xs.transform(x[te]), ys.transform(y[tr])[:, None]
        for m in cfg.methods:
            t0 = time.perf_counter()
            finite = True
            for k, learner in enumerate(learners[m]):
                seed = 1000 * cfg.seed + 100 * split + 10 * k + 1
                learner.reset(seed)
                finite &= learner.fit(x_tr, y_tr, batch_indices(n_train, cfg.reg_batch, cfg.reg_epochs, rng))
            per[m]["train_seconds"].append(time.perf_counter() - t0)
            if finite:
                scores = regression_scores(y[te], sample_outputs(learners[m], m, x_te, cfg.reg_samples), ys)
            else:  # reported, not hidden: the split counts as diverged
                scores = {"rmse": math.nan, "ll": math.nan}
            for key, value in scores.items():
                per[m][key].append(value)
        log(
            f"  {name} split {split + 1}/{cfg.splits}: "
            + "  ".join(f"{m} {per[m]['rmse'][-1]:.2f}/{per[m]['ll'][-1]:.2f}" for m in cfg.methods)
        )
    for m, vals in per.items():
        ok = [i for i, r in enumerate(vals["rmse"]) if math.isfinite(r)]
        rmse, ll = [vals["rmse"][i] for i in ok], [vals["ll"][i] for i in ok]
        out["methods"][m] = {
            "rmse": mean_se(rmse),
            "ll": mean_se(ll),
            "sd": {
                "rmse": float(np.std(rmse, ddof=1)) if len(ok) > 1 else 0.0,
                "ll": float(np.std(ll, ddof=1)) if len(ok) > 1 else 0.0,
            },
            "diverged_splits": cfg.splits - len(ok),
            "traces": learners[m][0].traces,
            "train_seconds_per_split": float(np.mean(vals["train_seconds"])),
            "per_split": {"rmse": vals["rmse"], "ll": vals["ll"]},
        }
    return out


# --------------------------------------------------------------------------- classification under shift
def shift_images(images: np.ndarray, kind: str, level: float, seed: int) -> np.ndarray:
    """Shifted digits ``(n, 8, 8, 1)`` in [0, 1]: rotate by ``level`` degrees, add N(0, level²) noise,
    or set a fraction ``level`` of the pixels to 0."""
    rng = np.random.default_rng(seed)
    if kind == "rotation":
        out = ndimage.rotate(images, level, axes=(1, 2), reshape=False, order=1, mode="constant", cval=0.0)
    elif kind == "gaussian_noise":
        out = images + rng.normal(0.0, level, size=images.shape)
    elif kind == "pixel_dropout":
        out = images * (rng.uniform(size=images.shape) >= level)
    else:
        raise ValueError(f"shift_images: unknown shift {kind!r}; expected one of {SHIFTS}.")
    return np.clip(out, 0.0, 1.0).astype("float32")


def with_dropout(model: keras.Model, rate: float, seed: int = 0) -> keras.Model:
    """The same layers with ``Dropout(rate)`` after every hidden layer (MC dropout)."""
    layers = [keras.Input(model.input_shape[1:])]
    for i, layer in enumerate(model.layers):
        layers.append(layer)
        if i < len(model.layers) - 1:
            layers.append(keras.layers.Dropout(rate, seed=seed + i))
    return keras.Sequential(layers, name=f"{model.name}_mc_dropout")


def build_classifier(method: str, n_train: int, cfg: Config, seed: int = 0) -> keras.Model:
    """The demo's 64-128-128-10 MLP for ``method`` (built with the demo's own builders)."""
    if method in BAYESIAN:
        model = build_bayesian_mlp(64, 10, estimator=BAYESIAN[method], seed=seed)
        bayesflip.set_kl_weight(model, num_examples=n_train, temperature=TEMPERATURE.get(method, 1.0))
        return model
    model = build_deterministic_mlp(64, 10)
    return with_dropout(model, cfg.dropout_cls, seed) if method == "mc_dropout" else model


def classification_scores(labels, probs) -> dict:
    probs = np.clip(np.asarray(probs, "float64"), 1e-12, 1.0)
    probs = (probs / probs.sum(-1, keepdims=True)).astype("float32")
    return {
        "accuracy": float(np.mean(np.argmax(probs, -1) == labels)),
        "nll": float(calibration.negative_log_likelihood(labels, probs)),
        "ece": float(calibration.expected_calibration_error(labels, probs, num_bins=15)),
        "brier": float(calibration.brier_score(labels, probs)),
    }


def run_classification(cfg: Config, log=print) -> dict:
    data = load_digits(seed=cfg.seed, images=True)
    x_tr = data.x_train.reshape(len(data.x_train), -1)
    n_train = len(x_tr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)  # logit outputs
    shifted = {(kind, 0): data.x_test for kind in SHIFTS}
    for kind in SHIFTS:
        for s in cfg.severities:
            shifted[(kind, s)] = shift_images(data.x_test, kind, SEVERITY_LEVELS[kind][s - 1], cfg.seed + s)
    ood = {kind: corrupt_images(data.x_test, kind, seed=cfg.seed) for kind in OOD_KINDS}
    result = {
        "severity_levels": {k: [SEVERITY_LEVELS[k][s - 1] for s in cfg.severities] for k in SHIFTS},
        "severities": [0, *cfg.severities],
        "shift": {k: {} for k in SHIFTS},
        "ood": {k: {} for k in OOD_KINDS},
        "train_seconds": {},
    }
    rng = np.random.default_rng([cfg.seed, 99])
    for m in cfg.methods:
        t0 = time.perf_counter()
        learners, finite = [], True
        for k in range(members(m, cfg)):
            learner = Learner(
                lambda seed=0, m=m: build_classifier(m, n_train, cfg, seed), loss_fn, cfg.cls_lr
            )
            learner.reset(1000 * cfg.seed + 10 * k + 7)
            finite &= learner.fit(
                x_tr, data.y_train, batch_indices(n_train, cfg.cls_batch, cfg.cls_epochs, rng)
            )
            learners.append(learner)
        result["train_seconds"][m] = time.perf_counter() - t0
        if not finite:  # non-finite weights after training: reported as diverged, no metrics
            result.setdefault("diverged", []).append(m)
            for kind in SHIFTS:
                result["shift"][kind][m] = {
                    metric: [math.nan] * len(result["severities"]) for metric in CLS_METRICS
                }
            for kind in ood:
                result["ood"][kind][m] = {"auroc": math.nan, "aupr": math.nan}
            log(
                f"  digits {m}: DIVERGED (non-finite weights after training), "
                f"train {result['train_seconds'][m]:.1f} s"
            )
            continue

        def predict(images, learners=learners, m=m):
            return sample_outputs(
                learners,
                m,
                images.reshape(len(images), -1),
                cfg.cls_samples,
                from_logits=True,
            ).mean(0)

        clean = predict(data.x_test)
        for kind in SHIFTS:
            rows = [
                classification_scores(data.y_test, clean if s == 0 else predict(shifted[(kind, s)]))
                for s in result["severities"]
            ]
            result["shift"][kind][m] = {metric: [r[metric] for r in rows] for metric in CLS_METRICS}
        h_in = uncertainty.predictive_entropy(clean)
        for kind, x_ood in ood.items():
            h_out = uncertainty.predictive_entropy(predict(x_ood))
            result["ood"][kind][m] = {
                "auroc": float(uncertainty.ood_auroc(h_in, h_out)),
                "aupr": float(uncertainty.ood_aupr(h_in, h_out)),
            }
        log(
            f"  digits {m}: clean accuracy {result['shift'][SHIFTS[0]][m]['accuracy'][0]:.3f}, "
            f"train {result['train_seconds'][m]:.1f} s"
        )
    return result


# --------------------------------------------------------------------------- report
def plot_shift(cls: dict, output: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    sev = cls["severities"]
    for metric in CLS_METRICS:
        fig, axes = plt.subplots(1, len(SHIFTS), figsize=(4 * len(SHIFTS), 3.4))
        for ax, kind in zip(axes, SHIFTS):
            for m, vals in cls["shift"][kind].items():
                if m not in cls.get("diverged", ()):
                    ax.plot(sev, vals[metric], marker="o", label=m)
            levels = ["0"] + [f"{v:g}" for v in cls["severity_levels"][kind]]
            ax.set_xticks(sev, [f"{s}\n({lv})" for s, lv in zip(sev, levels)])
            ax.set_title(kind)
            ax.set_xlabel("severity (level)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(metric)
        axes[-1].legend(fontsize=8)
        fig.suptitle(f"digits MLP under dataset shift: {metric}")
        fig.tight_layout()
        path = os.path.join(output, f"shift_{metric}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _json_safe(obj):
    """NaN/inf -> None (strict JSON); tuples -> lists."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _num(v, digits=3):
    return "diverged" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def _pm(pair, digits=2):
    if not math.isfinite(pair[0]):
        return "diverged"
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


#: methods in the README's summary tables
SUMMARY_METHODS = ("map", "mc_dropout", "ensemble", "flipout", "flipout_cold")


def summary_markdown(report: dict) -> str:
    """The README's summary of a full run: UCI test log-likelihood and digits at the highest shift severity."""
    methods = [m for m in SUMMARY_METHODS if m in report["config"]["methods"]]
    lines = []
    if report.get("regression"):
        vi = "VI (Graves 2011) [HL&A 2015]"
        lines += [
            "Test log-likelihood, UCI protocol (mean ± standard error over "
            f"{report['config']['splits']} splits; higher is better):",
            "",
            "| set | " + " | ".join(methods) + " | published VI (HL&A 2015) |",
            "|---|" + "---:|" * (len(methods) + 1),
        ]
        for name, res in report["regression"].items():
            cells = [_pm(res["methods"][m]["ll"]) for m in methods]
            published = report.get("published", {}).get(name, {}).get(vi, {}).get("ll")
            cells.append(_pm(published) if published else "—")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    cls = report.get("classification")
    if cls:
        top = len(cls["severities"]) - 1
        lines += [
            f"Digits under shift at the highest severity ({top}): ECE / NLL (lower is better); "
            "OOD AUROC from the predictive entropy:",
            "",
            "| | " + " | ".join(methods) + " |",
            "|---|" + "---:|" * len(methods),
        ]
        for kind in SHIFTS:
            cells = [
                f"{_num(cls['shift'][kind][m]['ece'][top])} / {_num(cls['shift'][kind][m]['nll'][top])}"
                for m in methods
            ]
            lines.append(f"| {kind.replace('_', ' ')} | " + " | ".join(cells) + " |")
        for kind, res in cls["ood"].items():
            lines.append(
                f"| OOD AUROC, {kind} | " + " | ".join(_num(res[m]["auroc"]) for m in methods) + " |"
            )
    return "\n".join(lines) + "\n"


def markdown(report: dict) -> str:
    cfg = report["config"]
    lines = [
        "# bayesflip benchmark suite",
        "",
        f"Run of {report['finished']}, wall time {report['wall_seconds']:.0f} s "
        f"({'quick' if cfg['quick'] else 'full'} mode, seed {cfg['seed']}).",
        "",
        "Methods: `map` deterministic net (L2 = N(0, 1) prior), `mc_dropout` (p = "
        f"{cfg['dropout_reg']} regression / {cfg['dropout_cls']} classification), `ensemble` of "
        f"{cfg['ensemble_size']} `map` nets, `flipout` = `DenseFlipout` defaults + "
        "`set_kl_weight(model, num_examples=n_train)` (plain ELBO), `flipout_cold` = the same with "
        f"posterior temperature {cfg['temperature'].get('flipout_cold')} (the demo's default), "
        "`local` / `shared` = `flipout` with `estimator='local'` / `'shared'`. Regression: learned "
        "homoscedastic Gaussian noise for every method.",
        "",
    ]
    if report.get("regression"):
        lines += [
            "## UCI regression (Hernández-Lobato & Adams 2015 protocol)",
            "",
            f"{cfg['splits']} random 90/10 splits, 1 hidden layer of {cfg['hidden']} ReLU units, "
            f"{cfg['reg_epochs']} epochs, batch {cfg['reg_batch']}, Adam lr {cfg['reg_lr']}, "
            f"{cfg['reg_samples']} predictive draws, ensemble of {cfg['ensemble_size']}. "
            "Ours: mean ± standard error over splits (standard deviation over splits in brackets); "
            "original units. Published rows (italic): ± as printed (HL&A 2015: standard errors; "
            "G&G 2016 and Lakshminarayanan 2017: apparently standard deviations).",
            "",
        ]
        for name, res in report["regression"].items():
            src = report["data_sources"][name]
            lines += [
                f"### {name} (n = {res['n']}, d = {res['d']}; "
                f"{src['wheel']} {src['version']}, {src['item']})",
                "",
                "| method | test RMSE | test log-likelihood | train s / split |",
                "|---|---:|---:|---:|",
            ]
            for m, v in res["methods"].items():
                div = (
                    f" ({v['diverged_splits']} of {cfg['splits']} splits diverged)"
                    if v["diverged_splits"]
                    else ""
                )
                lines.append(
                    f"| {m}{div} | {_pm(v['rmse'])} ({v['sd']['rmse']:.2f}) | "
                    f"{_pm(v['ll'])} ({v['sd']['ll']:.2f}) | "
                    f"{v['train_seconds_per_split']:.1f} |"
                )
            for label, v in PUBLISHED.get(name, {}).items():
                lines.append(
                    f"| *{label}* | {_pm(v['rmse']) if 'rmse' in v else '—'} | "
                    f"{_pm(v['ll']) if 'll' in v else '—'} | |"
                )
            lines.append("")
        for name, reason in report.get("skipped_sets", {}).items():
            lines.append(f"- skipped {name}: {reason}")
        lines += ["", "Citations: " + " ".join(f"[{k}] {v}" for k, v in CITATIONS.items()), ""]
    cls = report.get("classification")
    if cls:
        lines += [
            "## Digits under dataset shift (after Ovadia et al. 2019)",
            "",
            f"MLP 64-128-128-10, {cfg['cls_epochs']} epochs, batch {cfg['cls_batch']}, "
            f"Adam lr {cfg['cls_lr']}, "
            f"{cfg['cls_samples']} predictive draws. Severity 0 = clean test set.",
            "",
        ]
        for kind in SHIFTS:
            levels = ", ".join(
                f"{s}: {v:g}" for s, v in zip(cls["severities"][1:], cls["severity_levels"][kind])
            )
            lines += [f"### {kind} ({levels})", ""]
            header = "| method | metric | " + " | ".join(f"sev {s}" for s in cls["severities"]) + " |"
            lines += [header, "|---|---|" + "---:|" * len(cls["severities"])]
            for m, vals in cls["shift"][kind].items():
                for metric in CLS_METRICS:
                    lines.append(f"| {m} | {metric} | " + " | ".join(_num(v) for v in vals[metric]) + " |")
            lines.append("")
        lines += [
            "### OOD detection from predictive entropy (test digits vs OOD inputs)",
            "",
            "| method | " + " | ".join(f"{k} AUROC | {k} AUPR" for k in cls["ood"]) + " |",
            "|---|" + "---:|---:|" * len(cls["ood"]),
        ]
        for m in next(iter(cls["ood"].values())):
            lines.append(
                f"| {m} | "
                + " | ".join(
                    f"{_num(cls['ood'][k][m]['auroc'])} | {_num(cls['ood'][k][m]['aupr'])}"
                    for k in cls["ood"]
                )
                + " |"
            )
        lines.append("")
        if cls.get("diverged"):
            lines += [
                f"Diverged (non-finite weights after training, no metrics): {', '.join(cls['diverged'])}.",
                "",
            ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 2 splits, 2 small sets, few epochs (< 1 min)"
    )
    p.add_argument("--sets", nargs="+", choices=sorted(uci_data.SOURCES), help="regression data sets")
    p.add_argument("--methods", nargs="+", choices=METHODS, help="methods (default: all)")
    p.add_argument("--splits", type=int, help="random 90/10 splits (default 20, quick 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    p.add_argument("--no-classification", action="store_true", help="skip the digits shift benchmark")
    args = p.parse_args(argv)
    if args.splits is not None and args.splits < 1:
        p.error(f"--splits must be >= 1, got {args.splits}")
    output_dir(p, args)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    # One compiled loop per network (traced once, see Learner.traces); TF's "retracing" warning counts
    # the many distinct loops, not retraces.
    tf.get_logger().setLevel("ERROR")
    cfg = make_config(args.quick, args.sets, args.methods, args.splits, args.seed)
    os.makedirs(args.output, exist_ok=True)
    t_start = time.perf_counter()
    report = {
        "meta": metadata(args),
        "config": cfg._asdict() | {"quick": args.quick, "temperature": TEMPERATURE},
        "data_sources": {},
        "skipped_sets": {},
        "regression": {},
        "published": {
            k: {m: {kk: list(vv) for kk, vv in v.items()} for m, v in d.items()}
            for k, d in PUBLISHED.items()
            if k in cfg.sets
        },
        "citations": CITATIONS,
        "versions": {
            "bayesflip": bayesflip.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }
    for name in cfg.sets:
        reason = uci_data.available(name)
        if reason:
            print(f"skipping {name}: {reason}")
            report["skipped_sets"][name] = reason
            continue
        report["data_sources"][name] = uci_data.provenance(name)
        print(f"regression: {name}")
        report["regression"][name] = run_regression(name, cfg)
    if not args.no_classification:
        print("classification under shift: digits")
        report["classification"] = run_classification(cfg)
        report["plots"] = [os.path.basename(p) for p in plot_shift(report["classification"], args.output)]
    report["wall_seconds"] = time.perf_counter() - t_start
    report["finished"] = time.strftime("%Y-%m-%d %H:%M")
    with open(os.path.join(args.output, "suite.json"), "w") as f:
        json.dump(_json_safe(report), f, indent=1)
    md = markdown(report)
    with open(os.path.join(args.output, "suite.md"), "w") as f:
        f.write(md)
    print(md)
    return report


if __name__ == "__main__":
    main()

"""Benchmark suite against published baselines: UCI regression and digits under dataset shift.

Run from the repository root::

    python -m benchmarks run suite            # full suite (estimated ~35-40 min on 2 idle cores)
    python -m benchmarks run suite --quick    # smoke run (well under 2 min)

1. **Regression** (protocol of Hernández-Lobato & Adams 2015, as used by Gal &
   Ghahramani 2016 and Lakshminarayanan et al. 2017): random 90/10 splits, one
   hidden layer of 50 ReLU units, inputs and targets standardised on the training
   data, a Gaussian likelihood with a learned homoscedastic noise scale. Test
   RMSE of the predictive mean and test log-likelihood
   ``mean_i log (1/T) sum_t N(y_i | mu_ti, sigma_ti)`` in the original units
   (``mu = loc * std_y + mean_y``, ``sigma = scale * std_y``), mean ± standard
   error over splits.

   **Every method its best budget, chosen on validation data** (never the test
   split): each method has a grid of the same size (:func:`search_grid`, 24 points
   in the full run): epochs 20/40/80/160 × learning rate 3e-3/1e-2 × its own
   hyper-parameter (the KL temperature 1/0.3/0.1 of ``flipout``/``local``/``shared``,
   the dropout rate 0.01/0.05/0.1 of ``mc_dropout``, ``(K, T)`` (2, 1)/(4, 1)/(4, 0.1)
   of ``rank1``); ``map``, ``ensemble`` and ``flipout_cold`` have none and get six
   learning rates instead. On each of the first ``search_splits`` random splits
   (2 of 20), 20 % of the training split is held out, every grid point trains on the
   rest and is scored by validation log-likelihood; the setting with the best mean
   is the method's choice for the set, reused on all 20 splits, each of which trains
   on its whole training split and is tested as before. The epoch budgets of a grid
   are checkpoints of one run (constant learning rate, so a 20-epoch run is the
   first 20 epochs of the 160-epoch run): 6 training runs per method and search
   split, the same compute for every method (the ensemble's runs train 5 networks).
   What was cut to keep the run at about 40 minutes: the search runs on 2 of the 20
   splits (not all), and the grid stops at 160 epochs and 2 (map-like: 6) learning
   rates.
   **CPU seconds** (``time.process_time()``, all threads of the process) per method:
   training (its share of the search included) and prediction, per split.
   **Gap splits** (Foong et al. 2019, "'In-Between' Uncertainty in Bayesian Neural
   Networks"): per input feature, the data sorted by it (stable sort) and the
   middle third held out as the test set; each method trains with the setting its
   random-split search chose; mean test log-likelihood over features.
2. **Classification under dataset shift** (after Ovadia et al. 2019): the demo's
   64-128-128-10 MLP on scikit-learn's digits at the demo's budget (no search);
   rotation, Gaussian noise and pixel dropout at five severities; accuracy, NLL,
   ECE (15 bins), Brier; OOD AUROC / AUPR from the predictive entropy on the demo's
   OOD kinds; CPU seconds of training and prediction.

Methods: ``map`` (deterministic, L2 = the N(0, 1) prior, learned noise), ``mc_dropout``
(dropout on input and hidden layer in regression, p = 0.1 after each hidden layer in
classification), ``ensemble`` (independently trained ``map`` nets, mixture predictive),
``flipout`` (``DenseFlipout`` with the library's default arguments and
``set_kl_weight(model, num_examples=n, temperature=T)``), ``flipout_cold`` (the same
with ``T`` fixed at the demo's ``bayesflip.demo.DEFAULT_TEMPERATURE``), ``local`` and
``shared`` (``flipout`` with ``estimator="local"`` / ``"shared"``), ``rank1``
(``DenseFlipout(..., posterior=Rank1(num_components=K))`` layers, trained on batches
that repeat each example ``K`` times in a row, :func:`bayesflip.posteriors.tile_for_components`;
in classification the demo's ``DEFAULT_RANK1_COMPONENTS`` / ``DEFAULT_RANK1_TEMPERATURE``;
its point-estimate weight has no L2 here), and post hoc on each ``map`` network as trained
(no training or search of their own) ``laplace_kfac`` (last-layer KFAC) and ``laplace_diag``
(all-layer diagonal) Laplace approximations (:func:`bayesflip.laplace.fit_laplace`, GGN,
GLM predictive, prior precision and noise by the marginal likelihood of the training split).

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
    DEFAULT_RANK1_COMPONENTS,
    DEFAULT_RANK1_SIGN_INIT,
    DEFAULT_RANK1_TEMPERATURE,
    DEFAULT_TEMPERATURE,
    OOD_KINDS,
    build_bayesian_mlp,
    build_deterministic_mlp,
    run_demo,
)  # noqa: E402
from bayesflip.laplace import fit_laplace  # noqa: E402
from bayesflip.layers import DenseFlipout  # noqa: E402
from bayesflip.posteriors import Rank1, tile_for_components  # noqa: E402
from benchmarks import uci_data  # noqa: E402
from benchmarks._meta import metadata, output_dir  # noqa: E402

METHODS = (
    "map",
    "mc_dropout",
    "ensemble",
    "flipout",
    "flipout_cold",
    "local",
    "shared",
    "rank1",
    "laplace_kfac",
    "laplace_diag",
)
# method -> fit_laplace arguments. Post hoc: a Laplace approximation of the `map` method's networks as
# trained on each split (no training and no grid of their own), GLM (linearised) predictive, prior
# precision (and regression noise) by the Laplace marginal likelihood on the training split.
LAPLACE = {
    "laplace_kfac": {"subset_of_weights": "last_layer", "hessian_structure": "kron"},
    "laplace_diag": {"subset_of_weights": "all", "hessian_structure": "diag"},
}
#: the methods that train networks of their own (and get a search grid)
TRAINED = tuple(m for m in METHODS if m not in LAPLACE)
# method -> estimator; all DenseFlipout with the library's default arguments otherwise ("rank1": with
# posterior=Rank1(num_components=K), trained on batches tiled K times).
BAYESIAN = {
    "flipout": "flipout",
    "flipout_cold": "flipout",
    "local": "local",
    "shared": "shared",
    "rank1": "flipout",
}
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
        "MC dropout, grid search [Gal 2016 repo]": {"ll": (-2.40, 0.04)},
        "Deep ensembles (5) [Lakshminarayanan 2017]": {"rmse": (3.28, 1.00), "ll": (-2.41, 0.25)},
    },
    "concrete": {
        "VI (Graves 2011) [HL&A 2015]": {"ll": (-3.39, 0.02)},
        "PBP [HL&A 2015]": {"rmse": (5.67, 0.09), "ll": (-3.16, 0.02)},
        "MC dropout [G&G 2016]": {"rmse": (5.23, 0.53), "ll": (-3.04, 0.09)},
        "MC dropout, grid search [Gal 2016 repo]": {"ll": (-2.93, 0.02)},
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
    "Gal 2016 repo": "Y. Gal. DropoutUncertaintyExps (github.com/yaringal/DropoutUncertaintyExps), README: "
    "the updated MC-dropout results with the dropout rate and the noise precision chosen by grid search "
    "(log-likelihood only listed here).",
    "Lakshminarayanan 2017": "B. Lakshminarayanan, A. Pritzel, C. Blundell. Simple and Scalable Predictive "
    "Uncertainty Estimation using Deep Ensembles. NeurIPS 2017, Table 1 (NLL, negated here).",
    "Ovadia 2019": "Y. Ovadia et al. Can You Trust Your Model's Uncertainty? Evaluating Predictive "
    "Uncertainty "
    "Under Dataset Shift. NeurIPS 2019 (protocol).",
}


class Config(NamedTuple):
    """Budgets of one run (see :func:`make_config`) and the regression search grids (see :func:`search_grid`)."""

    sets: tuple[str, ...]
    methods: tuple[str, ...]
    splits: int
    seed: int
    reg_batch: int
    reg_samples: int
    ensemble_size: int
    cls_epochs: int
    cls_batch: int
    cls_lr: float
    cls_samples: int
    severities: tuple[int, ...]  # 1-based indices into SEVERITY_LEVELS
    search_splits: int  # the first `search_splits` random splits choose each method's setting
    validation_fraction: float  # of each training split, held out to choose
    epochs_grid: tuple[int, ...]  # epochs × lr: every method with a third hyper-parameter
    lr_grid: tuple[float, ...]
    fine_epochs_grid: tuple[int, ...]  # epochs × lr of the methods without one (same grid size)
    fine_lr_grid: tuple[float, ...]
    temperature_grid: tuple[float, ...]  # flipout, local, shared
    dropout_grid: tuple[float, ...]  # mc_dropout
    rank1_grid: tuple[tuple[int, float], ...]  # rank1: (num_components K, temperature T)
    gap_features: int | None = None  # gap splits on the first n features (None: every feature)
    dropout_cls: float = 0.1
    hidden: int = 50


def _demo_default(name):
    return inspect.signature(run_demo).parameters[name].default


def make_config(quick: bool, sets=None, methods=None, splits=None, seed: int = 0) -> Config:
    """Full or quick budgets; the classification budget follows the demo's defaults."""
    if quick:
        # Mostly tracing time: one compiled training loop per network (and per MC sampler). The grids
        # vary only the epochs (checkpoints of one run: no new network, no extra trace); one feature's gap split.
        cfg = Config(
            sets=("diabetes", "boston"),
            methods=METHODS,
            splits=2,
            seed=seed,
            reg_batch=32,
            reg_samples=8,
            ensemble_size=2,
            cls_epochs=3,
            cls_batch=64,
            cls_lr=1e-2,
            cls_samples=4,
            severities=(1, 3),
            search_splits=1,
            validation_fraction=0.2,
            epochs_grid=(1, 3),
            lr_grid=(1e-2,),
            fine_epochs_grid=(1, 3),
            fine_lr_grid=(1e-2,),
            temperature_grid=(1.0,),
            dropout_grid=(0.05,),
            rank1_grid=((DEFAULT_RANK1_COMPONENTS, DEFAULT_RANK1_TEMPERATURE),),
            gap_features=1,
        )
    else:
        cfg = Config(
            sets=("boston", "concrete", "diabetes"),
            methods=METHODS,
            splits=20,
            seed=seed,
            reg_batch=32,
            reg_samples=100,
            ensemble_size=5,
            cls_epochs=_demo_default("epochs"),
            cls_batch=_demo_default("batch_size"),
            cls_lr=_demo_default("learning_rate"),
            cls_samples=_demo_default("num_samples"),
            severities=(1, 2, 3, 4, 5),
            search_splits=2,
            validation_fraction=0.2,
            epochs_grid=(20, 40, 80, 160),
            lr_grid=(3e-3, 1e-2),
            fine_epochs_grid=(20, 40, 80, 160),
            fine_lr_grid=(1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 3e-2),
            temperature_grid=(1.0, 0.3, 0.1),
            dropout_grid=(0.01, 0.05, 0.1),
            rank1_grid=((2, 1.0), (4, 1.0), (4, 0.1)),
        )
    cfg = cfg._replace(
        sets=tuple(sets) if sets else cfg.sets,
        methods=tuple(methods) if methods else cfg.methods,
        splits=splits if splits else cfg.splits,
    )
    if any(m in LAPLACE for m in cfg.methods) and "map" not in cfg.methods:
        raise ValueError(
            f"suite: the Laplace methods {sorted(LAPLACE)} approximate the map method's networks; "
            f"add 'map' to the methods, got {list(cfg.methods)}."
        )
    # METHODS order: map trains before the Laplace methods read its networks.
    cfg = cfg._replace(methods=tuple(m for m in METHODS if m in cfg.methods))
    return cfg._replace(search_splits=min(cfg.search_splits, cfg.splits))


def search_grid(method: str, cfg: Config) -> list[dict]:
    """The settings ``method`` is chosen from: the same number for every method.

    epochs × lr × the method's own hyper-parameter (``temperature`` of the variational methods, the
    ``dropout`` rate of MC dropout, ``(components, temperature)`` of rank-1); ``map``, ``ensemble`` and
    ``flipout_cold`` (its temperature fixed at the demo's) have none and get the finer epochs × lr grid.
    """
    if method in LAPLACE:
        raise ValueError(f"suite: {method} has no search grid: it uses map's chosen setting and networks.")
    base = [{"epochs": e, "lr": lr} for e in cfg.epochs_grid for lr in cfg.lr_grid]
    if method in ("flipout", "local", "shared"):
        return [b | {"temperature": t} for b in base for t in cfg.temperature_grid]
    if method == "mc_dropout":
        return [b | {"dropout": p} for b in base for p in cfg.dropout_grid]
    if method == "rank1":
        return [b | {"components": k, "temperature": t} for b in base for k, t in cfg.rank1_grid]
    fine = [{"epochs": e, "lr": lr} for e in cfg.fine_epochs_grid for lr in cfg.fine_lr_grid]
    if method == "flipout_cold":
        return [f | {"temperature": TEMPERATURE["flipout_cold"]} for f in fine]
    return fine


def check_grid_sizes(cfg: Config) -> int:
    """The common grid size; a ``ValueError`` when the methods' grids differ in size (unequal budgets)."""
    sizes = {m: len(search_grid(m, cfg)) for m in TRAINED}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"suite: every method needs a search grid of the same size, got {sizes}.")
    return next(iter(sizes.values()))


def describe_setting(setting: dict) -> str:
    """``'160 ep, lr 0.003, T 0.1'``: a chosen setting in a table cell."""
    names = {"lr": "lr", "temperature": "T", "dropout": "p", "components": "K"}
    parts = [f"{setting['epochs']} ep"]
    parts += [
        f"{names[k]} {setting[k]:g}" for k in ("lr", "components", "temperature", "dropout") if k in setting
    ]
    return ", ".join(parts)


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


def tile_batches(batches: np.ndarray, num_components: int) -> np.ndarray:
    """``(steps, K · batch)`` indices: each example of a batch ``K`` times in a row (the rank-1 recipe).

    The index batches go through :func:`bayesflip.posteriors.tile_for_components`, so the suite's
    compiled loop sees exactly the batches ``fit_bayesian_mlp(..., tile_components=K)`` trains on.
    """
    if num_components == 1:
        return batches
    if len(batches) == 0:
        return np.zeros((0, batches.shape[1] * num_components), "int32")
    tiled = tile_for_components(tf.data.Dataset.from_tensor_slices(batches), num_components)
    return np.stack([b.numpy() for b in tiled]).astype("int32")


class Learner:
    """One network + its Adam optimizer + a compiled whole-training loop (traced once, reused).

    ``reset(seed, learning_rate)`` re-draws the initial weights (from a fresh twin of the model),
    zeroes the optimizer and sets its learning rate, so the same compiled loop trains a new network
    on every split and grid point (the loop takes inputs of any length and any number of steps).
    """

    def __init__(self, build, loss_fn, learning_rate: float):
        self.build, self.loss_fn = build, loss_fn
        self.model = build()
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        # Initial optimizer state (iterations, moments, and the learning-rate variable) to restore.
        self._opt_init = [v.numpy() for v in self.optimizer.variables]
        self._train = None  # compiled on the first fit, with every dimension left open
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

    def reset(self, seed: int, learning_rate: float | None = None) -> None:
        keras.utils.set_random_seed(seed)
        self.model.set_weights(self.build(seed=seed).get_weights())
        for v, init in zip(self.optimizer.variables, self._opt_init):
            v.assign(init)
        if learning_rate is not None:
            self.optimizer.learning_rate.assign(learning_rate)

    def fit(self, x, y, batches) -> bool:
        """Train; return whether the final loss and every weight are finite (False: diverged)."""
        x, y, batches = np.asarray(x), np.asarray(y), np.asarray(batches)
        if self._train is None:
            # rows and steps open, the feature axes fixed (the layers need them)
            specs = [tf.TensorSpec([None, *a.shape[1:]], tf.as_dtype(a.dtype)) for a in (x, y)]
            specs.append(tf.TensorSpec([None, None], tf.int32))
            self._train = tf.function(self._loop, input_signature=specs)
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


def fit_suite_laplace(method: str, model: keras.Model, x, y, likelihood: str):
    """``method``'s Laplace approximation of the trained ``model`` (read, not modified) on ``(x, y)``.

    ``LAPLACE[method]``'s weights and Hessian structure, GGN curvature; the prior precision (and for
    regression the noise) maximise the Laplace marginal likelihood of the training data.
    """
    la = fit_laplace(model, x, y, likelihood=likelihood, verbose=0, **LAPLACE[method])
    return la.optimize_prior_precision(method="marglik")


def laplace_regression_draws(la, x) -> np.ndarray:
    """The GLM predictive ``N(mean, total variance)`` as one "draw" ``(1, N, 1, [loc, scale])``."""
    pred = la.predict(x)
    return np.stack([np.asarray(pred.mean), np.sqrt(np.asarray(pred.total_variance))], -1)[None]


def members(method: str, cfg: Config) -> int:
    """How many networks ``method`` trains (the Laplace methods none: they read map's)."""
    if method in LAPLACE:
        return 0
    return cfg.ensemble_size if method == "ensemble" else 1


# --------------------------------------------------------------------------- regression
class L2Prior(keras.regularizers.Regularizer):
    """``weight · Σ w²`` with ``weight`` in a variable: set per fit (``1 / (2 n)``) without retracing."""

    def __init__(self, weight: float):
        self.weight = tf.Variable(weight, trainable=False, dtype="float32")

    def __call__(self, x):
        return self.weight * tf.reduce_sum(tf.square(x))

    def get_config(self) -> dict:
        return {"weight": float(self.weight.numpy())}


def build_regressor(
    method: str,
    dim: int,
    n_train: int,
    cfg: Config,
    seed: int = 0,
    dropout: float = 0.05,
    components: int = DEFAULT_RANK1_COMPONENTS,
) -> keras.Model:
    """One hidden layer of ``cfg.hidden`` ReLU units + the Gaussian head, for ``method``.

    ``dropout``: MC dropout's rate; ``components``: rank-1's ``K`` (both fixed in the network).
    The variational nets get ``kl_weight = 1 / n_train`` here; training sets its temperature.
    """
    head, _, _ = gaussian_head()
    if method == "rank1":
        body = [
            DenseFlipout(
                cfg.hidden, activation="relu", posterior=Rank1(num_components=components), seed=seed
            ),
            DenseFlipout(1, posterior=Rank1(num_components=components), seed=seed + 1),
        ]
    elif method in BAYESIAN:  # library defaults; only the estimator varies
        est = BAYESIAN[method]
        body = [
            DenseFlipout(cfg.hidden, activation="relu", estimator=est, seed=seed),
            DenseFlipout(1, estimator=est, seed=seed + 1),
        ]
    else:
        reg = L2Prior(1.0 / (2.0 * n_train))  # MAP under the N(0, 1) prior, per example
        body = [
            keras.layers.Dense(cfg.hidden, activation="relu", kernel_regularizer=reg),
            keras.layers.Dense(1, kernel_regularizer=reg),
        ]
        if method == "mc_dropout":  # Gal & Ghahramani: dropout on the input and the hidden layer
            body = [
                keras.layers.Dropout(dropout, seed=seed),
                body[0],
                keras.layers.Dropout(dropout, seed=seed + 1),
                body[1],
            ]
    model = keras.Sequential([keras.Input((dim,)), *body, *head], name=f"reg_{method}")
    if method in BAYESIAN:
        bayesflip.set_kl_weight(model, num_examples=n_train)
    return model


class RegressionTrainer:
    """Trains ``method`` at a grid setting on one set: the learners (one compiled loop each) per network.

    Networks differ only where a setting changes the graph (MC dropout's rate, rank-1's ``K``);
    epochs, learning rate and temperature are set on the same learners. The map net's L2 weight and
    the KL weight follow the number of training rows of each fit. ``cpu`` accumulates
    ``time.process_time()`` seconds (all of the process's threads) per method and phase.
    """

    def __init__(self, dim: int, cfg: Config):
        self.dim, self.cfg = dim, cfg
        self.loss_fn = gaussian_head()[1]
        self.pool: dict[tuple, list[Learner]] = {}

    def learners(self, method: str, setting: dict) -> list[Learner]:
        key = (method, setting.get("dropout"), setting.get("components"))
        if key not in self.pool:
            kwargs = {k: setting[k] for k in ("dropout", "components") if k in setting}
            self.pool[key] = [
                Learner(
                    lambda seed=0: build_regressor(method, self.dim, 1, self.cfg, seed, **kwargs),
                    self.loss_fn,
                    setting["lr"],
                )
                for _ in range(members(method, self.cfg))
            ]
        return self.pool[key]

    def fit_path(self, method: str, setting: dict, x, y, rng: np.random.Generator, seed: int, checkpoints):
        """Train every network of ``method`` at ``setting`` (its ``"epochs"`` ignored) on ``(x, y)``.

        Yields ``(epochs, learners, finite)`` after each of the sorted ``checkpoints`` (epochs): one run
        serves every epoch budget of a grid, and is the same run as a separate one of that many epochs
        (constant learning rate; the batches of a longer run begin with those of a shorter one).
        """
        learners, plans = self.learners(method, setting), []
        for k, learner in enumerate(learners):
            learner.reset(seed + 10 * k, setting["lr"])
            model = learner.model
            if method in BAYESIAN:
                bayesflip.set_kl_weight(
                    model, num_examples=len(x), temperature=setting.get("temperature", 1.0)
                )
            else:  # the N(0, 1) prior per example: L2 weight 1 / (2 n)
                for layer in model.layers:
                    if isinstance(getattr(layer, "kernel_regularizer", None), L2Prior):
                        layer.kernel_regularizer.weight.assign(1.0 / (2.0 * len(x)))
            batches = batch_indices(len(x), self.cfg.reg_batch, max(checkpoints), rng)
            plans.append(tile_batches(batches, setting.get("components", 1)))
        steps, done, finite = math.ceil(len(x) / self.cfg.reg_batch), 0, True
        for epochs in sorted(checkpoints):
            for learner, batches in zip(learners, plans):
                finite &= learner.fit(x, y, batches[done * steps : epochs * steps])
            done = epochs
            yield epochs, learners, finite

    def fit(self, method: str, setting: dict, x, y, rng: np.random.Generator, seed: int) -> tuple[list, bool]:
        """Train every network of ``method`` at ``setting`` on ``(x, y)``; ``(learners, finite)``."""
        ((_, learners, finite),) = self.fit_path(method, setting, x, y, rng, seed, [setting["epochs"]])
        return learners, finite

    def traces(self, method: str) -> list[int]:
        return [lr.traces for key, ls in self.pool.items() if key[0] == method for lr in ls]


def _standardised(x, y, train, test):
    xs, ys = Standardizer.fit(x[train]), Standardizer.fit(y[train])
    return xs.transform(x[train]), ys.transform(y[train])[:, None], xs.transform(x[test]), ys


def gap_splits(x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Foong et al. (2019) gap splits: per feature, sort by it and test on the middle third.

    ``[(train, test)]`` index arrays, one pair per feature; ties keep the data's order (stable sort).
    """
    n, out = len(x), []
    for j in range(x.shape[1]):
        order = np.argsort(x[:, j], kind="stable")
        lo, hi = n // 3, 2 * n // 3
        out.append((np.concatenate([order[:lo], order[hi:]]), order[lo:hi]))
    return out


def run_regression(name: str, cfg: Config, log=print) -> dict:
    """Search each method's setting on validation data, then train on each split and test.

    1. On each of the first ``cfg.search_splits`` random 90/10 splits, a random
       ``cfg.validation_fraction`` of the training split is held out; every grid point is trained
       on the rest and scored by validation log-likelihood. The setting with the highest mean over
       these splits is the method's choice for the set (the test splits are never looked at).
    2. Every one of the ``cfg.splits`` splits (the search splits included) trains the chosen setting
       on its whole training split and scores the test split.
    3. Gap splits: the chosen setting, trained and tested on each feature's gap split.
    """
    x, y = uci_data.load(name)
    n = len(x)
    n_train = int(round(0.9 * n))
    _, _, head_name = gaussian_head()
    trainer = RegressionTrainer(x.shape[1], cfg)
    splits = [np.random.default_rng([cfg.seed, split]).permutation(n) for split in range(cfg.splits)]
    cpu = {m: {"search": 0.0, "train": 0.0, "predict": 0.0, "gap": 0.0} for m in cfg.methods}
    grids = {m: search_grid(m, cfg) for m in cfg.methods if m not in LAPLACE}
    finite_of: dict[str, bool] = {}  # the last fit of each trained method
    hyper = {m: {"prior_precision": [], "sigma_noise": []} for m in cfg.methods if m in LAPLACE}

    def run(m, setting, x_tr, y_tr, x_te, y_te, ys, rng, seed, phase):
        t0 = time.process_time()
        la = None
        if m in LAPLACE:  # map's networks as trained on this split just before (METHODS order)
            learners, finite = trainer.learners("map", chosen["map"]), finite_of["map"]
            if finite:
                la = fit_suite_laplace(m, learners[0].model, x_tr, y_tr, "regression")
                if phase == "test":
                    hyper[m]["prior_precision"].append(float(np.mean(la.prior_precision)))
                    hyper[m]["sigma_noise"].append(float(la.sigma_noise))
        else:
            learners, finite = trainer.fit(m, setting, x_tr, y_tr, rng, seed)
            finite_of[m] = finite
        t1 = time.process_time()
        cpu[m][phase if phase != "test" else "train"] += t1 - t0
        if not finite:  # reported, not hidden: the split counts as diverged
            return {"rmse": math.nan, "ll": math.nan}
        if la is not None:
            draws = laplace_regression_draws(la, x_te)
        else:
            draws = sample_outputs(learners, m, x_te, cfg.reg_samples)
        scores = regression_scores(y_te, draws, ys)
        cpu[m][phase if phase != "test" else "predict"] += time.process_time() - t1
        return scores

    # 1. validation search
    val_ll = {m: np.zeros((cfg.search_splits, len(grids[m]))) for m in grids}
    for split in range(cfg.search_splits):
        tr = splits[split][:n_train]
        rng = np.random.default_rng([cfg.seed, split, 1])
        n_val = int(round(cfg.validation_fraction * len(tr)))
        shuffled = rng.permutation(tr)
        val, sub = shuffled[:n_val], shuffled[n_val:]
        x_sub, y_sub, x_val, ys = _standardised(x, y, sub, val)
        for m in grids:
            # One run per setting other than epochs, scored at each epoch budget of the grid.
            paths: dict[tuple, dict[int, int]] = {}
            for g, setting in enumerate(grids[m]):
                key = tuple(sorted((k, v) for k, v in setting.items() if k != "epochs"))
                paths.setdefault(key, {})[setting["epochs"]] = g
            for p, (key, at) in enumerate(paths.items()):
                seed = 1000 * cfg.seed + 100 * split + 7 + 100_000 * (p + 1)
                t0 = time.process_time()
                for epochs, learners, finite in trainer.fit_path(
                    m, dict(key), x_sub, y_sub, rng, seed, list(at)
                ):
                    ll = -np.inf
                    if finite:
                        draws = sample_outputs(learners, m, x_val, cfg.reg_samples)
                        ll = regression_scores(y[val], draws, ys)["ll"]
                    val_ll[m][split, at[epochs]] = ll if math.isfinite(ll) else -np.inf
                cpu[m]["search"] += time.process_time() - t0
        log(f"  {name} search split {split + 1}/{cfg.search_splits} done")
    chosen = {m: grids[m][int(np.argmax(val_ll[m].mean(0)))] for m in grids}
    chosen |= {m: chosen["map"] for m in cfg.methods if m in LAPLACE}
    log(f"  {name} chosen: " + "; ".join(f"{m} {describe_setting(chosen[m])}" for m in cfg.methods))

    # 2. test on every random split
    per = {m: {"rmse": [], "ll": []} for m in cfg.methods}
    wall = {m: 0.0 for m in cfg.methods}
    for split in range(cfg.splits):
        rng = np.random.default_rng([cfg.seed, split, 2])  # batches (the split's own stream drew the split)
        tr, te = splits[split][:n_train], splits[split][n_train:]
        x_tr, y_tr, x_te, ys = _standardised(x, y, tr, te)
        for m in cfg.methods:
            t0 = time.perf_counter()
            scores = run(
                m, chosen[m], x_tr, y_tr, x_te, y[te], ys, rng, 1000 * cfg.seed + 100 * split + 1, "test"
            )
            wall[m] += time.perf_counter() - t0
            for key, value in scores.items():
                per[m][key].append(value)
        log(
            f"  {name} split {split + 1}/{cfg.splits}: "
            + "  ".join(f"{m} {per[m]['rmse'][-1]:.2f}/{per[m]['ll'][-1]:.2f}" for m in cfg.methods)
        )

    # 3. gap splits (chosen settings of the random-split search)
    gaps = gap_splits(x)[: cfg.gap_features]
    gap = {m: {"rmse": [], "ll": []} for m in cfg.methods}
    for j, (tr, te) in enumerate(gaps):
        rng = np.random.default_rng([cfg.seed, 7, j])
        x_tr, y_tr, x_te, ys = _standardised(x, y, tr, te)
        for m in cfg.methods:
            scores = run(
                m, chosen[m], x_tr, y_tr, x_te, y[te], ys, rng, 1000 * cfg.seed + 50_000 + 10 * j, "gap"
            )
            for key, value in scores.items():
                gap[m][key].append(value)
    if gaps:
        log(
            f"  {name} gap splits ({len(gaps)} features): "
            + "  ".join(f"{m} {np.nanmean(gap[m]['ll']):.2f}" for m in cfg.methods)
        )

    out = {
        "head": head_name,
        "n": n,
        "d": int(x.shape[1]),
        "n_train": n_train,
        "methods": {},
        "search": {
            "splits": cfg.search_splits,
            "validation_fraction": cfg.validation_fraction,
            "criterion": "mean validation log-likelihood (original units) over the search splits",
            "grid": grids,
            "val_ll": {m: _json_safe(val_ll[m].tolist()) for m in grids},
        },
        "laplace": hyper,
        "gap": {"features": len(gaps), "test_size": [len(te) for _, te in gaps], "methods": {}},
    }
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
            "traces": max(trainer.traces("map" if m in LAPLACE else m)),
            "train_seconds_per_split": wall[m] / cfg.splits,
            "chosen": chosen[m],
            "cpu_seconds": cpu[m]
            | {
                "train_per_split": (cpu[m]["search"] + cpu[m]["train"]) / cfg.splits,
                "predict_per_split": cpu[m]["predict"] / cfg.splits,
            },
            "per_split": {"rmse": vals["rmse"], "ll": vals["ll"]},
        }
        g_ok = [i for i, r in enumerate(gap[m]["ll"]) if math.isfinite(r)]
        out["gap"]["methods"][m] = {
            "ll": mean_se([gap[m]["ll"][i] for i in g_ok]),
            "rmse": mean_se([gap[m]["rmse"][i] for i in g_ok]),
            "diverged_features": len(gaps) - len(g_ok),
            "per_feature": gap[m],
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
    """The demo's 64-128-128-10 MLP for ``method`` (built with the demo's own builders).

    ``rank1``: the demo's rank-1 net (``DEFAULT_RANK1_COMPONENTS``, ``DEFAULT_RANK1_SIGN_INIT``) at
    ``DEFAULT_RANK1_TEMPERATURE`` (trained on batches tiled ``K`` times), with the family's default
    prior ``N(1, 0.1²)`` like the regression nets (the demo's net uses ``DEFAULT_RANK1_PRIOR_SCALE``,
    measured after the committed suite run).
    """
    if method == "rank1":
        model = build_bayesian_mlp(
            64,
            10,
            seed=seed,
            posterior=Rank1(
                num_components=DEFAULT_RANK1_COMPONENTS, random_sign_init=DEFAULT_RANK1_SIGN_INIT
            ),
        )
        bayesflip.set_kl_weight(model, num_examples=n_train, temperature=DEFAULT_RANK1_TEMPERATURE)
        return model
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
        "cpu_seconds": {},
    }
    rng = np.random.default_rng([cfg.seed, 99])
    trained: dict[str, tuple[list, bool]] = {}
    for m in cfg.methods:
        t0, c0 = time.perf_counter(), time.process_time()
        learners, finite, la = [], True, None
        tiles = DEFAULT_RANK1_COMPONENTS if m == "rank1" else 1
        if m in LAPLACE:  # post hoc on map's network (METHODS order: map ran first)
            learners, finite = trained["map"]
            if finite:
                la = fit_suite_laplace(m, learners[0].model, x_tr, data.y_train, "categorical")
                result.setdefault("laplace", {})[m] = {
                    "prior_precision": np.asarray(la.prior_precision).tolist()
                }
        for k in range(members(m, cfg)):
            learner = Learner(
                lambda seed=0, m=m: build_classifier(m, n_train, cfg, seed), loss_fn, cfg.cls_lr
            )
            learner.reset(1000 * cfg.seed + 10 * k + 7)
            batches = batch_indices(n_train, cfg.cls_batch, cfg.cls_epochs, rng)
            finite &= learner.fit(x_tr, data.y_train, tile_batches(batches, tiles))
            learners.append(learner)
        trained[m] = (learners, finite)
        result["train_seconds"][m] = time.perf_counter() - t0
        result["cpu_seconds"][m] = {"train": time.process_time() - c0}
        c1 = time.process_time()
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

        def predict(images, learners=learners, m=m, la=la):
            if la is not None:  # the GLM predictive (probit)
                return np.asarray(la.predict(images.reshape(len(images), -1)))
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
        result["cpu_seconds"][m]["predict"] = time.process_time() - c1
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


#: methods in the summary tables of docs/benchmarks.md (those of the run)
SUMMARY_METHODS = (
    "map",
    "mc_dropout",
    "ensemble",
    "flipout",
    "flipout_cold",
    "rank1",
    "laplace_kfac",
    "laplace_diag",
)


def _grid_size(cfg: dict) -> int:
    return len(search_grid(cfg["methods"][0], Config(**{k: cfg[k] for k in Config._fields})))


def grid_text(method: str, cfg: dict) -> str:
    """A method's search grid in words, from a report's config."""
    c = Config(**{k: cfg[k] for k in Config._fields})
    grid = search_grid(method, c)

    def values(key):
        return "/".join(f"{v:g}" for v in dict.fromkeys(g[key] for g in grid))

    text = f"epochs {values('epochs')} × lr {values('lr')}"
    if method == "rank1":
        text += " × (K, T) " + "/".join(f"({k}, {t:g})" for k, t in c.rank1_grid)
    elif "dropout" in grid[0]:
        text += f" × p {values('dropout')}"
    elif "temperature" in grid[0] and method != "flipout_cold":
        text += f" × T {values('temperature')}"
    return text + f" ({len(grid)})"


def gap_markdown(report: dict) -> list[str]:
    """The gap-split section (Foong et al. 2019); empty for a run without gap splits."""
    reg = {n: r for n, r in report.get("regression", {}).items() if r.get("gap", {}).get("features")}
    if not reg:
        return []
    methods = list(next(iter(reg.values()))["gap"]["methods"])
    lines = [
        "## Gap splits (in-between uncertainty, Foong et al. 2019)",
        "",
        "Per input feature, the data sorted by it and the middle third held out as the test set; each "
        "method with the setting its random-split search chose. Test log-likelihood, mean ± standard error "
        "over features (higher is better).",
        "",
        "| method | "
        + " | ".join(
            f"{n} ({k} feature{'s' * (k != 1)})" for n, r in reg.items() for k in [r["gap"]["features"]]
        )
        + " |",
        "|---|" + "---:|" * len(reg),
    ]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(_pm(r["gap"]["methods"][m]["ll"]) for r in reg.values()) + " |")
    return [*lines, ""]


#: the bayesflip methods that train a posterior (the "best bayesflip method" of the bars)
OURS = ("flipout", "flipout_cold", "rank1")
#: published grid-searched MC dropout (Gal 2016 repo), the stretch goal of the rank-1 net
GRID_SEARCHED_DROPOUT = "MC dropout, grid search [Gal 2016 repo]"


def bars(report: dict) -> dict:
    """The suite's verdicts against the deep ensemble and MAP, computed from a full report.

    Returns a dict with, per regression set, the best of :data:`OURS` by test log-likelihood against
    the ensemble's; per shift at the highest severity, the ECE and NLL of each of :data:`OURS` against
    the ensemble's; the rank-1 net against the published grid-searched MC dropout; each Laplace
    method's test log-likelihood against map's per set, the severities >= 2 where its ECE is not
    below map's, its mean gap log-likelihood against flipout's, and its CPU seconds per split
    against the ensemble's training (the search excluded).
    """
    reg, cls = report.get("regression", {}), report.get("classification", {})
    methods = report["config"]["methods"]
    ours = [m for m in OURS if m in methods]
    ll = {n: {m: v["ll"][0] for m, v in r["methods"].items()} for n, r in reg.items()}
    out: dict = {"ll_vs_ensemble": {}, "shift_vs_ensemble": {}, "rank1_vs_dropout": {}, "laplace": {}}
    for n, v in ll.items():
        best = max(ours, key=lambda m: v[m])
        out["ll_vs_ensemble"][n] = {"method": best, "ll": v[best], "ensemble": v["ensemble"]}
        published = report.get("published", {}).get(n, {}).get(GRID_SEARCHED_DROPOUT)
        if published and "rank1" in v:
            out["rank1_vs_dropout"][n] = {"rank1": v["rank1"], "published": published["ll"][0]}
    top = len(cls.get("severities", [])) - 1
    for kind, by in cls.get("shift", {}).items():
        out["shift_vs_ensemble"][kind] = {
            m: {metric: (by[m][metric][top], by["ensemble"][metric][top]) for metric in ("ece", "nll")}
            for m in ours
        }
    # one method that meets both regression and shift bars
    out["meets_all"] = [
        m
        for m in ours
        if all(v[m] >= v["ensemble"] for v in ll.values())
        and all(a <= b for k in out["shift_vs_ensemble"].values() for a, b in k[m].values())
    ]
    gap = {n: r["gap"]["methods"] for n, r in reg.items() if r.get("gap", {}).get("features")}
    ens_train = {
        n: r["methods"]["ensemble"]["cpu_seconds"]["train"] / report["config"]["splits"]
        for n, r in reg.items()
    }
    for m in (m for m in LAPLACE if m in methods):
        out["laplace"][m] = {
            "ll_vs_map": {n: (v[m], v["map"]) for n, v in ll.items()},
            "ece_not_below_map": {
                kind: [i for i in range(2, top + 1) if by[m]["ece"][i] >= by["map"]["ece"][i]]
                for kind, by in cls.get("shift", {}).items()
            },
            "gap_vs_flipout": {n: (g[m]["ll"][0], g["flipout"]["ll"][0]) for n, g in gap.items()},
            "cpu_per_split_vs_ensemble_training": {
                n: (r["methods"][m]["cpu_seconds"]["train"] / report["config"]["splits"], ens_train[n])
                for n, r in reg.items()
            },
        }
    return out


def summary_markdown(report: dict) -> str:
    """The summary of a full run in docs/benchmarks.md: UCI test log-likelihood and digits at the highest shift severity."""
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
        "Methods: `map` deterministic net (L2 = N(0, 1) prior), `mc_dropout` (dropout on input and hidden "
        f"layer in regression, p = {cfg['dropout_cls']} after each hidden layer in classification), `ensemble` of "
        f"{cfg['ensemble_size']} `map` nets, `flipout` = `DenseFlipout` defaults + "
        "`set_kl_weight(model, num_examples=n_train, temperature=T)`, `flipout_cold` = the same with "
        f"T fixed at {cfg['temperature'].get('flipout_cold')} (the demo's default), "
        "`local` / `shared` = `flipout` with `estimator='local'` / `'shared'`, `rank1` = `DenseFlipout(..., "
        "posterior=Rank1(num_components=K))` trained on batches tiled K times, `laplace_kfac` / "
        "`laplace_diag` = `bayesflip.laplace.fit_laplace` on each `map` net as trained (post hoc: no "
        "training or grid of their own): last-layer KFAC / all-layer diagonal GGN, GLM (linearised) "
        "predictive (probit in classification), prior precision (and regression noise) by the Laplace "
        "marginal likelihood of the training split; their CPU s are the Laplace fit and prediction only "
        "(add map's). Regression: learned homoscedastic Gaussian noise for every method.",
        "",
    ]
    if report.get("regression"):
        lines += [
            "## UCI regression (Hernández-Lobato & Adams 2015 protocol)",
            "",
            f"{cfg['splits']} random 90/10 splits, 1 hidden layer of {cfg['hidden']} ReLU units, "
            f"batch {cfg['reg_batch']}, Adam, "
            f"{cfg['reg_samples']} predictive draws, ensemble of {cfg['ensemble_size']}. "
            f"Each method's setting (epochs, learning rate and its own hyper-parameter; {_grid_size(cfg)} grid "
            f"points per method) is chosen per set by the mean validation log-likelihood over the first "
            f"{cfg['search_splits']} splits ({100 * cfg['validation_fraction']:g} % of each training split held "
            "out), then trained on every whole training split and tested. "
            "Ours: mean ± standard error over splits (standard deviation over splits in brackets); "
            "original units. CPU s = `time.process_time()` per split (training includes the search's share). "
            "Published rows (italic): ± as printed (HL&A 2015: standard errors; "
            "G&G 2016 and Lakshminarayanan 2017: apparently standard deviations).",
            "",
            "Grids: "
            + "; ".join(f"`{m}` {grid_text(m, cfg)}" for m in cfg["methods"] if m not in LAPLACE)
            + ".",
            "",
        ]
        for name, res in report["regression"].items():
            src = report["data_sources"][name]
            lines += [
                f"### {name} (n = {res['n']}, d = {res['d']}; "
                f"{src['wheel']} {src['version']}, {src['item']})",
                "",
                "| method | chosen setting | test RMSE | test log-likelihood | CPU s train / predict |",
                "|---|---|---:|---:|---:|",
            ]
            for m, v in res["methods"].items():
                div = (
                    f" ({v['diverged_splits']} of {cfg['splits']} splits diverged)"
                    if v["diverged_splits"]
                    else ""
                )
                c = v["cpu_seconds"]
                lines.append(
                    f"| {m}{div} | {'map net: ' * (m in LAPLACE)}{describe_setting(v['chosen'])} | {_pm(v['rmse'])} ({v['sd']['rmse']:.2f}) | "
                    f"{_pm(v['ll'])} ({v['sd']['ll']:.2f}) | "
                    f"{c['train_per_split']:.1f} / {c['predict_per_split']:.2f} |"
                )
            for label, v in PUBLISHED.get(name, {}).items():
                lines.append(
                    f"| *{label}* | | {_pm(v['rmse']) if 'rmse' in v else '—'} | "
                    f"{_pm(v['ll']) if 'll' in v else '—'} | |"
                )
            lines.append("")
        for name, reason in report.get("skipped_sets", {}).items():
            lines.append(f"- skipped {name}: {reason}")
        lines += ["", "Citations: " + " ".join(f"[{k}] {v}" for k, v in CITATIONS.items()), ""]
        lines += gap_markdown(report)
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
        if cls.get("cpu_seconds"):
            lines += [
                "CPU seconds (`time.process_time()`), training / prediction of every test set: "
                + ", ".join(
                    f"{m} {v['train']:.1f} / {v.get('predict', math.nan):.1f}"
                    for m, v in cls["cpu_seconds"].items()
                )
                + ".",
                "",
            ]
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
    p.add_argument(
        "--search-splits", type=int, help="splits that choose each method's setting (default 2, quick 1)"
    )
    p.add_argument("--gap-features", type=int, help="gap splits on the first N features (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="output folder (default: see benchmarks/_meta.py)")
    p.add_argument("--no-classification", action="store_true", help="skip the digits shift benchmark")
    args = p.parse_args(argv)
    for name in ("splits", "search_splits"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.gap_features is not None and args.gap_features < 0:
        p.error(f"--gap-features must be >= 0, got {args.gap_features}")
    output_dir(p, args)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    # One compiled loop per network (traced once, see Learner.traces); TF's "retracing" warning counts
    # the many distinct loops, not retraces.
    tf.get_logger().setLevel("ERROR")
    cfg = make_config(args.quick, args.sets, args.methods, args.splits, args.seed)
    check_grid_sizes(cfg)
    if args.search_splits:
        cfg = cfg._replace(search_splits=min(args.search_splits, cfg.splits))
    if args.gap_features is not None:
        cfg = cfg._replace(gap_features=args.gap_features)
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

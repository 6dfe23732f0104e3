"""A pool-based active-learning loop on the Monte Carlo predictive.

Each round: (re)train the model on the labelled set, record a point of the
learning curve on the test set (labels, accuracy, NLL, ECE), then acquire
``k`` pool inputs with an acquisition function of
:mod:`bayesflip.decisions.acquisition` and reveal their labels (the oracle).

Retraining (``retrain``):

- ``"scratch"`` (default; Gal et al., 2017): ``build_model()`` is called every
  round and the new model is trained on all labels so far.
- ``"warm"``: the model is built once and each round continues training the
  previous round's weights on the grown labelled set (cheaper; the result
  depends on the order of the acquisitions).

Reproducibility and resuming: before building and training in round ``r`` the
loop calls ``keras.utils.set_random_seed(seed + 1000 r)`` (this resets Python's,
NumPy's and TensorFlow's global generators), and the acquisition of round ``r``
draws from ``numpy.random.default_rng([seed, r])``. Given ``state_path``, the
state is written (atomically) after every acquisition: a JSON file with the
configuration, the labelled pool indices in acquisition order and the learning
curve (``"rounds"``: ``round``, ``num_labels``, ``accuracy``, ``nll``, ``ece``,
``acquired``); with ``retrain="warm"`` also the model's weights beside it
(``<state_path>.weights.npz``). A loop started with an existing state file
continues after its last acquisition, so an interrupted run neither repeats
nor loses one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from bayesflip import calibration
from bayesflip._checks import check_int, check_positive_int
from bayesflip._typing import ArrayLike
from bayesflip.decisions.acquisition import ACQUISITIONS, select
from bayesflip.uncertainty import mc_predict

__all__ = ["ActiveLearningLoop"]

_STATE_VERSION = 1


class ActiveLearningLoop:
    """Pool-based active learning: train, evaluate, acquire ``k`` labels, repeat.

    Args:
        build_model: ``() -> keras.Model``, a fresh model in its initial state.
        fit_model: ``(model, x, y) -> Any``, trains the model on the labelled set
            (compiles it if needed).
        x_pool: pool inputs ``(N, ...)``.
        y_pool: the oracle: the labels of the pool ``(N,)``, revealed when acquired.
        initial_indices: pool indices labelled at the start (the seed set).
        x_test: test inputs of the learning curve.
        y_test: test labels ``(N_test,)``.
        acquisition: one of :data:`~bayesflip.decisions.acquisition.ACQUISITIONS`.
        k: inputs acquired per round, a positive int.
        retrain: ``"scratch"`` or ``"warm"`` (see the module docstring).
        num_samples: posterior draws of the MC predictive (acquisition and test).
        from_logits: whether the model outputs logits.
        seed: seed of the rounds (see the module docstring).
        num_configurations: BatchBALD's number of label configurations.
        state_path: JSON file of the loop's state; resumed from when it exists.
        verbose: 1 shows a ``keras.utils.Progbar`` over the rounds, 0 is silent.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 2)).astype("float32"); y = (x[:, 0] > 0).astype("int64")
    >>> def build():
    ...     m = keras.Sequential([keras.Input((2,)), DenseFlipout(2, seed=0, kl_weight=0.01)])
    ...     m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ...     return m
    >>> loop = ActiveLearningLoop(build, lambda m, x, y: m.fit(x, y, epochs=2, verbose=0),
    ...                           x, y, [0, 1, 2, 3], x, y, k=2, num_samples=4, verbose=0)
    >>> [r["num_labels"] for r in loop.run(max_labels=8)]
    [4, 6, 8]
    """

    def __init__(
        self,
        build_model: Callable[[], keras.Model],
        fit_model: Callable[[keras.Model, np.ndarray, np.ndarray], Any],
        x_pool: ArrayLike,
        y_pool: ArrayLike,
        initial_indices: ArrayLike,
        x_test: ArrayLike,
        y_test: ArrayLike,
        acquisition: str = "bald",
        k: int = 10,
        retrain: str = "scratch",
        num_samples: int = 20,
        from_logits: bool = True,
        seed: int = 0,
        num_configurations: int = 1000,
        state_path: str | os.PathLike | None = None,
        verbose: int = 1,
    ) -> None:
        fn = "ActiveLearningLoop"
        if acquisition not in ACQUISITIONS:
            raise ValueError(
                f"{fn}: unknown `acquisition` {acquisition!r}; expected one of {list(ACQUISITIONS)}."
            )
        if retrain not in ("scratch", "warm"):
            raise ValueError(f"{fn}: `retrain` must be 'scratch' or 'warm', got {retrain!r}.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{fn}: `k` must be a positive int, got {k!r}.")
        self.x_pool, self.y_pool = np.asarray(x_pool), np.asarray(y_pool).reshape(-1)
        self.x_test, self.y_test = np.asarray(x_test), np.asarray(y_test).reshape(-1)
        for name, xs, ys in (("pool", self.x_pool, self.y_pool), ("test", self.x_test, self.y_test)):
            if xs.ndim < 1 or xs.shape[0] == 0:
                raise ValueError(f"{fn}: the {name} set is empty (`x_{name}` has shape {xs.shape}).")
            if ys.shape[0] != xs.shape[0]:
                raise ValueError(
                    f"{fn}: `y_{name}` must have one label per input of `x_{name}` ({xs.shape[0]}), got {ys.shape[0]}."
                )
        initial = np.asarray(initial_indices).reshape(-1)
        if initial.size == 0 or not np.issubdtype(initial.dtype, np.integer):
            raise ValueError(
                f"{fn}: `initial_indices` must be a non-empty set of pool indices, got {initial_indices!r}."
            )
        if initial.min() < 0 or initial.max() >= len(self.x_pool) or np.unique(initial).size != initial.size:
            raise ValueError(f"{fn}: `initial_indices` must be distinct indices in [0, {len(self.x_pool)}).")
        if len(self.x_pool) - initial.size < k:
            raise ValueError(
                f"{fn}: the pool ({len(self.x_pool) - initial.size} unlabelled inputs) is smaller than `k` = {k}."
            )
        self.build_model, self.fit_model = build_model, fit_model
        self.acquisition, self.k, self.retrain = acquisition, int(k), retrain
        self.num_samples = check_positive_int(fn, "num_samples", num_samples)
        self.from_logits = bool(from_logits)
        self.seed = check_int(fn, "seed", seed)
        self.num_configurations = check_positive_int(fn, "num_configurations", num_configurations)
        self.state_path = None if state_path is None else os.fspath(state_path)
        self.verbose = verbose
        self.initial_indices = [int(i) for i in initial]
        self.labelled: list[int] = list(self.initial_indices)
        self.rounds: list[dict] = []
        self.model: keras.Model | None = None
        if self.state_path is not None and os.path.exists(self.state_path):
            self._load_state()

    # ------------------------------------------------------------------ state
    def _config(self) -> dict:
        return {
            "acquisition": self.acquisition,
            "k": self.k,
            "retrain": self.retrain,
            "num_samples": self.num_samples,
            "seed": self.seed,
            "initial_indices": self.initial_indices,
            "pool_size": len(self.x_pool),
        }

    def state(self) -> dict:
        """The loop's state as a JSON-serialisable dict (what :meth:`save` writes)."""
        return {
            "version": _STATE_VERSION,
            "config": self._config(),
            "labelled": self.labelled,
            "rounds": self.rounds,
        }

    def save(self, path: str | os.PathLike) -> None:
        """Write the state to a JSON file (atomically; the weights too with ``retrain="warm"``)."""
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        if self.retrain == "warm" and self.model is not None:
            tmp_w = path + ".weights.tmp.npz"
            np.savez(tmp_w, *self.model.get_weights())
            os.replace(tmp_w, path + ".weights.npz")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.state(), f)
        os.replace(tmp, path)

    def _load_state(self) -> None:
        fn = "ActiveLearningLoop"
        assert self.state_path is not None
        with open(self.state_path) as f:
            state = json.load(f)
        if state.get("config") != self._config():
            raise ValueError(
                f"{fn}: the state file {self.state_path!r} was written by a loop with another configuration "
                f"({state.get('config')}); this loop has {self._config()}."
            )
        self.labelled = [int(i) for i in state["labelled"]]
        self.rounds = list(state["rounds"])

    # ------------------------------------------------------------------ rounds
    def _train(self, r: int) -> keras.Model:
        keras.utils.set_random_seed(self.seed + 1000 * r)
        if self.model is None or self.retrain == "scratch":
            self.model = self.build_model()
            weights = None if self.state_path is None else self.state_path + ".weights.npz"
            if self.retrain == "warm" and r > 0 and weights is not None and os.path.exists(weights):
                with np.load(weights) as f:
                    self.model.set_weights([f[f"arr_{i}"] for i in range(len(f.files))])
        idx = np.asarray(self.labelled)
        self.fit_model(self.model, self.x_pool[idx], self.y_pool[idx])
        return self.model

    def _evaluate(self, model: keras.Model) -> dict:
        probs = mc_predict(model, self.x_test, self.num_samples, from_logits=self.from_logits)
        probs = np.asarray(probs, np.float64)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        return {
            "accuracy": float(np.mean(np.argmax(probs, -1) == self.y_test)),
            "nll": calibration.negative_log_likelihood(self.y_test, probs),
            "ece": calibration.expected_calibration_error(self.y_test, probs),
        }

    def _acquire(self, model: keras.Model, r: int, k: int) -> list[int]:
        unlabelled = np.setdiff1d(np.arange(len(self.x_pool)), np.asarray(self.labelled))
        rng = np.random.default_rng([self.seed, r])
        if self.acquisition == "random":
            picked = select("random", None, k, rng, pool_size=unlabelled.size)
        else:
            samples = mc_predict(
                model,
                self.x_pool[unlabelled],
                self.num_samples,
                return_samples=True,
                from_logits=self.from_logits,
            )
            samples = np.asarray(samples, np.float64)
            samples = samples / samples.sum(axis=-1, keepdims=True)
            picked = select(self.acquisition, samples, k, rng, num_configurations=self.num_configurations)
        return [int(i) for i in unlabelled[picked]]

    def run(self, max_labels: int | None = None, num_rounds: int | None = None) -> list[dict]:
        """Run rounds until ``max_labels`` labels are evaluated or ``num_rounds`` more rounds ran.

        Args:
            max_labels: the labelling budget (the last round trains and evaluates
                at this many labels and acquires nothing); default: the whole pool.
            num_rounds: at most this many rounds in this call (``None``: no limit).

        Returns:
            The learning curve so far: one dict per round (see the module docstring).
        """
        fn = "ActiveLearningLoop.run"
        budget = len(self.x_pool) if max_labels is None else check_positive_int(fn, "max_labels", max_labels)
        if budget > len(self.x_pool):
            raise ValueError(f"{fn}: `max_labels` ({budget}) exceeds the pool ({len(self.x_pool)} inputs).")
        limit = None if num_rounds is None else check_positive_int(fn, "num_rounds", num_rounds)
        total = len(self.rounds) + max(-(-(budget - len(self.labelled)) // self.k), 0) + 1
        bar = keras.utils.Progbar(total, verbose=1 if self.verbose else 0, unit_name="round")
        bar.update(len(self.rounds))
        done = 0
        while (limit is None or done < limit) and not (
            self.rounds and self.rounds[-1]["num_labels"] >= budget and not self.rounds[-1]["acquired"]
        ):
            r = len(self.rounds)
            model = self._train(r)
            record = {"round": r, "num_labels": len(self.labelled), **self._evaluate(model), "acquired": []}
            k = min(self.k, budget - len(self.labelled))
            if k > 0:
                record["acquired"] = self._acquire(model, r, k)
            self.rounds.append(record)
            self.labelled.extend(record["acquired"])
            if self.state_path is not None:
                self.save(self.state_path)
            done += 1
            bar.update(
                len(self.rounds), values=[("labels", record["num_labels"]), ("accuracy", record["accuracy"])]
            )
            if k <= 0:
                break
        return self.rounds

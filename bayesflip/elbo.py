"""ELBO helpers: KL weights, the model's KL, annealing and logging callbacks.

With every variational layer adding ``kl_weight · KL(q ‖ p)`` through
``add_loss`` and a per-example data loss (e.g. cross-entropy), ``model.fit``
minimizes the negative ELBO per training example when
``kl_weight = 1 / num_training_examples`` — set it with :func:`set_kl_weight`.
(The data term, the likelihood losses, is in :mod:`bayesflip.heads`.) Every name
is also exported by ``bayesflip`` itself; ``bayesflip.losses``, this module's
former name, still resolves them with a ``DeprecationWarning``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int, check_real
from bayesflip.inference import variational_layers
from bayesflip.layers._variational import check_kl_weight

__all__ = ["set_kl_weight", "get_kl_weight", "kl_divergence", "KLAnnealing", "ELBOTerms"]


def _layers_or_raise(model, caller: str):
    layers = variational_layers(model)
    if not layers:
        raise ValueError(f"{caller}: model '{model.name}' has no bayesflip variational layers.")
    return layers


def set_kl_weight(
    model: keras.layers.Layer,
    kl_weight: float | None = None,
    *,
    num_examples: int | None = None,
    temperature: float = 1.0,
) -> float:
    """Set the KL weight of every variational layer of ``model``.

    Give either ``kl_weight`` or ``num_examples``. With ``num_examples = N``
    the weight is ``temperature / N``: at ``temperature=1`` (default) the loss
    is the per-example negative ELBO and ``q`` approximates the Bayesian
    posterior ``p(W | D) ∝ p(D | W) p(W)``; a ``temperature`` ``T < 1`` gives
    the *tempered* ("cold") posterior ``∝ p(D | W)^{1/T} p(W)`` — the
    likelihood counted ``1/T`` times, a common remedy for the underfitting
    of mean-field posteriors on small data (Wenzel et al. 2020). Report which
    posterior you use.

    Args:
        model: a model or layer containing bayesflip variational layers.
        kl_weight: the weight itself (``>= 0``).
        num_examples: number of training examples ``N`` (positive int).
        temperature: posterior temperature ``T``, a finite number ``> 0``
            (``T < 1``: colder than Bayes); only with ``num_examples``.

    Returns:
        The weight that was set.

    Example:
    >>> import keras
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((3,)), DenseFlipout(2)])
    >>> set_kl_weight(m, num_examples=1000)
    0.001
    >>> set_kl_weight(m, num_examples=1000, temperature=0.1)
    0.0001
    """
    if (kl_weight is None) == (num_examples is None):
        raise ValueError("set_kl_weight: give exactly one of `kl_weight` or `num_examples`.")
    temperature = check_real("set_kl_weight", "temperature", temperature, low=0, what="a finite number > 0")
    if num_examples is not None:
        num_examples = check_positive_int("set_kl_weight", "num_examples", num_examples)
        kl_weight = temperature / num_examples
    elif temperature != 1.0:
        raise ValueError(
            "set_kl_weight: `temperature` goes with `num_examples` (weight = temperature / num_examples); "
            f"got kl_weight={kl_weight!r} and temperature={temperature!r}."
        )
    kl_weight = check_kl_weight("set_kl_weight", kl_weight)
    for layer in _layers_or_raise(model, "set_kl_weight"):
        layer.kl_weight = kl_weight
    return kl_weight


def get_kl_weight(model: keras.layers.Layer) -> float:
    """The KL weight of ``model``'s variational layers (error if they differ)."""
    weights = {layer.kl_weight for layer in _layers_or_raise(model, "get_kl_weight")}
    if len(weights) != 1:
        raise ValueError(
            f"get_kl_weight: layers of '{model.name}' have different KL weights {sorted(weights)}."
        )
    return weights.pop()


def kl_divergence(model: keras.layers.Layer) -> tf.Tensor:
    """Unweighted ``KL(q ‖ p)`` summed over all variational layers of ``model``.

    Analytic terms are exact; Monte Carlo terms use one fresh posterior draw
    (not advancing any layer's RNG state).
    """
    total = tf.constant(0.0, tf.float32)
    for i, layer in enumerate(_layers_or_raise(model, "kl_divergence")):
        total += layer.kl_divergence(seed=layer.fixed_seed(-2 - i))
    return total


class KLAnnealing(keras.callbacks.Callback):
    """Warm up the KL weight from ``start`` to ``target`` over ``warmup_epochs``.

    The weight at epoch ``e`` (0-based) is ``start + (target - start) ·
    min(1, (e + 1) / warmup_epochs)`` for ``schedule="linear"``, or a cosine ramp
    for ``schedule="cosine"``. The current weight is written to ``logs`` as
    ``kl_weight``.

    Args:
        target: final KL weight, e.g. ``1 / num_training_examples``.
        warmup_epochs: number of epochs to reach ``target`` (>= 1).
        start: initial weight (default 0).
        schedule: ``"linear"`` or ``"cosine"``.

    Example:
    >>> cb = KLAnnealing(target=1e-3, warmup_epochs=4)
    >>> [round(cb.weight_at(e), 6) for e in range(5)]
    [0.00025, 0.0005, 0.00075, 0.001, 0.001]
    """

    def __init__(self, target: float, warmup_epochs: int, start: float = 0.0, schedule: str = "linear"):
        super().__init__()
        self.target = check_kl_weight("KLAnnealing", target)
        self.start = check_kl_weight("KLAnnealing", start)
        warmup_epochs = check_positive_int("KLAnnealing", "warmup_epochs", warmup_epochs)
        if schedule not in ("linear", "cosine"):
            raise ValueError(f"KLAnnealing: `schedule` must be 'linear' or 'cosine', got {schedule!r}.")
        self.warmup_epochs = warmup_epochs
        self.schedule = schedule

    def weight_at(self, epoch: int) -> float:
        t = min(1.0, (epoch + 1) / self.warmup_epochs)
        if self.schedule == "cosine":
            t = 0.5 * (1.0 - math.cos(math.pi * t))
        return self.start + (self.target - self.start) * t

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        set_kl_weight(self.model, self.weight_at(epoch))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            logs["kl_weight"] = get_kl_weight(self.model)


class ELBOTerms(keras.callbacks.Callback):
    """Log the two ELBO terms separately in ``history`` and the progress bar.

    Keras reports ``loss`` = data term + the layers' KL terms. Compile the model
    with a metric of the data term named ``data_metric`` (e.g.
    ``keras.metrics.SparseCategoricalCrossentropy(name="nll")``); this callback
    adds ``kl = loss - nll`` (and ``val_kl``) — exact, since both are averages
    over the same examples — at no cost during training.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((4,)), DenseFlipout(3, kl_weight=0.01, seed=0)])
    >>> m.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...           metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="nll")])
    >>> h = m.fit(np.ones((8, 4)), np.zeros(8), epochs=1, verbose=0, callbacks=[ELBOTerms()])
    >>> sorted(h.history)
    ['kl', 'loss', 'nll']
    """

    def __init__(self, data_metric: str = "nll"):
        super().__init__()
        self.data_metric = data_metric
        self._checked = False

    def _add(self, logs, prefix=""):
        loss, data = logs.get(prefix + "loss"), logs.get(prefix + self.data_metric)
        if loss is None:
            return
        if data is None:
            raise ValueError(self._missing(prefix + self.data_metric, logs))
        logs[prefix + "kl"] = float(loss) - float(data)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._checked = False

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Fail at the first step, not after a whole epoch, when the data-term
        # metric is missing (Keras knows the metric names only once it has run).
        if self._checked or not logs or "loss" not in logs:
            return
        self._checked = True
        if self.data_metric not in logs:
            raise ValueError(self._missing(self.data_metric, logs))

    def _missing(self, key, logs):
        return (
            f"ELBOTerms: no '{key}' in the training logs {sorted(logs)}; compile the model with a "
            f"data-term metric named '{self.data_metric}', e.g. metrics=[keras.metrics."
            f"SparseCategoricalCrossentropy(from_logits=True, name='{self.data_metric}')] for a classifier "
            f"or keras.metrics.MeanMetricWrapper(loss_fn, name='{self.data_metric}') for any loss."
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None:
            self._add(logs)
            self._add(logs, "val_")

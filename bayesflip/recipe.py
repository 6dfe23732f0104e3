"""The recommended way to train a bayesflip model: one function for any Keras model.

:func:`fit_bayesian` compiles and trains a model whose variational layers add
their KL terms (any mix of bayesflip layers, ending in logits or in a
:mod:`bayesflip.heads` head) on the *tempered* per-example negative ELBO::

    loss = data NLL + (T / N) · KL(q ‖ p)

with the setting chosen on held-out NLL in ``benchmarks/ablation_defaults.py``
(digits, seeds 0–4; priors, init scale, ``T`` from 1 to 0.03, KL warm-up and
learning-rate schedule varied, the test split never used to choose; the latest
numbers, and how close the alternatives come, are in the project's main-job
documentation): the
tempered posterior ``T = 0.1`` (:data:`DEFAULT_TEMPERATURE`), a linear KL warm-up
over the first 10 epochs, Adam with its learning rate decayed to 0 by a cosine
schedule. ``T = 1`` is the Bayesian posterior; ``T < 1`` counts the likelihood
``1/T`` times (see :func:`bayesflip.set_kl_weight`). The temperature is a
modelling choice to make on held-out data, never on the test set:
:func:`select_temperature` fits one model per candidate and keeps the one with the
lowest held-out NLL of the Monte Carlo predictive (:func:`held_out_nll`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_int, check_positive_int, check_real
from bayesflip.elbo import ELBOTerms, KLAnnealing, set_kl_weight
from bayesflip.heads import Head
from bayesflip.posteriors import tile_for_components

__all__ = [
    "DEFAULT_TEMPERATURE",
    "DEFAULT_KL_WARMUP_EPOCHS",
    "DEFAULT_SCHEDULE",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_TEMPERATURES",
    "SCHEDULES",
    "fit_bayesian",
    "held_out_nll",
    "make_optimizer",
    "select_temperature",
    "TemperatureSelection",
]

#: Posterior temperature ``T`` of the recipe (``kl_weight = T / N``), chosen on the mean held-out NLL over
#: seeds 0–4 in ``benchmarks/ablation_defaults.py`` (1 is the Bayesian posterior).
DEFAULT_TEMPERATURE = 0.1
#: Epochs of the recipe's linear KL warm-up (the weight ramps from 0 to ``T / N``), chosen with ``T``.
DEFAULT_KL_WARMUP_EPOCHS = 10
#: Learning-rate schedule of the recipe: decayed to 0 over the run by a cosine, chosen with ``T``.
DEFAULT_SCHEDULE = "cosine"
#: Adam's (initial) learning rate of the recipe.
DEFAULT_LEARNING_RATE = 1e-2
#: Candidate temperatures of :func:`select_temperature`: the Bayesian posterior and two colder ones.
DEFAULT_TEMPERATURES = (1.0, 0.3, 0.1)
#: Learning-rate schedules :func:`make_optimizer` knows: ``"cosine"`` (decay to 0 over the run) or ``"constant"``.
SCHEDULES = ("cosine", "constant")


def make_optimizer(
    learning_rate: float = DEFAULT_LEARNING_RATE,
    schedule: str = DEFAULT_SCHEDULE,
    *,
    total_steps: int | None = None,
) -> keras.optimizers.Adam:
    """The recipe's optimizer: Adam, its learning rate constant or decayed to 0 by a cosine.

    Args:
        learning_rate: the (initial) learning rate, a finite number ``> 0``.
        schedule: ``"cosine"`` (``keras.optimizers.schedules.CosineDecay`` from
            ``learning_rate`` to 0 over ``total_steps``) or ``"constant"``.
        total_steps: optimizer steps of the whole run (``epochs × batches per
            epoch``); needed by ``"cosine"``.

    Returns:
        A ``keras.optimizers.Adam``.

    Example:
    >>> opt = make_optimizer(1e-2, "cosine", total_steps=100)
    >>> round(float(opt.learning_rate), 6)
    0.01
    >>> type(make_optimizer(1e-3, "constant")).__name__
    'Adam'
    """
    fn = "make_optimizer"
    learning_rate = check_real(fn, "learning_rate", learning_rate, low=0)
    if schedule not in SCHEDULES:
        raise ValueError(f"{fn}: `schedule` must be one of {SCHEDULES}, got {schedule!r}.")
    if schedule == "constant":
        return keras.optimizers.Adam(learning_rate)
    if total_steps is None:
        raise ValueError(f"{fn}: the 'cosine' schedule needs `total_steps` (epochs × batches per epoch).")
    total_steps = check_positive_int(fn, "total_steps", total_steps)
    return keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, total_steps))


def _num_examples(fn: str, x: Any, y: Any) -> int:
    leaves = tf.nest.flatten(x)
    if not leaves:
        raise ValueError(f"{fn}: `x` is empty.")
    sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else 0 for leaf in leaves}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(
            f"{fn}: `x` must be an array (or a structure of arrays) with one leading number of examples, "
            f"got first dimensions {sorted(sizes)}."
        )
    n = sizes.pop()
    if y is None:
        raise ValueError(
            f"{fn}: `y` is required when `x` is an array (it may be None only for a tf.data.Dataset)."
        )
    y_sizes = {int(np.shape(leaf)[0]) if np.ndim(leaf) else 0 for leaf in tf.nest.flatten(y)}
    if y_sizes != {n}:
        raise ValueError(f"{fn}: `x` has {n} examples but `y` has first dimension(s) {sorted(y_sizes)}.")
    return n


def _check_loss(fn: str, loss: Any) -> Any:
    if getattr(loss, "__func__", None) is Head.loss:
        raise TypeError(f"{fn}: `loss` is the method `head.loss`; pass the loss it returns, `head.loss()`.")
    if isinstance(loss, keras.losses.Loss) or (callable(loss) and not isinstance(loss, (str, type))):
        return loss
    raise TypeError(
        f"{fn}: `loss` must be a keras.losses.Loss instance or a callable (y_true, y_pred) -> per-example "
        f"loss, the data term's negative log-likelihood, e.g. keras.losses.SparseCategoricalCrossentropy("
        f"from_logits=True) or a bayesflip.heads head's `head.loss()`; got {loss!r}."
    )


def _per_example(loss: Any) -> Callable:
    """``loss`` without the batch reduction: ``(y_true, y_pred) -> (batch,)`` values."""
    if isinstance(loss, keras.losses.Loss):
        if loss.reduction in ("none", None):
            return loss
        try:
            return type(loss).from_config({**loss.get_config(), "reduction": "none"})
        except (TypeError, ValueError):  # a Loss that cannot be rebuilt from its config
            return loss.call  # the unreduced values (what Keras' Loss.__call__ reduces)
    return loss  # a Keras-style loss function already returns per-example values


def fit_bayesian(
    model: keras.Model,
    x: Any,
    y: Any = None,
    *,
    loss: Any,
    metrics: Sequence[Any] | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    kl_warmup_epochs: int = DEFAULT_KL_WARMUP_EPOCHS,
    schedule: str = DEFAULT_SCHEDULE,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    epochs: int = 60,
    batch_size: int = 64,
    validation_data: Any = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    tile_components: int = 1,
    num_examples: int | None = None,
    verbose: int = 0,
) -> keras.callbacks.History:
    """Compile and train ``model`` on the tempered per-example negative ELBO (the recipe).

    Sets every variational layer's ``kl_weight`` to ``temperature / N``
    (:func:`bayesflip.set_kl_weight`), compiles with :func:`make_optimizer`
    (Adam, cosine decay to 0 over ``epochs``), the data term ``loss`` and a
    metric ``nll`` of the same data term, and trains with
    :class:`~bayesflip.ELBOTerms` (``kl = loss − nll`` in the history) and, if
    ``kl_warmup_epochs > 0``, :class:`~bayesflip.KLAnnealing` (the weight ramps
    linearly from 0 to ``temperature / N`` over the first ``kl_warmup_epochs``
    epochs: ``(e + 1) / kl_warmup_epochs · T / N`` in epoch ``e``).

    Args:
        model: a Keras model with bayesflip variational layers.
        x: training inputs, an array (or a structure of arrays) with ``N``
            examples; or a batched ``tf.data.Dataset`` of ``(inputs, targets)``
            (then ``y`` is None, ``batch_size`` is unused and ``num_examples``
            is required).
        y: training targets (``N`` rows).
        loss: the data term, a negative log-likelihood per example: e.g.
            ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)`` for
            a classifier ending in logits, ``head.loss()`` for a model ending in a
            :mod:`bayesflip.heads` head.
        metrics: further metrics to compile (e.g. ``["accuracy"]``); the
            ``nll`` metric is always added.
        temperature: posterior temperature ``T > 0`` (1: the Bayesian
            posterior). Choose it on held-out data (:func:`select_temperature`).
        kl_warmup_epochs: epochs of linear KL warm-up (0: the full weight from
            the first step).
        schedule: learning-rate schedule, ``"cosine"`` or ``"constant"``.
        learning_rate: Adam's (initial) learning rate.
        epochs: training epochs (>= 1).
        batch_size: mini-batch size (>= 1) for array inputs.
        validation_data: passed to ``model.fit`` (its NLL and KL are logged
            as ``val_nll`` and ``val_kl``).
        callbacks: further Keras callbacks, run after the recipe's own.
        tile_components: ``K > 1`` repeats every example of a shuffled batch
            ``K`` times in a row (:func:`~bayesflip.posteriors.tile_for_components`),
            the training recipe of :class:`~bayesflip.posteriors.Rank1` layers
            with ``K`` components; 1 for every other model.
        num_examples: ``N`` of the KL weight; default the number of rows of
            ``x`` (required for a dataset).
        verbose: ``model.fit``'s verbosity.

    Returns:
        The Keras ``History`` (``loss``, ``nll``, ``kl``, ``kl_weight`` with a
        warm-up, the ``metrics``, and their ``val_`` versions).

    Example:
    >>> import keras, numpy as np, bayesflip
    >>> from bayesflip.layers import DenseFlipout
    >>> x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    >>> y = (x[:, 0] > 0).astype("int32")
    >>> model = keras.Sequential([keras.Input((4,)), DenseFlipout(8, activation="relu", seed=0),
    ...                           DenseFlipout(2, seed=1)])
    >>> h = fit_bayesian(model, x, y, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    ...                  epochs=3, kl_warmup_epochs=2, batch_size=16)
    >>> sorted(h.history)
    ['kl', 'kl_weight', 'loss', 'nll']
    >>> round(bayesflip.get_kl_weight(model) * 64, 6)  # T / N after the warm-up, T = 0.1
    0.1
    """
    fn = "fit_bayesian"
    if not isinstance(model, keras.Model):
        raise TypeError(f"fit_bayesian: `model` must be a keras.Model, got {type(model).__name__}.")
    loss = _check_loss(fn, loss)
    temperature = check_real(fn, "temperature", temperature, low=0)
    kl_warmup_epochs = check_int(fn, "kl_warmup_epochs", kl_warmup_epochs, minimum=0)
    epochs = check_positive_int(fn, "epochs", epochs)
    batch_size = check_positive_int(fn, "batch_size", batch_size)
    tile_components = check_positive_int(fn, "tile_components", tile_components)
    num_examples = check_positive_int(fn, "num_examples", num_examples, allow_none=True)
    if schedule not in SCHEDULES:
        raise ValueError(f"{fn}: `schedule` must be one of {SCHEDULES}, got {schedule!r}.")
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise ValueError(f"{fn}: give `y` only with array inputs; a dataset yields (inputs, targets).")
        if num_examples is None:
            raise ValueError(f"{fn}: a tf.data.Dataset `x` needs `num_examples` (N of the KL weight T / N).")
        steps = int(x.cardinality())
        if steps <= 0:
            raise ValueError(
                f"{fn}: the dataset's number of batches must be known and finite for the learning-rate "
                f"schedule, got cardinality {steps}; use dataset.apply(tf.data.experimental.assert_cardinality(n))."
            )
        n = num_examples
    else:
        n = _num_examples(fn, x, y)
        if num_examples is not None and num_examples != n:
            raise ValueError(f"{fn}: `num_examples` is {num_examples} but `x` has {n} examples.")
        steps = -(-n // batch_size)

    set_kl_weight(model, num_examples=n, temperature=temperature)
    model.compile(
        make_optimizer(learning_rate, schedule, total_steps=epochs * steps),
        loss,
        metrics=[keras.metrics.MeanMetricWrapper(_per_example(loss), name="nll"), *(metrics or ())],
    )
    recipe_callbacks: list[keras.callbacks.Callback] = [ELBOTerms()]
    if kl_warmup_epochs:
        recipe_callbacks.append(KLAnnealing(target=temperature / n, warmup_epochs=kl_warmup_epochs))
    all_callbacks = [*recipe_callbacks, *callbacks]
    fit = dict(epochs=epochs, verbose=verbose, callbacks=all_callbacks, validation_data=validation_data)
    if isinstance(x, tf.data.Dataset):
        data = tile_for_components(x, tile_components) if tile_components > 1 else x
        return model.fit(data, shuffle=False, **fit)  # a dataset is shuffled by its maker
    if tile_components > 1:
        data = tf.data.Dataset.from_tensor_slices((x, y))
        data = data.shuffle(n, seed=int(np.random.randint(2**31 - 1))).batch(batch_size)
        # shuffled above, before batching and tiling
        return model.fit(tile_for_components(data, tile_components), shuffle=False, **fit)
    return model.fit(x, y, batch_size=batch_size, **fit)


def held_out_nll(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    loss: Any,
    num_samples: int = 32,
) -> float:
    """Negative log-likelihood per example of the Monte Carlo predictive on ``(x, y)``.

    ``−(1/N) Σ_i log( (1/S) Σ_s exp(−ℓ(y_i, f_s(x_i))) )`` over ``S`` posterior
    draws ``f_s`` (one forward pass each, every variational layer drawing
    its own weights), where ``ℓ`` is the per-example ``loss`` — a negative
    log-likelihood, so ``exp(−ℓ)`` is the likelihood of a draw and the mean over
    draws the predictive's. For a classifier with
    ``SparseCategoricalCrossentropy(from_logits=True)`` this is the log loss of
    the MC-averaged softmax (:func:`bayesflip.uncertainty.mc_predict` with
    ``from_logits=True``); for a :mod:`bayesflip.heads` head's loss, the
    mixture's log density.

    Args:
        model: a trained Keras model.
        x: held-out inputs (arrays with ``N`` rows).
        y: held-out targets.
        loss: the per-example NLL the model was trained with (see
            :func:`fit_bayesian`).
        num_samples: posterior draws ``S`` (>= 1).

    Returns:
        The NLL in nats per example (a float).

    Example:
    >>> import keras, numpy as np
    >>> logits = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, kernel_initializer="zeros")])
    >>> nll = held_out_nll(logits, np.ones((4, 2)), np.array([0, 1, 2, 0]),
    ...                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), num_samples=2)
    >>> round(nll, 4) == round(float(np.log(3)), 4)
    True
    """
    fn = "held_out_nll"
    if not isinstance(model, keras.Model):
        raise TypeError(f"{fn}: `model` must be a keras.Model, got {type(model).__name__}.")
    loss = _per_example(_check_loss(fn, loss))
    num_samples = check_positive_int(fn, "num_samples", num_samples)
    n = _num_examples(fn, x, y)
    x = tf.nest.map_structure(lambda t: tf.convert_to_tensor(np.asarray(t), dtype_hint=tf.float32), x)
    forward = tf.function(lambda inputs: model(inputs, training=False))
    draws = []
    for _ in range(num_samples):
        per_example = np.asarray(loss(y, forward(x)), dtype=np.float64).reshape(n, -1).sum(-1)
        draws.append(-per_example)
    log_lik = np.stack(draws)  # (S, N): log-likelihood of each draw
    top = log_lik.max(0)
    log_predictive = top + np.log(np.mean(np.exp(log_lik - top), axis=0))
    return float(-np.mean(log_predictive))


class TemperatureSelection(NamedTuple):
    """What :func:`select_temperature` returns."""

    #: The temperature with the lowest held-out NLL.
    temperature: float
    #: The model trained at that temperature.
    model: keras.Model
    #: Its training ``History``.
    history: keras.callbacks.History
    #: Held-out NLL (nats per example) of every candidate, ``{temperature: nll}`` in the given order.
    held_out_nll: dict[float, float]
    #: Every trained model, ``{temperature: model}``.
    models: dict[float, keras.Model]


def select_temperature(
    build_model: Callable[[], keras.Model],
    x: Any,
    y: Any,
    x_val: Any,
    y_val: Any,
    *,
    loss: Any,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    num_samples: int = 32,
    seed: int | None = 0,
    **fit_kwargs: Any,
) -> TemperatureSelection:
    """Train one model per temperature with :func:`fit_bayesian`; keep the lowest held-out NLL.

    Every candidate starts from a fresh ``build_model()`` (after
    ``keras.utils.set_random_seed(seed)`` when ``seed`` is not None, so the
    candidates differ only in ``T``), is trained on ``(x, y)`` and scored by
    :func:`held_out_nll` on ``(x_val, y_val)`` — a split held out from the
    training data, never the test set. Ties go to the first candidate.

    Args:
        build_model: a function returning a new, untrained model.
        x: training inputs.
        y: training targets.
        x_val: held-out inputs (used to choose, not to train).
        y_val: held-out targets.
        loss: the data term (see :func:`fit_bayesian`).
        temperatures: candidate temperatures, finite numbers ``> 0``, at least one.
        num_samples: posterior draws of the held-out predictive (>= 1).
        seed: global seed set before building each candidate (None: not set).
        **fit_kwargs: further arguments of :func:`fit_bayesian` (``epochs``,
            ``batch_size``, ``kl_warmup_epochs``, ``metrics`` …).

    Returns:
        A :class:`TemperatureSelection`: ``temperature``, ``model``,
        ``history`` of the chosen candidate, ``held_out_nll`` of every
        candidate and every trained model in ``models``.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(96, 4)).astype("float32"); y = (x[:, 0] > 0).astype("int32")
    >>> build = lambda: keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=0)])
    >>> sel = select_temperature(build, x[:64], y[:64], x[64:], y[64:], temperatures=(1.0, 0.1),
    ...                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), epochs=2)
    >>> sel.temperature == min(sel.held_out_nll, key=sel.held_out_nll.get)
    True
    """
    fn = "select_temperature"
    if not callable(build_model) or isinstance(build_model, keras.Model):
        raise TypeError(
            f"{fn}: `build_model` must be a function returning a new model (one per temperature), "
            f"got {type(build_model).__name__}."
        )
    if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence) or not temperatures:
        raise ValueError(
            f"{fn}: `temperatures` must be a non-empty sequence of numbers > 0, got {temperatures!r}."
        )
    temperatures = [check_real(fn, "temperatures", t, low=0, what="numbers > 0") for t in temperatures]
    if len(set(temperatures)) != len(temperatures):
        raise ValueError(f"{fn}: `temperatures` has repeated values: {temperatures}.")
    if "temperature" in fit_kwargs:
        raise TypeError(f"{fn}: give candidates in `temperatures`, not `temperature`.")
    loss = _check_loss(fn, loss)
    num_samples = check_positive_int(fn, "num_samples", num_samples)
    if seed is not None:
        seed = check_int(fn, "seed", seed, minimum=0)
    _num_examples(fn, x_val, y_val)
    scores: dict[float, float] = {}
    models: dict[float, keras.Model] = {}
    histories: dict[float, keras.callbacks.History] = {}
    for t in temperatures:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        model = build_model()
        if not isinstance(model, keras.Model):
            raise TypeError(f"{fn}: `build_model()` must return a keras.Model, got {type(model).__name__}.")
        histories[t] = fit_bayesian(model, x, y, loss=loss, temperature=t, **fit_kwargs)
        scores[t] = held_out_nll(model, x_val, y_val, loss=loss, num_samples=num_samples)
        models[t] = model
        if not math.isfinite(scores[t]):
            raise ValueError(
                f"{fn}: the held-out NLL at temperature {t:g} is {scores[t]} (training diverged?)."
            )
    best = min(scores, key=lambda t: scores[t])
    return TemperatureSelection(best, models[best], histories[best], scores, models)

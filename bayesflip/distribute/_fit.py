"""The custom training loop :func:`fit` and its named steps (re-exported by ``bayesflip.distribute``)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip import _keras_compat
from bayesflip._checks import check_int, check_positive_int
from bayesflip.distribute._devices import is_chief
from bayesflip.distribute._loss import _per_example_loss_fn, compute_loss


def _clone_metric(metric, caller: str) -> keras.metrics.Metric:
    if isinstance(metric, str):
        fn = keras.metrics.get(metric)
        if isinstance(fn, keras.metrics.Metric):
            return fn
        return keras.metrics.MeanMetricWrapper(fn, name=metric)
    if isinstance(metric, keras.metrics.Metric):
        try:  # fresh variables, created under the current strategy scope
            return type(metric).from_config(metric.get_config())
        except (TypeError, ValueError, KeyError, NotImplementedError) as err:
            warnings.warn(
                f"{caller}: metric '{metric.name}' could not be rebuilt from its config ({err}); "
                "using the instance itself, whose variables must then live under the strategy's scope.",
                UserWarning,
                stacklevel=3,
            )
            return metric
    if callable(metric):
        return keras.metrics.MeanMetricWrapper(metric, name=getattr(metric, "__name__", "metric"))
    raise TypeError(
        f"{caller}: each metric must be a keras.metrics.Metric, a name or a callable, got {metric!r}."
    )


def _as_dataset(dataset, batch_size, caller: str) -> tf.data.Dataset:
    if isinstance(dataset, tf.data.Dataset):
        if batch_size is not None:
            raise ValueError(
                f"{caller}: `batch_size` is only for array inputs; batch the tf.data.Dataset yourself."
            )
        return dataset
    if isinstance(dataset, (tuple, list)) and len(dataset) in (2, 3):
        if batch_size is None:
            raise ValueError(f"{caller}: array inputs (x, y[, sample_weight]) need a `batch_size`.")
        arrays = tuple(np.asarray(a) for a in dataset)
        return tf.data.Dataset.from_tensor_slices(arrays).batch(batch_size)
    raise TypeError(
        f"{caller}: `dataset` must be a tf.data.Dataset of (x, y[, sample_weight]) batches "
        "or a tuple of arrays, "
        f"got {type(dataset).__name__}."
    )


def _check_model_in_scope(model, strategy, caller: str) -> None:
    if not model.built or not model.weights:
        raise ValueError(f"{caller}: model '{model.name}' must be built (e.g. start it with keras.Input).")
    if strategy.num_replicas_in_sync == 1 and not isinstance(strategy, tf.distribute.MirroredStrategy):
        return
    variable = model.weights[0].value  # the tf.Variable (a MirroredVariable in a strategy scope)
    if not strategy.extended.variable_created_in_scope(variable):
        raise ValueError(
            f"{caller}: the variables of model '{model.name}' were not created under `strategy.scope()`; "
            "build (and compile) the model inside `with strategy.scope():`."
        )


def _make_train_step(model, strategy, per_example, optimizer, trackers, user_metrics, jit_compile):
    """A ``tf.function(batch)`` running one distributed training step (used by :func:`fit`
    and ``benchmarks/bench_distribute.py``); ``trackers`` holds ``loss``/``nll``/``kl`` means."""
    caller = "bayesflip.distribute.fit"
    is_tpu = isinstance(strategy, tf.distribute.TPUStrategy)

    def replica_step(x, y, sample_weight):
        ctx = tf.distribute.get_replica_context()
        first = tf.nest.flatten(x)[0]
        local = tf.cast(tf.shape(first)[0], tf.float32)
        global_batch = ctx.all_reduce(tf.distribute.ReduceOp.SUM, local)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            values = per_example(y, tf.cast(y_pred, tf.float32))
            values = tf.cast(values, tf.float32)
            if values.shape.rank > 1:
                values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
            if sample_weight is not None:
                values = values * tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
            kl = tf.add_n([tf.cast(tf.reduce_sum(t), tf.float32) for t in model.losses] or [tf.zeros(())])
            total = compute_loss(values, [kl], global_batch_size=global_batch)
            scaled = optimizer.scale_loss(total)
        variables = model.trainable_variables
        grads = tape.gradient(scaled, variables)
        optimizer.apply_gradients(zip(grads, variables))
        local_nll = tf.reduce_sum(values) / local
        trackers["loss"].update_state(local_nll + kl, sample_weight=local)
        trackers["nll"].update_state(local_nll, sample_weight=local)
        trackers["kl"].update_state(kl, sample_weight=local)
        for metric in user_metrics:
            metric.update_state(y, y_pred, sample_weight=sample_weight)

    step_fn = tf.function(replica_step, jit_compile=True) if (jit_compile and not is_tpu) else replica_step

    @tf.function
    def train_step(batch):
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(f"{caller}: dataset elements must be (x, y) or (x, y, sample_weight) tuples.")
        x, y = batch[0], batch[1]
        sample_weight = batch[2] if len(batch) == 3 else None
        strategy.run(step_fn, args=(x, y, sample_weight))

    return train_step


# The steps of :func:`fit`, in the order it takes them.
def _resolve_strategy(
    model: keras.Model, strategy: tf.distribute.Strategy | None, jit_compile: bool, caller: str
) -> tf.distribute.Strategy:
    """The strategy to train under: the given one, else the model's, else the current one; checked."""
    model_strategy = _keras_compat.model_distribute_strategy(model)
    if strategy is None:
        strategy = model_strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            f"{caller}: `strategy` must be a tf.distribute.Strategy, got {type(strategy).__name__}."
        )
    if model_strategy is not None and model_strategy is not strategy:
        raise ValueError(
            f"{caller}: model '{model.name}' was created under {type(model_strategy).__name__}'s scope, "
            f"but `strategy` is another {type(strategy).__name__}; "
            "pass the strategy the model was built with."
        )
    replicas = strategy.num_replicas_in_sync
    is_tpu = isinstance(strategy, tf.distribute.TPUStrategy)
    if jit_compile and replicas > 1 and not is_tpu:
        raise ValueError(
            f"{caller}: `jit_compile=True` needs a single replica (or TPUStrategy, which always compiles); "
            f"got {type(strategy).__name__} with {replicas} replicas."
        )
    return strategy


@dataclasses.dataclass
class _TrainingState:
    """What :func:`fit` creates under the strategy's scope: optimizer, metrics, epoch counter."""

    optimizer: keras.optimizers.Optimizer
    trackers: dict[str, keras.metrics.Metric]  # "loss", "nll", "kl" means
    user_metrics: list[keras.metrics.Metric]
    epoch: tf.Variable  # epochs done, saved in checkpoints

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return list(self.trackers.values()) + self.user_metrics

    @property
    def names(self) -> list[str]:
        return list(self.trackers) + [m.name for m in self.user_metrics]

    def results(self) -> dict[str, float]:
        return {m.name: float(m.result()) for m in self.metrics}


def _training_state(
    model: keras.Model, strategy: tf.distribute.Strategy, optimizer: Any, metrics: Iterable[Any], caller: str
) -> _TrainingState:
    """Optimizer (built; loss-scaled under ``mixed_float16``), metrics and epoch variable in scope."""
    with strategy.scope():
        optimizer = optimizer if optimizer is not None else getattr(model, "optimizer", None)
        if optimizer is None:
            raise ValueError(f"{caller}: no `optimizer` given and the model is not compiled with one.")
        optimizer = keras.optimizers.get(optimizer)
        if keras.mixed_precision.global_policy().name == "mixed_float16" and not isinstance(
            optimizer, keras.optimizers.LossScaleOptimizer
        ):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
        trackers = {name: keras.metrics.Mean(name=name) for name in ("loss", "nll", "kl")}
        user_metrics = [_clone_metric(m, caller) for m in metrics]
        names = list(trackers) + [m.name for m in user_metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"{caller}: metric names must be unique (and not loss/nll/kl), got {names}.")
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    return _TrainingState(optimizer, trackers, user_metrics, epoch)


def _checkpoint_manager(
    checkpoint_dir: str | os.PathLike | None,
    model: keras.Model,
    state: _TrainingState,
    strategy: tf.distribute.Strategy,
    chief: bool,
    max_to_keep: int,
) -> tuple[tf.train.CheckpointManager | None, str | None]:
    """Restore the latest checkpoint if any; the manager saving there and a non-chief's temporary dir."""
    if checkpoint_dir is None:
        return None, None
    checkpoint_dir = os.fspath(checkpoint_dir)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=state.optimizer, epoch=state.epoch)
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest is not None:
        checkpoint.restore(latest).assert_existing_objects_matched()
    write_dir, temp_dir = checkpoint_dir, None
    if not chief:
        resolver = strategy.cluster_resolver
        temp_dir = write_dir = os.path.join(checkpoint_dir, f".{resolver.task_type}_{resolver.task_id}")
    return tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=max_to_keep), temp_dir


def _checked_callbacks(
    callbacks: Sequence[keras.callbacks.Callback], model: keras.Model, caller: str
) -> list[keras.callbacks.Callback]:
    """The callbacks as a list, each checked and given the model."""
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(
                f"{caller}: `callbacks` must be keras.callbacks.Callback objects, got {callback!r}."
            )
        callback.set_model(model)
    return callbacks


def _steps_target(dataset: tf.data.Dataset, steps_per_epoch: int | None) -> int | None:
    """Steps of one epoch for the progress bar (``None`` when unknown)."""
    target = steps_per_epoch
    cardinality = int(dataset.cardinality())
    if cardinality > 0:
        target = cardinality if target is None else min(target, cardinality)
    return target


def _run_epoch(
    train_step: Callable,
    distributed: Iterable,
    state: _TrainingState,
    epoch: int,
    epochs: int,
    target: int | None,
    steps_per_epoch: int | None,
    chief: bool,
    verbose: int,
) -> dict[str, float]:
    """One epoch of ``train_step`` over the distributed dataset; the epoch's metric values."""
    for m in state.metrics:
        m.reset_state()
    show = chief and verbose > 0
    if show:
        print(f"Epoch {epoch + 1}/{epochs}")
    bar = keras.utils.Progbar(target, verbose=verbose if show else 0, stateful_metrics=state.names)
    steps = 0
    for batch in distributed:
        train_step(batch)
        steps += 1
        if verbose == 1:  # every worker reads (a collective op), the chief prints
            bar.update(steps, values=list(state.results().items()), finalize=False)
        if steps_per_epoch is not None and steps >= steps_per_epoch:
            break
    logs = state.results()
    if show:
        bar.update(steps, values=list(logs.items()), finalize=True)
    return logs


def fit(
    model: keras.Model,
    dataset: tf.data.Dataset | tuple,
    epochs: int = 1,
    *,
    strategy: tf.distribute.Strategy | None = None,
    loss: keras.losses.Loss | str | Callable | None = None,
    optimizer: keras.optimizers.Optimizer | str | None = None,
    metrics: Iterable[Any] = (),
    batch_size: int | None = None,
    steps_per_epoch: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    max_to_keep: int = 1,
    jit_compile: bool = False,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, list[float]]:
    """Train ``model`` with a custom loop that works with any ``tf.distribute`` strategy.

    Each step runs ``model(x, training=True)`` on every replica, computes the
    replica's loss with :func:`compute_loss` (data term over the global batch,
    ``model.losses`` — the KL terms — divided by the number of replicas), and
    applies the all-reduced gradients. Under no strategy it takes exactly the
    steps ``model.fit`` takes (same loss, same draws, same updates).

    Args:
        model: a built Keras model; under a strategy it must be created in
            ``strategy.scope()``.
        dataset: a ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
            batches of the *global* batch size, or arrays ``(x, y[, w])`` with
            ``batch_size``. It is re-iterated every epoch (shuffle it with
            ``reshuffle_each_iteration`` if wanted).
        epochs: total number of epochs (a resumed run continues up to it).
        strategy: default the strategy whose scope the model was created in
            (else the current one).
        loss: default ``model.loss`` from ``compile``; evaluated per example.
        optimizer: default ``model.optimizer``; under the ``mixed_float16``
            policy it is wrapped in a ``LossScaleOptimizer``.
        metrics: ``keras.metrics.Metric`` objects, names or ``fn(y_true, y_pred)``,
            updated with ``(y, y_pred)``; fresh copies are made under the strategy.
        batch_size: only for array inputs.
        steps_per_epoch: stop each epoch after this many steps (default: the
            whole dataset).
        checkpoint_dir: when given, a ``tf.train.CheckpointManager`` saves
            model (RNG states included), optimizer and epoch at every epoch end
            there, and a later call resumes from the latest checkpoint.
            Non-chief workers write to a temporary sub-directory they delete.
        max_to_keep: checkpoints kept.
        jit_compile: compile each replica's step with XLA. Not supported with
            several replicas of ``MirroredStrategy``/``MultiWorkerMirroredStrategy``
            (their all-reduce runs outside XLA); ``TPUStrategy`` always compiles.
        verbose: 0 silent, 1 progress bar per step, 2 one line per epoch; only
            the chief prints.
        callbacks: Keras callbacks; their ``on_train_begin/end`` and
            ``on_epoch_begin/end`` hooks are called (e.g.
            :class:`bayesflip.KLAnnealing`), with the epoch's logs; keys they add
            to the logs appear in the history. Batch-level hooks are not called.

    Returns:
        History dict: ``{"loss": [...], "nll": [...], "kl": [...], <metric>: [...]}``
        with one value per epoch run (epochs restored from a checkpoint are not
        repeated). ``loss = nll + kl``; ``kl`` is the sum of ``model.losses``.

    Example:
    >>> import keras, numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> m = keras.Sequential([keras.Input((4,)), DenseFlipout(1, kl_weight=1 / 32, seed=0)])
    >>> x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    >>> h = fit(m, (x, x.sum(1, keepdims=True)), epochs=2, batch_size=8, loss="mse",
    ...         optimizer=keras.optimizers.Adam(0.05), verbose=0)
    >>> sorted(h), len(h["loss"]), h["loss"][1] < h["loss"][0]
    (['kl', 'loss', 'nll'], 2, True)
    """
    caller = "bayesflip.distribute.fit"
    if not isinstance(model, keras.Model):
        raise TypeError(f"{caller}: `model` must be a keras.Model, got {type(model).__name__}.")
    epochs = check_int(caller, "epochs", epochs, minimum=0)
    max_to_keep = check_int(caller, "max_to_keep", max_to_keep, minimum=1)
    steps_per_epoch = check_positive_int(caller, "steps_per_epoch", steps_per_epoch, allow_none=True)
    if verbose not in (0, 1, 2):
        raise ValueError(f"{caller}: `verbose` must be 0, 1 or 2, got {verbose!r}.")
    strategy = _resolve_strategy(model, strategy, jit_compile, caller)
    _check_model_in_scope(model, strategy, caller)
    dataset = _as_dataset(dataset, batch_size, caller)
    per_example = _per_example_loss_fn(loss if loss is not None else getattr(model, "loss", None), caller)
    chief = is_chief(strategy)
    state = _training_state(model, strategy, optimizer, metrics, caller)
    manager, temp_dir = _checkpoint_manager(checkpoint_dir, model, state, strategy, chief, max_to_keep)
    train_step = _make_train_step(
        model, strategy, per_example, state.optimizer, state.trackers, state.user_metrics, jit_compile
    )
    distributed = strategy.experimental_distribute_dataset(dataset)
    history: dict[str, list[float]] = {name: [] for name in state.names}
    callbacks = _checked_callbacks(callbacks, model, caller)
    start = int(state.epoch.numpy())
    target = _steps_target(dataset, steps_per_epoch)
    for callback in callbacks:
        callback.on_train_begin()
    try:
        for epoch in range(start, epochs):
            for callback in callbacks:
                callback.on_epoch_begin(epoch)
            logs = _run_epoch(
                train_step, distributed, state, epoch, epochs, target, steps_per_epoch, chief, verbose
            )
            for callback in callbacks:  # one shared dict: keys they add reach the history
                callback.on_epoch_end(epoch, logs)
            for name, value in logs.items():
                history.setdefault(name, []).append(float(value))
            state.epoch.assign(epoch + 1)
            if manager is not None:
                manager.save(checkpoint_number=epoch + 1)
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
    for callback in callbacks:
        callback.on_train_end()
    return history

"""The replica's share of the negative ELBO, and per-example losses from Keras losses
(re-exported by ``bayesflip.distribute``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from bayesflip.distribute._devices import _num_replicas


def compute_loss(
    per_example_loss: tf.Tensor,
    model_losses: keras.layers.Layer | Sequence[tf.Tensor] = (),
    *,
    global_batch_size: int | tf.Tensor | None = None,
    sample_weight: tf.Tensor | None = None,
) -> tf.Tensor:
    """This replica's share of the per-example negative ELBO (call inside ``strategy.run``).

    ``sum_i w_i · nll_i / global_batch_size + sum(model_losses) / num_replicas``

    where ``model_losses`` are the layers' ``kl_weight · KL`` terms (``model.losses``).
    Gradients of the replicas are summed by the optimizer, so the total is
    ``mean NLL over the global batch + KL`` with the KL counted once — the
    negative ELBO per example when ``kl_weight = 1 / num_training_examples``.
    Outside ``tf.distribute`` it is simply ``mean(nll) + KL``.

    Args:
        per_example_loss: ``(local_batch,)`` or ``(local_batch, ...)`` data term;
            extra axes are averaged.
        model_losses: a Keras model/layer (its ``.losses`` after the forward
            pass) or a list of scalar tensors.
        global_batch_size: number of examples in the step over all replicas;
            default ``local_batch × num_replicas`` (exact for evenly split batches).
        sample_weight: optional ``(local_batch,)`` weights of the data term.

    Returns:
        A float32 scalar tensor.

    Example:
    >>> nll = tf.constant([1.0, 2.0, 3.0, 6.0])
    >>> float(compute_loss(nll, [tf.constant(0.5)]))  # mean 3.0 + KL 0.5
    3.5
    """
    if not tf.is_tensor(per_example_loss):
        per_example_loss = tf.convert_to_tensor(per_example_loss)
    if per_example_loss.shape.rank == 0:
        raise ValueError(
            "compute_loss: `per_example_loss` must have a batch axis (shape (batch, ...)), got a scalar; "
            "use a loss with reduction='none'."
        )
    values = tf.cast(per_example_loss, tf.float32)
    if values.shape.rank > 1:
        values = tf.reduce_mean(values, axis=list(range(1, values.shape.rank)))
    if sample_weight is not None:
        values = values * tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
    replicas = _num_replicas()
    if global_batch_size is None:
        global_batch_size = tf.cast(tf.shape(values)[0] * replicas, tf.float32)
    nll = tf.reduce_sum(values) / tf.cast(global_batch_size, tf.float32)
    if isinstance(model_losses, keras.layers.Layer):
        model_losses = model_losses.losses
    reg = tf.constant(0.0, tf.float32)
    for term in model_losses:
        reg += tf.reduce_sum(tf.cast(term, tf.float32))
    return nll + reg / replicas


def _per_example_loss_fn(loss, caller: str) -> Callable:
    if loss is None:
        raise ValueError(f"{caller}: no `loss` given and the model is not compiled with one.")
    if isinstance(loss, str):
        loss = keras.losses.get(loss)
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        if "reduction" in config:
            config["reduction"] = None
            return type(loss).from_config(config)
        return loss.call
    if callable(loss):
        return loss
    raise TypeError(f"{caller}: `loss` must be a keras.losses.Loss, a loss name or a callable, got {loss!r}.")

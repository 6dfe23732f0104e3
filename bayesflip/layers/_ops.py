"""Linear ops shared by the layers (each layer hands its op to the variational core)."""

from __future__ import annotations

import tensorflow as tf

__all__ = ["matmul"]


def matmul(x: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
    """``x @ w`` over the last axis of ``x`` (a plain matmul for rank 2, a tensordot above)."""
    if x.shape.rank == 2:
        return tf.matmul(x, w)
    return tf.tensordot(x, w, axes=[[x.shape.rank - 1], [0]])

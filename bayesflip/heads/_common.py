"""Private helpers shared by the losses and the heads of :mod:`bayesflip.heads`."""

from __future__ import annotations

import tensorflow as tf

#: Keras serialization package of every head and loss (registered names ``bayesflip>Name``).
_PACKAGE = "bayesflip"


def _shape(t) -> tuple:
    return tuple(tf.TensorShape(t.shape).as_list())

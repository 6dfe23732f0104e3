"""Seeds and random draws for variational layers.

Every variational layer keeps its random-number state in a saved, non-trainable
``int64`` variable of shape ``(2,)``: ``[seed, counter]``. Each forward pass reads
the state, advances the counter by one, and derives all its draws from the read
value with TensorFlow's *stateless* (counter-based Philox) random ops. Hence:

- same seed => same sequence of draws, in eager, ``tf.function`` and XLA alike;
- the state is part of ``layer.weights``, so checkpoints and ``.keras`` files
  carry it and a restored model continues the same random stream (Keras'
  ``SeedGenerator`` state is *not* saved in ``.keras`` files);
- under ``tf.distribute`` the replica id (and the worker's task id) is folded
  into the draw so that replicas perturb independently while every replica keeps
  the same, synchronised state.
"""

from __future__ import annotations

import contextlib
import random as _py_random
import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import overload

import keras
import numpy as np
import tensorflow as tf

from bayesflip import _keras_compat

__all__ = [
    "initial_state",
    "next_seed",
    "next_seed_and_counter",
    "read_and_advance",
    "split_seed",
    "fold_in_replica",
    "rademacher",
    "rademacher_rows",
    "standard_normal",
]

# Bit positions used to expand one 32-bit word into 32 independent signs.
# A NumPy constant, not a tf.Tensor: creating a tensor at import time would
# initialize TF's devices and forbid splitting the CPU into logical devices.
_SIGN_SHIFTS = np.arange(32, dtype=np.int32)


def resolve_seed(seed: int | None, caller: str | None = None) -> int:
    """Return ``seed`` validated, or a fresh random 31-bit seed when ``None``.

    Errors name ``caller`` (e.g. ``"DenseFlipout 'dense'"``; default ``"resolve_seed"``).
    """
    if seed is None:
        return _py_random.SystemRandom().randrange(2**31)
    who = caller or "resolve_seed"
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{who}: `seed` must be an int or None, got {seed!r} of type {type(seed).__name__}.")
    if seed < 0:
        raise ValueError(f"{who}: `seed` must be a non-negative int, got {seed}.")
    return int(seed)


def initial_state(seed: int) -> list[int]:
    """The initial ``[seed, counter]`` state for a layer seeded with ``seed``."""
    return [int(seed), 0]


def add_state_variable(layer: keras.layers.Layer, seed: int) -> keras.Variable:
    """Create the saved RNG-state variable of ``layer`` (call from ``build``).

    Under ``tf.distribute`` the variable is *sync-on-read* with aggregation
    ``only_first_replica``: every replica advances its own copy by the same
    amount (so the copies stay equal) without a cross-replica ``merge_call``,
    and reads in cross-replica context, checkpoints and ``.keras`` files see the
    first replica's copy. A sync-on-write variable would need a ``merge_call``
    in every forward pass, which makes ``MirroredStrategy`` interleave the
    replica threads inside the forward pass; Keras' per-layer ``losses`` list is
    shared by those threads, so ``model.losses`` would then mix the KL terms of
    both replicas (measured: 3 and 4 terms instead of 2 with Keras 3.15).
    """
    with keras.name_scope(layer.name, caller=layer):
        variable = keras.Variable(
            initializer=keras.initializers.Constant(initial_state(seed)),
            shape=(2,),
            dtype="int64",
            trainable=False,
            aggregation="only_first_replica",
            synchronization="on_read",
            name="rng_state",
        )
    _keras_compat.track_variable(layer, variable)
    return variable


# The counter step of one read-and-advance (a NumPy constant: see _SIGN_SHIFTS).
_COUNTER_STEP = np.array([0, 1], dtype=np.int64)


def _tf_variable(state) -> tf.Variable:
    """The ``tf.Variable`` behind a ``keras.Variable`` (or ``state`` itself)."""
    variable = state.value if isinstance(state, keras.Variable) else state
    if isinstance(variable, tf.distribute.DistributedValues):
        # In a replica context: this replica's own copy of the sync-on-read state
        # (each replica advances its copy; see add_state_variable).
        variable = _keras_compat.replica_local_variable(variable)
    return variable


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _read_and_advance_op(variable: tf.Variable) -> tf.Tensor:
    # One XLA launch: the XLA kernel holds the variable's lock from the read to
    # the write-back, so the read and the increment form one atomic op (no two
    # callers read the same counter, no increment is lost). Inside an outer
    # XLA computation this function is inlined and the outer launch holds the lock.
    seed = variable.read_value()
    variable.assign_add(tf.constant(_COUNTER_STEP))
    return seed


def read_and_advance(state: keras.Variable | tf.Variable) -> tf.Tensor:
    """Atomically read ``state`` (``[seed, counter]``) and add 1 to its counter.

    Returns the value read (int64, shape ``(2,)``). The read and the increment
    are one op: concurrent callers (Python threads calling one model, a server's
    request threads, concurrent ``tf.function`` executions) each get their own
    counter and no increment is lost. A plain ``read`` then ``assign_add`` is
    not atomic (and Keras' ``Variable.assign_add`` is itself a read followed by
    an assign): measured with six threads on one flipout model, 8 of 270 draws
    repeated another's and the counter lost 6 to 19 increments.

    TensorFlow's own atomic read-and-skip, ``RngReadAndSkip`` (the op behind
    ``tf.random.Generator``), needs a 3-element Philox state, while the saved
    layer state is ``[seed, counter]``; so the read and the increment are
    compiled into one XLA launch instead, which holds the variable's lock for
    its whole execution (TensorFlow's pip builds ship the XLA CPU/GPU JIT).
    Exported serving graphs (:func:`bayesflip.export`) use ``RngReadAndSkip``
    on their own 3-element state.

    Args:
        state: the layer's ``rng_state`` (a ``keras.Variable`` or ``tf.Variable``,
            int64, shape ``(2,)``).

    Returns:
        The ``[seed, counter]`` value before the increment.

    Example:
    >>> v = tf.Variable([5, 0], dtype=tf.int64)
    >>> read_and_advance(v).numpy().tolist(), v.numpy().tolist()
    ([5, 0], [5, 1])
    """
    return _read_and_advance_op(_tf_variable(state))


_OFFSETS = threading.local()


@contextlib.contextmanager
def counter_offset(offset: int | tf.Tensor) -> Iterator[None]:
    """Inside this context, layers draw at ``[seed, counter + offset]`` and leave their state alone.

    Used to trace serving graphs (:func:`bayesflip.export`): there the layers'
    states are read-only, and each call's draws are addressed by an ``offset``
    derived from the serving graph's own atomically advanced counter, so the
    ``k``-th draw of an exported model equals the ``k``-th draw the model would
    have made in Python. Thread-local: it only affects the tracing thread.

    Args:
        offset: int64 scalar (tensor or int) added to every layer's counter.
    """
    previous = getattr(_OFFSETS, "value", None)
    _OFFSETS.value = tf.cast(offset, tf.int64)
    try:
        yield
    finally:
        _OFFSETS.value = previous


def next_seed(state: keras.Variable) -> tf.Tensor:
    """Read ``state`` and advance its counter, atomically; returns the read value (int64, (2,)).

    The returned seed already has the replica id folded in when called inside a
    ``tf.distribute`` replica context (see :func:`fold_in_replica`). See
    :func:`read_and_advance` for the atomicity. Inside ``counter_offset``
    the state is only read and the offset added to its counter.
    """
    return next_seed_and_counter(state)[0]


def next_seed_and_counter(state: keras.Variable) -> tuple[tf.Tensor, tf.Tensor]:
    """:func:`next_seed`, and the call's counter as read (int64 scalar, before the replica fold).

    The counter is the number of calls the state has served (plus the
    ``counter_offset``): the layers of a model advance it in step, once per
    forward pass each, so it can address per-call choices that every layer of
    the pass must agree on (the mixture component of a rank-1 posterior).
    """
    offset = getattr(_OFFSETS, "value", None)
    if offset is not None:
        current = tf.convert_to_tensor(_tf_variable(state).read_value())
        current = current + tf.stack([tf.constant(0, tf.int64), offset])
    else:
        current = read_and_advance(state)
    return fold_in_replica(current), current[1]


def _replica_index() -> int | tf.Tensor:
    """This replica's index, unique across all workers (0 outside ``tf.distribute``).

    Returns the Python int ``0`` when there is nothing to fold in (no strategy,
    cross-replica context, or a single replica in sync), otherwise the int32
    tensor ``replica_id_in_sync_group``, which is already global (unique across
    workers) for ``MirroredStrategy``, ``MultiWorkerMirroredStrategy`` and
    ``TPUStrategy`` (tested for the first two in ``tests/distribute``).
    """
    if not tf.distribute.has_strategy():
        return 0
    if tf.distribute.in_cross_replica_context():
        return 0
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return 0
    return ctx.replica_id_in_sync_group


def fold_in_replica(seed: tf.Tensor) -> tf.Tensor:
    """Fold the current replica's global index into a stateless ``seed``.

    Replica 0 keeps ``seed`` unchanged and replica ``k > 0`` gets
    ``stateless_fold_in(seed, k)``: replicas perturb independently, while a
    single-device run and replica 0 of a distributed run draw identically and
    everything stays a pure function of the layer's seed and step counter.

    Args:
        seed: int tensor of shape ``(2,)`` (int32 or int64).

    Returns:
        A seed tensor of the same shape and dtype.

    Example:
    >>> s = tf.constant([7, 0], tf.int64)
    >>> fold_in_replica(s).numpy().tolist()  # no strategy: unchanged
    [7, 0]
    """
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        raise TypeError(
            f"fold_in_replica: `seed` must be an int32/int64 tensor, got dtype {seed.dtype.name}."
        )
    index = _replica_index()
    if isinstance(index, int) and index == 0:
        return seed
    index = tf.cast(index, tf.int32)
    folded = tf.cast(tf.random.experimental.stateless_fold_in(seed, index, alg="philox"), seed.dtype)
    return tf.where(index > 0, folded, seed)


# Every draw goes through Philox's raw ops with the key and counter that
# ``tf.random``'s ``alg="philox"`` functions derive from a seed (one Philox draw
# under a fixed key, TensorFlow's private ``_philox_scramble_seed``, listed in
# ``bayesflip/_keras_compat.py``), computed with 7
# graph ops instead of ~15: building those ops in Python was the bulk of a
# bayesflip layer's tracing time. The numbers are bit-identical to
# ``tf.random.stateless_*(..., alg="philox")``, eagerly and under XLA
# (tests/test_random.py). (``tf.raw_ops.StatelessRandomGetKeyCounter`` is one op
# but drops the seed's high 32 bits under XLA.)
_PHILOX = 1  # tf.random.Algorithm.PHILOX
_SCRAMBLE_KEY = _keras_compat.PHILOX_SCRAMBLE_KEY


# Python constants of the draws (shapes, Philox's scramble key, bit masks), one
# tensor per graph under construction: rebuilt per draw they were a quarter of
# the ops of a flipout LeNet-5's training graph (258 of 1,034), and building
# ops in Python is what tracing costs.
_GRAPH_CONSTANTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _const(value, dtype: tf.DType) -> tf.Tensor:
    """``tf.constant(value, dtype)``, created once per graph being built (not cached eagerly)."""
    if tf.executing_eagerly():
        return tf.constant(value, dtype)
    graph = tf.compat.v1.get_default_graph()
    cache = _GRAPH_CONSTANTS.setdefault(graph, {})
    key = (repr(value), dtype.name)
    tensor = cache.get(key)
    if tensor is None:
        with tf.control_dependencies(None):  # shared by every op of the graph: no control inputs
            tensor = cache[key] = tf.constant(value, dtype)
    return tensor


def _key_counter(seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    mix = tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=_const([2], tf.int32),
        key=_const([_SCRAMBLE_KEY], tf.uint64),
        counter=tf.cast(seed, tf.uint64),
        alg=_const(_PHILOX, tf.int32),
        dtype=tf.uint64,
    )
    key, high = tf.raw_ops.Split(axis=_const(0, tf.int32), value=mix, num_split=2)
    return key, tf.pad(high, _const([[1, 0]], tf.int32))  # counter = [0, high]


def _full_int(shape, seed: tf.Tensor, dtype) -> tf.Tensor:
    """Uniform integers over ``dtype``'s whole range (``stateless_uniform`` with ``minval=maxval=None``)."""
    key, counter = _key_counter(seed)
    return tf.raw_ops.StatelessRandomUniformFullIntV2(
        shape=shape, key=key, counter=counter, alg=_const(_PHILOX, tf.int32), dtype=dtype
    )


def split_seed(seed: tf.Tensor, num: int) -> list[tf.Tensor]:
    """Derive ``num`` independent seeds from one (``tf.random.experimental.stateless_split``, fewer ops)."""
    seed = tf.convert_to_tensor(seed)
    seeds = _full_int(_const([num, 2], tf.int32), seed, seed.dtype)
    return tf.unstack(seeds, num=num)


def standard_normal(
    shape: Sequence[int] | tf.Tensor, seed: tf.Tensor, dtype: str | tf.DType = "float32"
) -> tf.Tensor:
    """Independent N(0, 1) draws of ``shape`` from a stateless seed (as ``tf.random.stateless_normal``)."""
    key, counter = _key_counter(seed)
    if isinstance(shape, (list, tuple)) and all(isinstance(d, int) for d in shape):
        shape = _const(list(shape), tf.int32)
    return tf.raw_ops.StatelessRandomNormalV2(
        shape=shape, key=key, counter=counter, alg=_const(_PHILOX, tf.int32), dtype=tf.as_dtype(dtype)
    )


def _word_signs(
    bits: tf.Tensor, words: int | tf.Tensor, width: int | tf.Tensor, dtype: str | tf.DType
) -> tf.Tensor:
    """Rows of int32 words ``(rows, words)`` as ``(rows, width)`` signs, exactly ``-1`` or ``+1``.

    The one expansion of random words into signs (:func:`rademacher`, :func:`rademacher_rows`).

    Bit ``k`` of a word is sign ``k`` (set: ``-1``): each bit is shifted into the sign
    position, the rest given the bit pattern of ``1.0f``, so the signs come from two
    integer passes and a bitcast (cheaper than compare + select). ``width`` (at most
    ``32 * words``) is static for the layers' rows (no slice when it is a multiple of 32).
    """
    bits = tf.raw_ops.ExpandDims(input=bits, axis=_const(-1, tf.int32))
    spread = tf.bitwise.left_shift(bits, _const(_SIGN_SHIFTS, tf.int32))
    if isinstance(words, int) and isinstance(width, int):
        signs = tf.reshape(spread, _const([-1, 32 * words], tf.int32))
        if 32 * words != width:
            signs = tf.slice(signs, _const([0, 0], tf.int32), _const([-1, width], tf.int32))
    else:
        signs = tf.reshape(spread, [tf.shape(bits)[0], -1])[:, :width]
    sign_bit = tf.bitwise.bitwise_and(signs, _const(-(2**31), tf.int32))
    ones = tf.bitcast(tf.bitwise.bitwise_or(sign_bit, _const(0x3F800000, tf.int32)), tf.float32)
    return ones if tf.as_dtype(dtype) == tf.float32 else tf.cast(ones, dtype)


def rademacher(
    shape: Sequence[int] | tf.Tensor, seed: tf.Tensor, dtype: str | tf.DType = "float32"
) -> tf.Tensor:
    """Independent random signs in ``{-1, +1}`` (exactly) of ``shape``.

    One Philox word yields 32 signs, which makes this several times cheaper than
    drawing one integer per sign.

    Args:
        shape: static or dynamic shape (list of ints/scalars or 1-D tensor).
        seed: int tensor of shape ``(2,)``.
        dtype: float dtype of the result.

    Returns:
        A tensor of ``shape`` with entries exactly ``-1`` or ``+1``.

    Example:
    >>> s = rademacher([4, 3], tf.constant([1, 2], tf.int64))
    >>> sorted(set(s.numpy().ravel().tolist())) in ([-1.0, 1.0], [-1.0], [1.0])
    True
    """
    shape = tf.convert_to_tensor(shape, dtype=tf.int32)
    size = tf.reduce_prod(shape)
    words = (size + 31) // 32
    bits = _full_int(tf.stack([1, words]), seed, tf.int32)
    return tf.reshape(_word_signs(bits, words, size, dtype), shape)


def rademacher_rows(
    batch: int | tf.Tensor, widths: list[int], seed: tf.Tensor, dtype: str | tf.DType = "float32"
) -> list[tf.Tensor]:
    """Random signs ``(batch, w)`` for each ``w`` in ``widths``.

    The flipout signs of a layer: one row per example. Each output comes from
    one ``(batch, ceil(w / 32))`` Philox draw, 32 signs per word; widths are
    static so only the batch size is dynamic (few graph ops and no copies on
    the hot path when ``w`` is a multiple of 32).

    Args:
        batch: batch size (int or scalar tensor).
        widths: static positive ints, the number of signs per row of each output.
        seed: int tensor of shape ``(2,)``.
        dtype: float dtype of the results.

    Returns:
        A list of tensors ``(batch, w)`` with entries exactly ``-1`` or ``+1``.

    Example:
    >>> a, b = rademacher_rows(3, [5, 40], tf.constant([1, 2], tf.int64))
    >>> a.shape, b.shape
    (TensorShape([3, 5]), TensorShape([3, 40]))
    """
    seeds = split_seed(seed, len(widths))
    batch = tf.cast(batch, tf.int32)
    out = []
    for i, width in enumerate(widths):
        width = int(width)
        words = (width + 31) // 32
        bits = _full_int(tf.stack([batch, _const(words, tf.int32)]), seeds[i], tf.int32)
        out.append(_word_signs(bits, words, width, dtype))
    return out


@overload
def softplus_inverse(x: float) -> float: ...
@overload
def softplus_inverse(x: np.ndarray) -> np.ndarray: ...


def softplus_inverse(x: float | np.ndarray) -> float | np.ndarray:
    """Inverse of softplus, ``log(exp(x) - 1)``, for a positive float or a NumPy array of them.

    Computed as ``x + log(-expm1(-x))`` in float64: stable for large and small ``x``.

    Example:
    >>> round(softplus_inverse(float(np.log(2.0))), 12)
    0.0
    """
    a = np.asarray(x, dtype=np.float64)
    if not np.all(a > 0):
        raise ValueError(f"softplus_inverse expects positive values, got {x}.")
    out = a + np.log(-np.expm1(-a))
    return float(out) if out.ndim == 0 and not isinstance(x, np.ndarray) else out

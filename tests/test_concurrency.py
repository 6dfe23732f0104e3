"""Concurrent calls of one model must not share posterior draws (atomic RNG read-and-advance)."""

import collections
import threading

import keras
import numpy as np
import tensorflow as tf

from bayesflip import random as rnd
from bayesflip import uncertainty
from bayesflip.layers import DenseFlipout

THREADS = 6


def _run_threads(work, n=THREADS):
    errors = []

    def wrapped(i):
        try:
            work(i)
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=wrapped, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_read_and_advance_is_atomic_under_threads_in_graphs():
    state = keras.Variable([3, 0], dtype="int64", trainable=False)

    @tf.function
    def four_reads():
        return tf.stack([rnd.read_and_advance(state) for _ in range(4)])

    four_reads()
    state.assign([3, 0])
    seen, lock = [], threading.Lock()
    calls = 150

    def work(_):
        mine = []
        for _ in range(calls):
            mine.extend(four_reads().numpy()[:, 1].tolist())
        with lock:
            seen.extend(mine)

    _run_threads(work)
    total = THREADS * calls * 4
    assert sorted(seen) == list(range(total))  # every counter exactly once
    assert state.numpy().tolist() == [3, total]  # no lost increment


def test_read_and_advance_eager_single_thread_semantics():
    v = tf.Variable([9, 4], dtype=tf.int64)
    assert rnd.read_and_advance(v).numpy().tolist() == [9, 4]
    assert rnd.next_seed(v).numpy().tolist() == [9, 5]
    assert v.numpy().tolist() == [9, 6]


def test_threads_calling_model_and_mc_predict_get_independent_draws():
    """Six threads: three call the model (one draw per call), three call mc_predict (8 draws per call)."""
    model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, seed=0, init_scale=0.5, kl_weight=1.0)])
    layer = model.layers[0]
    x = np.ones((1, 4), "float32")
    model(x)
    uncertainty.mc_predict(model, x, num_samples=8, return_samples=True)  # trace once
    start = int(layer.rng_state.numpy()[1])
    outputs, lock = [], threading.Lock()
    calls = 15

    def work(i):
        mine = []
        for _ in range(calls):
            if i % 2:
                mine.append(model(x).numpy()[0])
            else:
                mine.extend(uncertainty.mc_predict(model, x, num_samples=8, return_samples=True)[:, 0])
        with lock:
            outputs.extend(mine)

    _run_threads(work)
    n = len(outputs)
    assert n == 3 * calls + 3 * calls * 8
    # Every draw advances the counter by exactly one, and no two draws are equal.
    assert int(layer.rng_state.numpy()[1]) - start == n
    rows = collections.Counter(tuple(np.round(o, 6).tolist()) for o in outputs)
    assert max(rows.values()) == 1, "two concurrent calls shared a posterior draw"

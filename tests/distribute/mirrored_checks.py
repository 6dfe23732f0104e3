"""Run by tests/distribute/test_mirrored.py in a fresh process (see _common.py).

Splits the CPU into two logical devices, runs every MirroredStrategy check and
prints one JSON line of raw results; the test file asserts on them.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from bayesflip import distribute as bd  # noqa: E402

DEVICES = bd.split_cpu(2)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip.layers import DenseFlipout, DenseReparameterization  # noqa: E402
from tests.distribute._common import data, make_model  # noqa: E402

_STRATEGY = []


def mirrored():
    """One MirroredStrategy per process: separate instances share TF's collective
    executor but number their collective ops independently, and their keys collide
    (measured: "Shape mismatch in the collective instance")."""
    if not _STRATEGY:
        _STRATEGY.append(tf.distribute.MirroredStrategy(DEVICES))
    return _STRATEGY[0]


def weights(model):
    return [np.asarray(w).tolist() for w in model.get_weights()]


def per_replica_outputs(strategy, model, x, steps=1):
    """Outputs of ``model`` on the same ``x`` on every replica, for ``steps`` steps."""

    @tf.function
    def step():
        return strategy.run(lambda: model(x, training=True))

    out = []
    for _ in range(steps):
        out.append([r.numpy().tolist() for r in strategy.experimental_local_results(step())])
    return out


def check_decorrelation():
    """Same input on both replicas: do the perturbations differ? reproducible?"""
    x = np.random.default_rng(5).normal(size=(8, 32)).astype("float32")
    res = {}
    for name, cls in (("flipout", DenseFlipout), ("shared", DenseReparameterization)):
        runs = []
        for _ in range(2):  # same seed twice: same run
            strategy = mirrored()
            keras.utils.set_random_seed(0)  # same posterior means
            with strategy.scope():
                m = keras.Sequential([keras.Input((32,)), cls(64, seed=11, init_scale=0.5, use_bias=False)])
            runs.append(per_replica_outputs(strategy, m, x, steps=2))
            state = m.layers[0].rng_state
            copies = strategy.experimental_local_results(state.value)
            res[f"{name}_state_copies"] = [v.numpy().tolist() for v in copies]
            mean = (x @ np.asarray(m.layers[0].kernel_posterior.loc.numpy())).tolist()
        single = keras.Sequential([keras.Input((32,)), cls(64, seed=11, init_scale=0.5, use_bias=False)])
        w = m.get_weights()
        w[-1] = np.array([11, 0])  # rng_state back to the start
        single.set_weights(w)
        res[name] = {"runs": runs, "mean": mean, "single": [single(x).numpy().tolist() for _ in range(2)]}
    return res


def one_step(strategy, x, y, how):
    """One SGD step in posterior-mean mode (scale effectively 0): loss and weights.

    ``how`` ending in ``_vd``: the layers use variational dropout (learned
    multiplicative noise, log-uniform KL) instead of the Gaussian posterior; in
    ``_rank1``: the rank-1 mixture posterior.
    """
    how, _, family = how.partition("_")
    posterior = {"vd": "variational_dropout", "rank1": "rank1"}.get(family)
    with strategy.scope():
        model = make_model(seed=3, init_scale=0.05, posterior=posterior)
    bayesflip.set_posterior_mean(model)
    initial = weights(model)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(len(x))
    if how == "fit":
        loss = model.fit(ds, epochs=1, verbose=0).history["loss"][0]
    elif how == "bd.fit":
        loss = bd.fit(model, ds, epochs=1, verbose=0)["loss"][0]
    else:  # a hand-written custom loop with bd.compute_loss
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
        opt = model.optimizer

        def replica_step(xb, yb):
            with tf.GradientTape() as tape:
                logits = model(xb, training=True)
                loss = bd.compute_loss(loss_fn(yb, logits), model, global_batch_size=len(x))
            grads = tape.gradient(loss, model.trainable_variables)
            opt.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        @tf.function
        def step(batch):
            per_replica = strategy.run(replica_step, args=batch)
            return strategy.reduce("SUM", per_replica, axis=None)

        for batch in strategy.experimental_distribute_dataset(ds):
            loss = float(step(batch))
    return {"loss": float(loss), "weights": weights(model), "initial": initial}


def check_elbo_scaling():
    x, y = data()
    out = {}
    for how in ("custom", "fit", "bd.fit", "fit_vd", "fit_rank1"):
        out[how] = {
            "one_device": one_step(tf.distribute.get_strategy(), x, y, how),
            "mirrored": one_step(mirrored(), x, y, how),
        }
    return out


def check_fit_matches_model_fit():
    """With sampling on, bd.fit and model.fit take identical steps under Mirrored."""
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    res = {}
    for how in ("fit", "bd.fit"):
        strategy = mirrored()
        with strategy.scope():
            model = make_model(seed=4, init_scale=0.2)
        if how == "fit":
            h = model.fit(ds, epochs=2, verbose=0).history
        else:
            acc = keras.metrics.SparseCategoricalAccuracy(name="acc")
            h = bd.fit(model, ds, epochs=2, verbose=0, metrics=[acc])
        res[how] = {"history": {k: list(map(float, v)) for k, v in h.items()}, "weights": weights(model)}
    return res


def check_metrics_posterior_mean():
    """Metrics accumulated over replicas == one device (deterministic mode, 2 epochs)."""
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    res = {}
    for name, strategy in (("one_device", tf.distribute.get_strategy()), ("mirrored", mirrored())):
        with strategy.scope():
            model = make_model(seed=6, init_scale=0.05)
            bayesflip.set_kl_weight(model, num_examples=32)  # reading/assigning kl_weight in the scope
        res[name + "_kl_weight"] = bayesflip.get_kl_weight(model)
        bayesflip.set_posterior_mean(model)
        acc = keras.metrics.SparseCategoricalAccuracy(name="acc")
        h = bd.fit(model, ds, epochs=2, verbose=0, metrics=[acc])
        res[name] = h
    return res


if __name__ == "__main__":
    results = {
        "num_devices": len(DEVICES),
        "decorrelation": check_decorrelation(),
        "elbo_scaling": check_elbo_scaling(),
        "fit_vs_model_fit": check_fit_matches_model_fit(),
        "metrics": check_metrics_posterior_mean(),
    }
    print(json.dumps(results))

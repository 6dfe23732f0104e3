"""One worker of the two-process MultiWorkerMirroredStrategy test (TF_CONFIG set by the test).

Usage: python multiworker_worker.py OUT_DIR. Writes OUT_DIR/result_<task>.json.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import bayesflip  # noqa: E402
from bayesflip import distribute as bd  # noqa: E402
from bayesflip.layers import DenseFlipout  # noqa: E402
from tests.distribute._common import data, make_model  # noqa: E402


def dataset():
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def main(out_dir: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = strategy.cluster_resolver.task_id
    result = {"task": task, "replicas": strategy.num_replicas_in_sync, "chief": bd.is_chief(strategy)}

    # 1. decorrelation: the same input on both workers
    x = np.random.default_rng(5).normal(size=(8, 32)).astype("float32")
    keras.utils.set_random_seed(0)
    with strategy.scope():
        m = keras.Sequential([keras.Input((32,)), DenseFlipout(64, seed=11, init_scale=0.5, use_bias=False)])
    out = strategy.run(tf.function(lambda: m(x, training=True)))
    result["outputs"] = strategy.experimental_local_results(out)[0].numpy().tolist()
    result["mean"] = (x @ m.layers[0].kernel_posterior.loc.numpy()).tolist()
    result["rng_state"] = m.layers[0].rng_state.numpy().tolist()

    # 2. posterior-mean training (deterministic, compared with one process by the
    # test), stopped after one epoch and resumed from the checkpoint by a fresh model
    ckpt = os.path.join(out_dir, "ckpt")
    with strategy.scope():
        model = make_model(seed=7, init_scale=0.05)
    bayesflip.set_kl_weight(model, num_examples=32)  # cross-replica assign of kl_weight (model has 1/64)
    bayesflip.set_posterior_mean(model)
    result["first_history"] = bd.fit(model, dataset(), epochs=1, checkpoint_dir=ckpt, verbose=1)
    with strategy.scope():  # a restarted process would start like this (another seed even)
        model = make_model(seed=99, init_scale=0.05)
    bayesflip.set_posterior_mean(model)
    result["resumed_history"] = bd.fit(model, dataset(), epochs=2, checkpoint_dir=ckpt, verbose=1)
    result["weights"] = [w.tolist() for w in model.get_weights()]
    result["rng_states"] = [layer.rng_state.numpy().tolist() for layer in model.layers]

    with open(os.path.join(out_dir, f"result_{task}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1])

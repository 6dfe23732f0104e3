"""Training-step time of convolutional and recurrent flipout layers vs Keras (and TFP).

Conv: a two-convolution CNN on 32×32×3 images (Conv 3×3×32 "same" + ReLU,
Conv 3×3×64 stride 2 + ReLU, global average pooling, Dense 10): keras
``Conv2D`` vs bayesflip ``Conv2DFlipout`` vs TFP's
``tfp.layers.Convolution2DFlipout`` (a ``tf_keras`` model, since TFP's layers
do not run in Keras 3).
Recurrent: one recurrent layer (64 units) over sequences of 32 steps × 32
features, then Dense 10: keras ``LSTM``/``GRU`` vs ``LSTMFlipout``/``GRUFlipout``.

Two update rules: each framework's own Adam (``adam``; TFP's tf_keras Adam
is a fused kernel, Keras 3's is not) and the same hand-written SGD step for
every model (``sgd``), which isolates the layers' own forward/backward cost.
One process; within each group (convolutional, recurrent) the models' steps
are interleaved (round-robin) and the median of many steps is reported, as
ratios to the deterministic Keras step, together with the median of the
per-round ratios (more robust when other processes load the machine). Every
model trains with a compiled ``tf.function`` step (Adam, sparse categorical
cross-entropy + the KL terms).

Usage: ``python -m benchmarks run layers_conv_rnn [--steps 40] [--batch-size 64] [--updates adam sgd]``
Writes ``layers_conv_rnn.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import os
import platform
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.layers import Conv2DFlipout, GRUFlipout, LSTMFlipout  # noqa: E402
from benchmarks._meta import write_json  # noqa: E402
from benchmarks._steps import interleaved, parse_step_args, summarize, train_step  # noqa: E402

IMAGE = (32, 32, 3)
SEQUENCE = (32, 32)
UNITS = 64
CLASSES = 10
KL = 1e-4


def keras_step(model, update="adam"):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return train_step(model, keras.optimizers.Adam(1e-3), loss_fn, update)


def cnn(conv):
    return keras.Sequential(
        [
            keras.Input(IMAGE),
            conv(32, 3, padding="same", activation="relu"),
            conv(64, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(CLASSES),
        ]
    )


def flipout_conv(filters, kernel_size, **kwargs):
    return Conv2DFlipout(filters, kernel_size, kl_weight=KL, **kwargs)


def rnn(layer):
    return keras.Sequential([keras.Input(SEQUENCE), layer, keras.layers.Dense(CLASSES)])


def tfp_cnn_step(update="adam"):
    import tensorflow_probability as tfp
    import tf_keras

    kl = lambda q, p, _: tfp.distributions.kl_divergence(q, p) * KL  # noqa: E731
    conv = tfp.layers.Convolution2DFlipout
    model = tf_keras.Sequential(
        [
            tf_keras.Input(IMAGE),
            conv(32, 3, padding="same", activation="relu", kernel_divergence_fn=kl),
            conv(64, 3, strides=2, activation="relu", kernel_divergence_fn=kl),
            tf_keras.layers.GlobalAveragePooling2D(),
            tf_keras.layers.Dense(CLASSES),
        ]
    )
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return train_step(model, tf_keras.optimizers.Adam(1e-3), loss_fn, update)


def measure(batch_size: int, steps: int, update: str = "adam") -> dict:
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size,) + IMAGE).astype("float32"))
    sequences = tf.constant(rng.normal(size=(batch_size,) + SEQUENCE).astype("float32"))
    labels = tf.constant(rng.integers(0, CLASSES, size=batch_size))

    # Group 1: convolutions (Keras 3, bayesflip, TFP on tf_keras), interleaved.
    conv = {
        "keras_conv2d": keras_step(cnn(keras.layers.Conv2D), update),
        "bayesflip_conv2d_flipout": keras_step(cnn(flipout_conv), update),
    }
    try:
        conv["tfp_conv2d_flipout"] = tfp_cnn_step(update)
    except Exception as err:  # pragma: no cover - TFP missing or broken
        print(f"TFP unavailable: {err}")
    conv_times = interleaved(conv, {k: (images, labels) for k in conv}, steps)

    # Group 2: recurrent layers, interleaved.
    rnn_runners = {
        "keras_lstm": keras_step(rnn(keras.layers.LSTM(UNITS)), update),
        "bayesflip_lstm_flipout": keras_step(rnn(LSTMFlipout(UNITS, kl_weight=KL, seed=0)), update),
        "keras_gru": keras_step(rnn(keras.layers.GRU(UNITS)), update),
        "bayesflip_gru_flipout": keras_step(rnn(GRUFlipout(UNITS, kl_weight=KL, seed=0)), update),
    }
    rnn_times = interleaved(rnn_runners, {k: (sequences, labels) for k in rnn_runners}, steps)

    summary = summarize(
        {**conv_times, **rnn_times},
        {
            "conv2d_flipout_over_keras_conv2d": ("bayesflip_conv2d_flipout", "keras_conv2d"),
            "tfp_conv2d_flipout_over_keras_conv2d": ("tfp_conv2d_flipout", "keras_conv2d"),
            "tfp_over_bayesflip_conv2d_flipout": ("tfp_conv2d_flipout", "bayesflip_conv2d_flipout"),
            "lstm_flipout_over_keras_lstm": ("bayesflip_lstm_flipout", "keras_lstm"),
            "gru_flipout_over_keras_gru": ("bayesflip_gru_flipout", "keras_gru"),
        },
    )
    return {"batch_size": batch_size, "steps": steps, "update": update, **summary}


def main(argv=None) -> dict:
    args = parse_step_args(argv, __doc__.splitlines()[0], steps=40, batch_size=64, quick_steps=3)
    runs = []
    for update in args.updates:
        result = measure(args.batch_size, args.steps, update)
        runs.append(result)
        print(f"update={update}, batch {args.batch_size}, median of {args.steps} interleaved steps:")
        for k, v in result["median_ms"].items():
            print(f"  {k:28s} {v:8.2f} ms")
        for k, v in result["ratios"].items():
            paired = result["median_paired_ratios"][k]
            print(f"  {k:40s} {v:5.2f}x  (median of per-round ratios {paired:.2f}x)")
    output = {
        "benchmark": "layers_conv_rnn",
        "updates": {
            "adam": "each framework's own Adam (Keras 3's for Keras 3 models, tf_keras' fused one for TFP)",
            "sgd": "the same hand-written v -= 0.01 g for every model (isolates the layers)",
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "config": {"image": IMAGE, "sequence": SEQUENCE, "units": UNITS},
        "runs": runs,
    }
    write_json(os.path.join(args.output, "layers_conv_rnn.json"), output, args, indent=2)
    return output


if __name__ == "__main__":
    main(sys.argv[1:])

"""Training-step time of a CIFAR-style ResNet-20: flipout vs deterministic Keras vs TFP.

ResNet-20 (He et al. 2016, §4.2: a 3×3 convolution with 16 filters, three stages
of three basic blocks with 16/32/64 filters, the 2nd and 3rd stages starting with
stride 2 and a 1×1 projection shortcut, batch normalisation after every
convolution, global average pooling, a 10-way dense layer; about 0.27 M
weights) on synthetic 32×32×3 images and labels (only the shape matters for
time), built four ways from one function:

- ``keras``: ``keras.layers.Conv2D`` / ``Dense`` (deterministic);
- ``bayesflip``: every convolution ``Conv2DFlipout`` and the head ``DenseFlipout``
  (library defaults, ``kl_weight = 1 / 50,000``);
- ``tfp``: TFP's ``tfp.layers.Convolution2DFlipout`` / ``DenseFlipout`` on
  ``tf_keras`` (TFP's layers do not run in Keras 3), KL scaled the same way;
- ``tf_keras``: the deterministic net on ``tf_keras`` (TFP's own framework
  baseline: ``tfp ÷ tf_keras`` is TFP's flipout overhead as ``bayesflip ÷ keras``
  is ours, and ``tf_keras ÷ keras`` the frameworks' difference).

One process; each model's compiled ``tf.function`` training step (sparse
categorical cross-entropy + the KL terms), the three interleaved round-robin
after a warm-up; reported: the median step time of each, the ratios of medians
to the deterministic step, and the median of the per-round ratios (robust to
load drifting on a shared machine). Two update rules, as in
``bench_layers_conv_rnn.py``: each framework's own Adam (``adam``; tf_keras'
is a fused kernel, Keras 3's is not) and the same hand-written SGD step for
every model (``sgd``), which isolates the layers' own forward/backward cost.

Each model is timed twice: as above, and with its batch normalisation layers
left out (``batch_norm: false`` in the record). Keras 3's
``BatchNormalization`` runs as separate moments/normalise ops and tf_keras'
as one fused kernel, so the net without it compares the flipout convolutions
themselves (bayesflip's against TFP's) on an equal footing, and the difference
between the two variants is what each framework's batch normalisation costs
(a known Keras 3 cost: keras-team/keras-core issue #225, "BatchNorm is slow").

Usage: ``python -m benchmarks run resnet20 [--steps 20] [--batch-size 128]``
(``--quick``: 2 steps at batch 8, into the scratch folder). Writes
``resnet20.json`` into the output folder (see ``benchmarks/_meta.py``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from bayesflip.layers import Conv2DFlipout, DenseFlipout  # noqa: E402
from benchmarks._meta import write_json  # noqa: E402
from benchmarks._steps import interleaved, parse_step_args, summarize, train_step  # noqa: E402

IMAGE = (32, 32, 3)
CLASSES = 10
STAGES = (16, 32, 64)
BLOCKS_PER_STAGE = 3
TRAIN_EXAMPLES = 50_000  # CIFAR-10's training set: the KL weight 1 / N


def resnet20(layers, conv: Callable, dense: Callable, batch_norm: bool = True):
    """ResNet-20 from a layer namespace (``keras.layers`` or ``tf_keras.layers``) and conv/dense factories.

    ``batch_norm=False`` leaves out every ``BatchNormalization`` layer (the rest is the same net).
    """
    inputs = layers.Input(IMAGE)

    def conv_bn(x, filters, kernel, strides=1, relu=True):
        x = conv(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        if batch_norm:
            x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if relu else x

    x = conv_bn(inputs, STAGES[0], 3)
    for stage, filters in enumerate(STAGES):
        for block in range(BLOCKS_PER_STAGE):
            strides = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, 3, strides)
            y = conv_bn(y, filters, 3, relu=False)
            shortcut = conv_bn(x, filters, 1, strides, relu=False) if strides != 1 else x
            x = layers.ReLU()(layers.Add()([y, shortcut]))
    x = layers.GlobalAveragePooling2D()(x)
    return inputs, dense(CLASSES)(x)


def keras_model(bayesian: bool, batch_norm: bool = True) -> keras.Model:
    kl = 1.0 / TRAIN_EXAMPLES
    if bayesian:

        def conv(filters, kernel, **kw):
            kw.pop("use_bias")
            return Conv2DFlipout(filters, kernel, use_bias=False, kl_weight=kl, **kw)

        def dense(units):
            return DenseFlipout(units, kl_weight=kl)

    else:
        conv, dense = keras.layers.Conv2D, keras.layers.Dense
    inputs, outputs = resnet20(keras.layers, conv, dense, batch_norm)
    return keras.Model(inputs, outputs)


def keras_step(bayesian: bool, update: str, batch_norm: bool = True):
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return train_step(keras_model(bayesian, batch_norm), keras.optimizers.Adam(1e-3), loss_fn, update)


def tf_keras_step(update: str, batch_norm: bool = True):
    """The deterministic ResNet-20 on tf_keras: TFP's own framework baseline."""
    import tf_keras

    inputs, outputs = resnet20(tf_keras.layers, tf_keras.layers.Conv2D, tf_keras.layers.Dense, batch_norm)
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return train_step(tf_keras.Model(inputs, outputs), tf_keras.optimizers.Adam(1e-3), loss_fn, update)


def tfp_step(update: str, batch_norm: bool = True):
    import tensorflow_probability as tfp
    import tf_keras

    kl = lambda q, p, _: tfp.distributions.kl_divergence(q, p) / TRAIN_EXAMPLES  # noqa: E731

    def conv(filters, kernel, strides=1, padding="same", use_bias=False):
        del use_bias  # TFP's flipout convolution has a (deterministic) bias; it is cheap
        return tfp.layers.Convolution2DFlipout(
            filters, kernel, strides=strides, padding=padding, kernel_divergence_fn=kl
        )

    def dense(units):
        return tfp.layers.DenseFlipout(units, kernel_divergence_fn=kl)

    inputs, outputs = resnet20(tf_keras.layers, conv, dense, batch_norm)
    model = tf_keras.Model(inputs, outputs)
    loss_fn = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return train_step(model, tf_keras.optimizers.Adam(1e-3), loss_fn, update)


def measure(batch_size: int, steps: int, warmup: int, update: str, batch_norm: bool = True) -> dict:
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(size=(batch_size, *IMAGE)).astype("float32"))
    labels = tf.constant(rng.integers(0, CLASSES, size=batch_size))
    runners = {
        "keras": keras_step(False, update, batch_norm),
        "bayesflip_flipout": keras_step(True, update, batch_norm),
        "tfp_flipout": tfp_step(update, batch_norm),
        "tf_keras": tf_keras_step(update, batch_norm),
    }
    times = interleaved(runners, dict.fromkeys(runners, (images, labels)), steps, warmup)
    summary = summarize(
        times,
        {
            "bayesflip_over_keras": ("bayesflip_flipout", "keras"),
            "tfp_over_keras": ("tfp_flipout", "keras"),
            "tfp_over_bayesflip": ("tfp_flipout", "bayesflip_flipout"),
            "tfp_over_tf_keras": ("tfp_flipout", "tf_keras"),
            "tf_keras_over_keras": ("tf_keras", "keras"),
        },
    )
    return summary | {
        "batch_size": batch_size,
        "steps": steps,
        "warmup": warmup,
        "update": update,
        "batch_norm": batch_norm,
    }


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_step_args(argv, __doc__.splitlines()[0], steps=20, batch_size=128, quick_steps=2)
    params = keras_model(False).count_params()
    runs = []
    for batch_norm in (True, False):
        for update in args.updates:
            result = measure(args.batch_size, args.steps, 1 if args.quick else 3, update, batch_norm)
            runs.append(result)
            print(
                f"ResNet-20 ({params:,} weights), {'with' if batch_norm else 'without'} batch normalisation, "
                f"{update}, batch {args.batch_size}, median of {args.steps} steps:"
            )
            for k, v in result["median_ms"].items():
                print(f"  {k:20s} {v:9.1f} ms")
            for k, v in result["ratios"].items():
                print(
                    f"  {k:22s} {v:5.2f}x  (median of per-round ratios {result['median_paired_ratios'][k]:.2f}x)"
                )
    report = {
        "benchmark": "resnet20",
        "model": {"name": "ResNet-20", "deterministic_weights": params, "image": IMAGE, "classes": CLASSES},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "targets": {"bayesflip_over_keras": "<= 2.3", "tfp_over_bayesflip": "> 1"},
        "updates": {
            "adam": "each framework's own Adam (Keras 3's for Keras 3 models, tf_keras' fused one for TFP)",
            "sgd": "the same hand-written v -= 0.01 g for every model (isolates the layers)",
        },
        "runs": runs,
    }
    write_json(os.path.join(args.output, "resnet20.json"), report, args, indent=2)
    return report


if __name__ == "__main__":
    main()

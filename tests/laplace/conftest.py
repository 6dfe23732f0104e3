"""Fixtures of the Laplace tests: small trained-looking models and data (weights set, not trained)."""

import keras
import pytest


@pytest.fixture
def softmax_linear(rng):
    """A linear softmax classifier (the last layer is the only one, ``φ = x``) and its data."""
    x = rng.normal(size=(40, 3)).astype("float32")
    y = rng.integers(0, 4, size=40)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="out")])
    model.layers[-1].set_weights(
        [rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=4).astype("float32")]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y


@pytest.fixture
def small_mlp(rng):
    """A 3-8-3 tanh MLP classifier and its data."""
    x = rng.normal(size=(60, 3)).astype("float32")
    y = rng.integers(0, 3, size=60)
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(8, activation="tanh", name="hidden"),
            keras.layers.Dense(3, name="out"),
        ]
    )
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model, x, y

"""Property-based lossless round trips (hypothesis, small ``max_examples``).

For random layer configurations:
* config → layer → config is the identity (and the config keys are constructor
  arguments);
* a ``.keras`` save/load with ``safe_mode=True`` restores identical weights
  (posterior ``loc``/``rho``, bias, saved ``kl_weight`` and RNG state), identical
  posterior-mean predictions and the *same next posterior sample*;
* a loaded, compiled model resumes training exactly as the original does.
"""

from __future__ import annotations

import inspect
import os
import tempfile

import keras
import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import bayesflip
from bayesflip import priors
from bayesflip.layers import Conv2DFlipout, DenseFlipout

# no shrinking: a failing example is printed as generated (shrinking Keras fits is slow)
NO_SHRINK = [Phase.explicit, Phase.generate]
SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=NO_SHRINK,
)

prior_strategy = st.one_of(
    st.none(),
    st.builds(priors.Normal, loc=st.floats(-1, 1), scale=st.floats(0.05, 3)),
    st.builds(
        priors.ScaleMixtureNormal,
        pi=st.floats(0.05, 0.95),
        scale_1=st.floats(0.5, 2),
        scale_2=st.floats(1e-3, 0.1),
    ),
)

common = dict(
    estimator=st.sampled_from(["flipout", "shared", "local"]),
    prior=prior_strategy,
    init_scale=st.floats(1e-3, 0.3),
    min_scale=st.sampled_from([0.0, 1e-6, 1e-4]),
    kl_weight=st.floats(0.0, 1.0),
    seed=st.one_of(st.none(), st.integers(0, 2**31 - 1)),
    use_bias=st.booleans(),
    bayesian_bias=st.booleans(),
    activation=st.sampled_from([None, "relu", "tanh", "sigmoid"]),
)

dense_configs = st.fixed_dictionaries({"units": st.integers(1, 6), **common})
conv_configs = st.fixed_dictionaries(
    {
        "filters": st.integers(1, 4),
        "kernel_size": st.sampled_from([1, 2, (1, 2), (2, 1)]),
        "strides": st.sampled_from([1, 2]),
        "padding": st.sampled_from(["valid", "same"]),
        "dilation_rate": st.sampled_from([1]),
        **common,
    }
)


def _check_config_identity(cls, kwargs):
    layer = cls(**kwargs)
    config = layer.get_config()
    params = set()  # constructor arguments along the MRO (thin subclasses forward **kwargs)
    for klass in cls.__mro__:
        if klass is keras.layers.Layer:
            break
        params |= set(inspect.signature(klass.__init__).parameters)
    base = {"name", "trainable", "dtype"}
    assert set(config) - base <= params, set(config) - base - params
    rebuilt = cls.from_config(config)
    assert rebuilt.get_config() == config
    assert rebuilt.prior == layer.prior
    # every constructor argument we passed survives (normalised forms compare equal)
    for key in ("estimator", "init_scale", "min_scale", "kl_weight", "seed", "use_bias", "bayesian_bias"):
        assert getattr(rebuilt, key) == kwargs[key], key


@SETTINGS
@given(dense_configs)
def test_dense_config_round_trip_is_identity(kwargs):
    _check_config_identity(DenseFlipout, kwargs)


@SETTINGS
@given(conv_configs)
def test_conv2d_config_round_trip_is_identity(kwargs):
    _check_config_identity(Conv2DFlipout, kwargs)


def _save_load(model):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        return keras.saving.load_model(path, safe_mode=True)


def _assert_same_weights(a, b):
    assert [w.name for w in a.weights] == [w.name for w in b.weights]
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(wa), keras.ops.convert_to_numpy(wb), err_msg=wa.path
        )


def _round_trip_and_resume(make_model, x, y):
    keras.utils.set_random_seed(0)
    model = make_model()
    bayesflip.set_kl_weight(model, num_examples=len(x))
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)  # advances RNG + optimizer state
    loaded = _save_load(model)
    assert [type(l) for l in loaded.layers] == [type(l) for l in model.layers]
    _assert_same_weights(model, loaded)
    # RNG state is saved: both draw the same next posterior sample
    for layer_a, layer_b in zip(bayesflip.variational_layers(model), bayesflip.variational_layers(loaded)):
        np.testing.assert_array_equal(layer_a.rng_state.numpy(), layer_b.rng_state.numpy())
        assert layer_a.kl_weight == layer_b.kl_weight
    with bayesflip.posterior_mean(model), bayesflip.posterior_mean(loaded):
        np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    np.testing.assert_array_equal(model(x).numpy(), loaded(x).numpy())
    # resume training: the same data and steps give the same weights and losses
    h1 = model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    h2 = loaded.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_allclose(h1, h2, rtol=1e-6)
    for wa, wb in zip(model.weights, loaded.weights):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(wa),
            keras.ops.convert_to_numpy(wb),
            rtol=1e-6,
            atol=1e-7,
            err_msg=wa.path,
        )


@settings(
    max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), phases=NO_SHRINK
)
@given(dense_configs, st.integers(1, 5))
def test_dense_save_load_safe_mode_is_lossless_and_resumes(kwargs, input_dim):
    rng = np.random.default_rng(input_dim)
    x = rng.normal(size=(10, input_dim)).astype("float32")
    y = rng.normal(size=(10, kwargs["units"])).astype("float32")
    _round_trip_and_resume(
        lambda: keras.Sequential([keras.Input((input_dim,)), DenseFlipout(**kwargs)]), x, y
    )


@settings(
    max_examples=2, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), phases=NO_SHRINK
)
@given(conv_configs)
def test_conv2d_save_load_safe_mode_is_lossless_and_resumes(kwargs):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5, 5, 2)).astype("float32")

    def make():
        return keras.Sequential(
            [
                keras.Input((5, 5, 2)),
                Conv2DFlipout(**kwargs),
                keras.layers.GlobalAveragePooling2D(),
            ]
        )

    y = rng.normal(size=(8, kwargs["filters"])).astype("float32")
    _round_trip_and_resume(make, x, y)

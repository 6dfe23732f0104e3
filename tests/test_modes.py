"""Every mode switch takes effect in every entry point, also after the model has run once.

A mode (posterior mean, estimator) is read while tracing, so every compiled function that
traced the model must be dropped on a switch: Keras' train/test/predict functions and the
cached ``mc_predict`` samplers; ``export`` traces afresh. Each test runs the entry points in
the default (flipout) mode first, so that their compiled functions exist, then inside the
mode, then after it.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip.diagnostics import use_estimator
from bayesflip.layers import DenseFlipout
from bayesflip.uncertainty import mc_predict

N = 6  # identical input rows: a draw shared by the batch gives identical output rows


def _model():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(8, activation="tanh", seed=0, init_scale=0.3, kl_weight=1.0),
            DenseFlipout(3, seed=1, init_scale=0.3, kl_weight=1.0),
        ]
    )
    return model


def _x():
    return np.tile(np.array([[0.5, -1.0, 2.0, 0.25]], "float32"), (N, 1))


def _spread(y_true, y_pred):
    """Largest spread over the batch rows (0 when the whole batch shares one weight draw)."""
    return tf.reduce_max(tf.reduce_max(y_pred, axis=0) - tf.reduce_min(y_pred, axis=0))


def _off_mean(y_true, y_pred):
    """Largest distance from ``y_true`` = the posterior-mean prediction."""
    return tf.reduce_max(tf.abs(y_pred - y_true))


def _observe(entry, model, x, mean, tmp_path):
    """``(spread, off_mean)`` of the outputs that ``entry`` computes."""
    if entry in ("fit", "evaluate"):
        if entry == "fit":
            logs = model.fit(x, mean, batch_size=N, epochs=1, verbose=0).history
            return logs["_spread"][-1], logs["_off_mean"][-1]
        logs = model.evaluate(x, mean, batch_size=N, verbose=0, return_dict=True)
        return logs["_spread"], logs["_off_mean"]
    if entry == "predict":
        draws = model.predict(x, batch_size=N, verbose=0)[None]
    elif entry == "mc_predict":
        modes = [layer.use_posterior_mean for layer in bayesflip.variational_layers(model)]
        ctx = (
            pytest.warns(UserWarning, match="posterior-mean mode") if all(modes) else contextlib.nullcontext()
        )
        with ctx:
            draws = mc_predict(model, x, num_samples=3, return_samples=True)
    else:  # export: a fresh trace of the current modes
        path = bayesflip.export(model, tmp_path / "served", num_samples=3, task="regression", overwrite=True)
        draws = tf.saved_model.load(path).signatures["predict"](x=tf.constant(x))["samples"].numpy()
    spread = np.max(np.ptp(draws, axis=1))
    return spread, np.max(np.abs(draws - mean))


MODES = {"shared": lambda m: use_estimator(m, "shared"), "posterior_mean": bayesflip.posterior_mean}
ENTRIES = ("fit", "evaluate", "predict", "mc_predict")


@pytest.mark.parametrize("mode", list(MODES))
def test_mode_switch_takes_effect_in_every_entry_point(mode, tmp_path):
    model = _model()
    x = _x()
    with bayesflip.posterior_mean(model):
        mean = model(x).numpy()  # eager: nothing compiled yet
    # SGD with learning rate 0: fit computes the metrics of a forward pass and changes no weight.
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="mse", metrics=[_spread, _off_mean])

    for entry in ENTRIES:  # flipout; the compiled functions now exist
        spread, off = _observe(entry, model, x, mean, tmp_path)
        assert spread > 1e-3 and off > 1e-3, (entry, spread, off)
    with MODES[mode](model):
        for entry in (*ENTRIES, "export"):
            spread, off = _observe(entry, model, x, mean, tmp_path)
            assert spread < 1e-5, (mode, entry, spread)  # one draw (or none) for the whole batch
            if mode == "shared":
                assert off > 1e-3, (entry, off)  # a posterior sample, not the mean
            else:
                assert off < 1e-5, (entry, off)  # the posterior mean
    for entry in ("predict", "mc_predict"):  # back to flipout
        spread, off = _observe(entry, model, x, mean, tmp_path)
        assert spread > 1e-3 and off > 1e-3, (mode, entry, spread, off)


def test_use_estimator_after_predict_gives_identical_rows():
    """The reported reproduction: ``use_estimator`` after one ``predict``."""
    m = keras.Sequential([keras.Input((4,)), DenseFlipout(8, seed=0), DenseFlipout(3, seed=1)])
    x = np.ones((6, 4), "float32")
    m.predict(x, verbose=0)
    with use_estimator(m, "shared"):
        p = m.predict(x, verbose=0)
    assert np.ptp(p, axis=0).max() == 0.0
    assert np.ptp(m.predict(x, verbose=0), axis=0).max() > 1e-3  # flipout again
    bayesflip.set_posterior_mean(m, True)
    with bayesflip.posterior_mean(m):
        mean = m(x).numpy()
    np.testing.assert_allclose(m.predict(x, verbose=0), mean, rtol=0, atol=1e-6)
    bayesflip.set_posterior_mean(m, False)
    assert np.ptp(m.predict(x, verbose=0), axis=0).max() > 1e-3


def test_switch_on_an_outer_model_resets_the_compiled_functions_of_nested_models():
    inner = _model()
    outer = keras.Sequential([keras.Input((4,)), inner])
    x = _x()
    assert np.ptp(inner.predict(x, verbose=0), axis=0).max() > 1e-3
    with use_estimator(outer, "shared"):
        assert np.ptp(inner.predict(x, verbose=0), axis=0).max() < 1e-5

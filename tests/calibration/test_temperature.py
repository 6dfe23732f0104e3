"""Temperature scaling: the fitted T minimizes the NLL (vs scipy), recovers a known
temperature, improves calibration, and the layer serializes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import optimize, special

from bayesflip import calibration as cal


def sample_labels(rng, probs):
    u = rng.random(len(probs))
    return np.minimum((u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1), probs.shape[1] - 1)


def nll(t, z, y):
    return np.mean(special.logsumexp(z / t, axis=1) - z[np.arange(len(y)), y] / t)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fitted_temperature_is_the_nll_minimizer(seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=3.0, size=(500, 6))
    y = sample_labels(rng, special.softmax(z / rng.uniform(0.5, 4.0), axis=1))
    t = cal.fit_temperature(z, y)
    ref = optimize.minimize_scalar(
        lambda lt: nll(np.exp(lt), z, y), bounds=(-4, 4), method="bounded", options={"xatol": 1e-10}
    ).x
    assert t == pytest.approx(np.exp(ref), rel=1e-5)
    assert nll(t, z, y) <= min(nll(t * 1.01, z, y), nll(t / 1.01, z, y))


def test_recovers_known_temperature(rng):
    z = rng.normal(scale=4.0, size=(20000, 10))
    y = sample_labels(rng, special.softmax(z / 2.5, axis=1))
    assert cal.fit_temperature(z, y) == pytest.approx(2.5, rel=0.05)


def test_scaling_improves_calibration_and_keeps_predictions(rng):
    z = rng.normal(scale=4.0, size=(5000, 10))
    y = sample_labels(rng, special.softmax(z / 3.0, axis=1))  # the logits are overconfident
    ts = cal.TemperatureScaling().fit(z[:2500], y[:2500])
    rep = ts.report(z[2500:], y[2500:])
    assert rep["temperature"] == pytest.approx(ts.temperature)
    assert rep["nll_after"] < rep["nll_before"]
    assert rep["ece_after"] < 0.5 * rep["ece_before"]
    assert rep["brier_after"] < rep["brier_before"]
    assert rep["ece_before"] == pytest.approx(
        cal.expected_calibration_error(y[2500:], z[2500:], from_logits=True)
    )
    scaled = ts(z.astype("float32")).numpy()
    np.testing.assert_allclose(scaled, z / ts.temperature, rtol=1e-5)
    np.testing.assert_array_equal(scaled.argmax(1), z.argmax(1))


def test_fit_from_mc_averaged_probs(rng):
    # fit on log of averaged probabilities == fit on those log-probabilities as logits
    probs = special.softmax(rng.normal(scale=3.0, size=(8, 400, 5)), axis=-1).mean(0)
    y = sample_labels(rng, probs)
    t_probs = cal.fit_temperature(probs, y, from_probs=True)
    assert t_probs == pytest.approx(cal.fit_temperature(np.log(probs), y), rel=1e-9)


def test_bounds_are_respected_for_separable_or_random_labels():
    z = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])
    assert cal.fit_temperature(z, [0, 1, 0], bounds=(0.1, 10.0)) == 0.1  # all right: sharpen to the bound
    assert cal.fit_temperature(z, [1, 0, 1], bounds=(0.1, 10.0)) == 10.0  # all wrong: flatten to the bound


def test_layer_serialization_and_model_round_trip(tmp_path, rng):
    z = rng.normal(scale=3.0, size=(300, 4))
    y = sample_labels(rng, special.softmax(z / 2.0, axis=1))
    ts = cal.TemperatureScaling(name="ts").fit(z, y)
    clone = cal.TemperatureScaling.from_config(ts.get_config())
    assert clone.temperature == pytest.approx(ts.temperature)
    model = keras.Sequential([keras.Input((4,)), ts, keras.layers.Softmax()])
    x = z[:5].astype("float32")
    expected = special.softmax(z[:5] / ts.temperature, axis=1)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-5)
    path = tmp_path / "ts.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded(x).numpy(), expected, rtol=1e-5)
    assert loaded.layers[0].temperature == pytest.approx(ts.temperature)


def test_predict_probs_from_logits_and_from_mc_averaged_probs(rng):
    z = rng.normal(scale=3.0, size=(50, 4))
    ts = cal.TemperatureScaling(temperature=1.7)
    np.testing.assert_allclose(ts.predict_probs(z), special.softmax(z / 1.7, axis=1), rtol=1e-5, atol=1e-7)
    # probabilities: softmax(log p / T) = p^(1/T) renormalised
    p = special.softmax(rng.normal(scale=3.0, size=(8, 50, 4)), axis=-1).mean(0)
    sharp = p ** (1 / 1.7) / np.sum(p ** (1 / 1.7), axis=1, keepdims=True)
    np.testing.assert_allclose(ts.predict_probs(p, from_probs=True), sharp, rtol=1e-5, atol=1e-7)
    # the same as the layer applied to log p
    layer_out = keras.ops.softmax(ts(np.log(p).astype("float32")), axis=-1)
    np.testing.assert_allclose(
        ts.predict_probs(p, from_probs=True), keras.ops.convert_to_numpy(layer_out), atol=1e-6
    )
    with pytest.warns(UserWarning, match="predict_probs.*from_probs=True"):
        ts.predict_probs(p)
    with pytest.raises(ValueError, match="predict_probs.*simplex"):
        ts.predict_probs([[0.7, 0.7]], from_probs=True)
    with pytest.raises(ValueError, match="predict_probs.*shape"):
        ts.predict_probs([1.0, 0.0])


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: cal.TemperatureScaling(temperature=0.0, name="t0"),
            r"TemperatureScaling 't0'.*> 0, got 0.0",
        ),
        (lambda: cal.TemperatureScaling(temperature=float("inf")), r"finite"),
        (lambda: cal.fit_temperature([[1.0, 0.0]], [0], bounds=(2.0, 1.0)), r"fit_temperature.*bounds"),
        (lambda: cal.fit_temperature([[1.0, 0.0]], [2]), r"fit_temperature.*labels"),
        (lambda: cal.fit_temperature([1.0, 0.0], [0]), r"fit_temperature.*shape"),
        (lambda: cal.fit_temperature([[0.7, 0.7]], [0], from_probs=True), r"simplex"),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()

"""ELBO helpers: KL weights, model KL, annealing, separate ELBO terms, seeds."""

import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip.layers import DenseFlipout
from tests.layers.helpers import assert_same_weights


def _model(seed=0, kl_weight=1.0):
    keras.utils.set_random_seed(seed)  # deterministic initializers
    return keras.Sequential(
        [
            keras.Input((6,)),
            DenseFlipout(8, activation="relu", seed=seed + 1, kl_weight=kl_weight),
            DenseFlipout(3, seed=seed + 2, kl_weight=kl_weight),
        ]
    )


def _data(n=64):
    rng = np.random.default_rng(3)
    return rng.normal(size=(n, 6)).astype("float32"), rng.integers(0, 3, size=n)


def _compile(model):
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="nll")],
    )


def test_set_and_get_kl_weight():
    model = _model()
    assert bayesflip.set_kl_weight(model, num_examples=200) == pytest.approx(1 / 200)
    assert all(layer._kl_weight.numpy() == np.float32(1 / 200) for layer in model.layers)
    assert bayesflip.get_kl_weight(model) == pytest.approx(1 / 200)
    model.layers[0].kl_weight = 0.5
    with pytest.raises(ValueError, match="different KL weights"):
        bayesflip.get_kl_weight(model)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kl_weight": -0.1}, "set_kl_weight: `kl_weight` must be a finite number >= 0, got -0.1"),
        ({"num_examples": 0}, "`num_examples` must be a positive int, got 0"),
        ({}, "exactly one of"),
        ({"kl_weight": 1.0, "num_examples": 3}, "exactly one of"),
    ],
)
def test_set_kl_weight_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bayesflip.set_kl_weight(_model(), **kwargs)


def test_no_variational_layers_is_an_error():
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="has no bayesflip variational layers"):
        bayesflip.set_kl_weight(plain, 0.1)


def test_model_kl_is_sum_of_layer_kls_and_add_loss_is_weighted():
    model = _model(kl_weight=0.01)
    x, _ = _data(4)
    model(x)
    total = float(bayesflip.kl_divergence(model))
    per_layer = sum(float(layer.kl_divergence()) for layer in model.layers)
    np.testing.assert_allclose(total, per_layer, rtol=1e-6)
    np.testing.assert_allclose(float(sum(model.losses)), 0.01 * total, rtol=1e-5)
    assert len(model.losses) == 2  # one KL term per layer, once


def test_fit_history_has_separate_elbo_terms():
    x, y = _data()
    model = _model()
    bayesflip.set_kl_weight(model, num_examples=len(x))
    _compile(model)
    hist = model.fit(
        x, y, epochs=2, batch_size=16, verbose=0, validation_data=(x, y), callbacks=[bayesflip.ELBOTerms()]
    ).history
    for prefix in ("", "val_"):
        np.testing.assert_allclose(
            np.array(hist[prefix + "kl"]) + hist[prefix + "nll"], hist[prefix + "loss"], rtol=1e-6
        )
    # validation runs at the end of the epoch with fixed weights: its KL term is
    # exactly kl_weight · KL(q ‖ p) of the final weights
    np.testing.assert_allclose(hist["val_kl"][-1], float(bayesflip.kl_divergence(model)) / len(x), rtol=1e-4)


def test_elbo_terms_requires_the_data_metric_and_fails_at_the_first_step():
    x, y = _data(64)
    model = _model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    steps = []
    counter = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda batch, logs: steps.append(batch))
    with pytest.raises(
        ValueError, match=r"ELBOTerms: no 'nll' in the training logs \['loss'\]; compile .*name='nll'"
    ):
        model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[counter, bayesflip.ELBOTerms()])
    assert steps == [0]  # one step of the 24 asked for


def _unset_kl_warnings(record):
    return [w for w in record if "unset KL weight" in str(w.message)]


def test_unset_kl_weight_warns_once_at_the_first_training_step_with_the_fix():
    x, y = _data(40)
    model = _model(kl_weight=None)
    _compile(model)
    assert [layer.kl_weight_is_set for layer in model.layers] == [False, False]
    assert model.layers[0].get_config()["kl_weight"] is None
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.predict(x, verbose=0)  # prediction never warns
        assert _unset_kl_warnings(record) == []
        # 40 examples in batches of 16: a full and a partial batch, two traces
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    (warning,) = _unset_kl_warnings(record)
    assert issubclass(warning.category, UserWarning)
    assert "DenseFlipout 'dense_flipout'" in str(warning.message)
    assert "bayesflip.set_kl_weight(model, num_examples=len(x_train))" in str(warning.message)
    # the unset weight acts as 1.0
    with bayesflip.posterior_mean(model):
        model(x)
        np.testing.assert_allclose(
            float(keras.ops.sum(model.losses)), float(bayesflip.kl_divergence(model)), rtol=1e-5
        )


def test_unset_kl_weight_warns_in_a_custom_training_loop():
    x, y = _data(8)
    model = _model(kl_weight=None)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            with tf.GradientTape() as tape:
                model(x, training=True)
                loss = keras.ops.sum(model.losses)
            tape.gradient(loss, model.trainable_variables)
    # eagerly there is no shared trace: one warning per layer, at the first step only
    messages = sorted(str(w.message).split(":")[0] for w in _unset_kl_warnings(record))
    assert messages == ["DenseFlipout 'dense_flipout'", "DenseFlipout 'dense_flipout_1'"]


@pytest.mark.parametrize(
    "how",
    ["constructor", "set_kl_weight", "annealing"],
)
def test_a_set_kl_weight_trains_without_warning(how):
    x, y = _data(32)
    model = _model(kl_weight=1.0 if how == "constructor" else None)
    _compile(model)
    callbacks = []
    if how == "set_kl_weight":
        bayesflip.set_kl_weight(model, num_examples=len(x))
    elif how == "annealing":
        callbacks = [bayesflip.KLAnnealing(target=1 / len(x), warmup_epochs=2)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model.fit(x, y, epochs=2, verbose=0, callbacks=callbacks)
    assert _unset_kl_warnings(record) == []
    assert all(layer.kl_weight_is_set for layer in model.layers)
    restored = DenseFlipout.from_config(model.layers[0].get_config())
    assert restored.kl_weight_is_set and restored.kl_weight == model.layers[0].kl_weight


def test_unset_kl_weight_survives_save_and_load(tmp_path):
    model = _model(kl_weight=None)
    model(np.zeros((1, 6), "float32"))
    path = str(tmp_path / "m.keras")
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert [layer.kl_weight_is_set for layer in restored.layers] == [False, False]


def test_temperature_scales_the_per_example_weight():
    model = _model()
    assert bayesflip.set_kl_weight(model, num_examples=200, temperature=0.1) == pytest.approx(0.1 / 200)
    assert bayesflip.get_kl_weight(model) == pytest.approx(0.1 / 200, rel=1e-6)
    with pytest.raises(ValueError, match="set_kl_weight: `temperature` must be a finite number > 0, got 0"):
        bayesflip.set_kl_weight(model, num_examples=200, temperature=0)
    with pytest.raises(ValueError, match="`temperature` goes with `num_examples`"):
        bayesflip.set_kl_weight(model, 0.1, temperature=0.5)


def test_kl_annealing_sets_weights_per_epoch():
    x, y = _data(32)
    model = _model()
    _compile(model)
    cb = bayesflip.KLAnnealing(target=0.02, warmup_epochs=2)
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb]).history
    np.testing.assert_allclose(hist["kl_weight"], [0.01, 0.02, 0.02], rtol=1e-6)
    assert bayesflip.get_kl_weight(model) == pytest.approx(0.02)
    cos = bayesflip.KLAnnealing(target=1.0, warmup_epochs=4, schedule="cosine")
    assert cos.weight_at(1) == pytest.approx(0.5) and cos.weight_at(10) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        bayesflip.KLAnnealing(target=1.0, warmup_epochs=0)
    with pytest.raises(ValueError, match="KLAnnealing: `kl_weight` must be a finite number >= 0"):
        bayesflip.KLAnnealing(target=-1.0, warmup_epochs=1)


def _train(seed):
    x, y = _data()
    model = _model(seed)
    bayesflip.set_kl_weight(model, num_examples=len(x))
    _compile(model)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    return model, model.predict(x, verbose=0)


def test_same_seed_same_training_run_and_predictions():
    m1, p1 = _train(0)
    m2, p2 = _train(0)
    assert_same_weights(m1.weights, m2.weights)
    np.testing.assert_array_equal(p1, p2)
    _, p3 = _train(5)
    assert not np.allclose(p1, p3)


def test_save_load_resumes_training_identically(tmp_path):
    x, y = _data()
    model, _ = _train(0)
    bayesflip.set_kl_weight(model, 0.123)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert bayesflip.get_kl_weight(loaded) == pytest.approx(0.123)
    assert [type(l).__name__ for l in loaded.layers] == [type(l).__name__ for l in model.layers]
    for layer, twin in zip(model.layers, loaded.layers, strict=True):
        np.testing.assert_array_equal(layer.rng_state.numpy(), twin.rng_state.numpy())
        assert layer.get_config() == twin.get_config()
    # both continue training identically (optimizer state and RNG state restored)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    assert_same_weights(model.weights, loaded.weights, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "name", ["set_kl_weight", "get_kl_weight", "kl_divergence", "KLAnnealing", "ELBOTerms"]
)
def test_old_module_name_warns_and_still_returns_the_name(name):
    import bayesflip.losses

    with pytest.warns(
        DeprecationWarning, match=rf"bayesflip\.losses is deprecated.*import {name} from bayesflip\.elbo"
    ):
        obj = getattr(bayesflip.losses, name)
    assert obj is getattr(bayesflip.elbo, name) is getattr(bayesflip, name)
    with pytest.raises(AttributeError):
        bayesflip.losses.no_such_name  # noqa: B018

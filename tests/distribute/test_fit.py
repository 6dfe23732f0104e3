"""bayesflip.distribute.fit / compute_loss on one device (no subprocess needed).

References: Keras' ``model.fit`` (identical steps), NumPy closed forms of the
loss, an uninterrupted run for checkpoint resume.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip import distribute as bd
from tests.distribute._common import N_EXAMPLES, data, make_model
from tests.distribute._common import max_abs_diff as _max_abs_diff

ACC = "acc"


def _ds(batch=16):
    x, y = data()
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


# ------------------------------------------------------------- compute_loss
def test_compute_loss_closed_form(rng):
    nll = rng.uniform(size=(6, 3)).astype("float32")  # extra axis is averaged
    w = rng.uniform(size=6).astype("float32")
    kl = [tf.constant(0.25), tf.constant([0.5, 0.125])]
    got = bd.compute_loss(nll, kl, global_batch_size=12, sample_weight=w)
    expected = (nll.mean(axis=1) * w).sum() / 12 + 0.875
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # default global batch outside a strategy: the local batch
    assert float(bd.compute_loss(nll, kl)) == pytest.approx(nll.mean() + 0.875, rel=1e-6)


def test_compute_loss_reads_model_losses():
    model = make_model(compile=False)
    x, _ = data()
    model(x[:4], training=True)
    kl = sum(float(t) for t in model.losses)
    assert len(model.losses) == 2 and kl > 0
    assert float(bd.compute_loss(tf.ones([4]), model)) == pytest.approx(1.0 + kl, rel=1e-6)


def test_compute_loss_rejects_a_scalar():
    with pytest.raises(ValueError, match="compute_loss: `per_example_loss` must have a batch axis"):
        bd.compute_loss(tf.constant(1.0))


# ------------------------------------------------------------------- fit
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_equals_model_fit_on_one_device(optimizer):
    """Same seeds => the same draws, loss and updates as Keras' model.fit."""
    ref = make_model(seed=4, init_scale=0.2, optimizer=optimizer, lr=0.01)
    h_ref = ref.fit(_ds(), epochs=2, verbose=0).history
    model = make_model(seed=4, init_scale=0.2, optimizer=optimizer, lr=0.01)
    h = bd.fit(model, _ds(), epochs=2, verbose=0, metrics=[keras.metrics.SparseCategoricalAccuracy(name=ACC)])
    assert _max_abs_diff(model.get_weights(), ref.get_weights()) < 1e-6
    np.testing.assert_allclose(h["loss"], h_ref["loss"], rtol=1e-6)
    np.testing.assert_allclose(h[ACC], h_ref[ACC], rtol=1e-6)
    np.testing.assert_allclose(h["loss"], np.add(h["nll"], h["kl"]), rtol=1e-6)
    assert [l.rng_state.numpy().tolist() for l in model.layers] == [[4, 8], [104, 8]]


def test_fit_kl_is_the_weighted_analytic_kl():
    model = make_model(seed=2)
    bayesflip.set_posterior_mean(model)  # nothing moves with lr=0: KL is exact each step
    h = bd.fit(model, _ds(), epochs=1, optimizer=keras.optimizers.SGD(0.0), verbose=0)
    expected = float(bayesflip.kl_divergence(model)) / N_EXAMPLES
    assert h["kl"][0] == pytest.approx(expected, rel=1e-5)


def test_fit_array_inputs_sample_weights_and_progress(capsys):
    x, y = data()
    w = np.where(y == 0, 2.0, 0.5).astype("float32")
    ref = make_model(seed=5)
    h_ref = ref.fit(x, y, sample_weight=w, batch_size=16, epochs=1, shuffle=False, verbose=0).history
    model = make_model(seed=5)
    h = bd.fit(model, (x, y, w), epochs=1, batch_size=16, verbose=1)
    assert h["loss"][0] == pytest.approx(h_ref["loss"][0], rel=1e-5)
    assert _max_abs_diff(model.get_weights(), ref.get_weights()) < 1e-6
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "4/4" in out and "nll:" in out


def test_fit_checkpoint_resume_is_exact(tmp_path):
    """Stop after one epoch, resume in a fresh model: same weights as two epochs straight."""
    full = make_model(seed=3, init_scale=0.3, optimizer="adam", lr=0.01)
    h_full = bd.fit(full, _ds(), epochs=2, verbose=0)
    first = make_model(seed=3, init_scale=0.3, optimizer="adam", lr=0.01)
    bd.fit(first, _ds(), epochs=1, checkpoint_dir=tmp_path, verbose=0)
    fresh = make_model(seed=42, init_scale=0.3, optimizer="adam", lr=0.01)
    h = bd.fit(fresh, _ds(), epochs=2, checkpoint_dir=tmp_path, verbose=0)
    assert h["loss"] == [h_full["loss"][1]]
    assert _max_abs_diff(fresh.get_weights(), full.get_weights()) == 0.0
    # optimizer state (Adam moments, iteration count) and RNG states came back
    assert int(fresh.optimizer.iterations.numpy()) == 8
    assert [l.rng_state.numpy().tolist() for l in fresh.layers] == [[3, 8], [103, 8]]
    # nothing left to do: no epoch runs
    assert bd.fit(fresh, _ds(), epochs=2, checkpoint_dir=tmp_path, verbose=0)["loss"] == []


def test_fit_runs_epoch_callbacks_like_kl_annealing():
    """KLAnnealing sets the KL weight at each epoch start: the logged KL follows it."""
    model = make_model(seed=2)
    bayesflip.set_posterior_mean(model)
    kl_full = float(bayesflip.kl_divergence(model))
    annealing = bayesflip.KLAnnealing(target=1.0 / N_EXAMPLES, warmup_epochs=3)
    h = bd.fit(model, _ds(), epochs=3, optimizer=keras.optimizers.SGD(0.0), callbacks=[annealing], verbose=0)
    np.testing.assert_allclose(h["kl_weight"], [annealing.weight_at(e) for e in range(3)], rtol=1e-6)
    np.testing.assert_allclose(h["kl"], kl_full * np.asarray(h["kl_weight"]), rtol=1e-5)


# -------------------------------------------------------------------- XLA
def test_fit_jit_compile_matches_model_fit_jit_compile():
    """The step (stateless RNG, variable updates) compiles with XLA on CPU.

    XLA's Philox lowering draws other numbers than the TF kernels, so the
    reference is Keras' ``model.fit(jit_compile=True)``.
    """
    ref = make_model(seed=4, init_scale=0.2)
    ref.compile(ref.optimizer, ref.loss, jit_compile=True)
    ref.fit(_ds(), epochs=1, verbose=0)
    model = make_model(seed=4, init_scale=0.2)
    h = bd.fit(model, _ds(), epochs=1, jit_compile=True, verbose=0)
    assert np.isfinite(h["loss"][0])
    assert _max_abs_diff(model.get_weights(), ref.get_weights()) < 1e-5


def test_fit_jit_compile_without_sampling_equals_no_jit():
    runs = []
    for jit in (False, True):
        model = make_model(seed=6)
        bayesflip.set_posterior_mean(model)
        runs.append((bd.fit(model, _ds(), epochs=1, jit_compile=jit, verbose=0), model.get_weights()))
    assert runs[1][0]["loss"][0] == pytest.approx(runs[0][0]["loss"][0], rel=1e-5)
    assert _max_abs_diff(runs[0][1], runs[1][1]) < 1e-5


# --------------------------------------------------------- mixed precision
@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    compute = policy.split("_")[1]
    model = make_model(seed=1, init_scale=0.1, optimizer="adam", lr=0.01)
    x, _ = data()
    assert model(x[:4]).dtype == compute
    assert all(t.dtype == tf.float32 for t in model.losses)  # KL in float32
    h = bd.fit(model, _ds(), epochs=3, verbose=0)
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)  # from compile
    h_keras = model.fit(_ds(), epochs=1, verbose=0).history
    assert np.all(np.isfinite(h["loss"])) and np.isfinite(h_keras["loss"][0])
    assert h["loss"][-1] < h["loss"][0]  # it learns
    assert all(w.dtype == "float32" for w in model.weights if w.dtype != "int64")
    for w in model.get_weights():
        assert np.all(np.isfinite(w))


def test_mixed_float16_wraps_a_plain_optimizer_in_loss_scaling():
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = make_model(seed=1, compile=False)
    h = bd.fit(
        model,
        _ds(),
        epochs=1,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(0.01),
        verbose=0,
    )
    assert np.isfinite(h["loss"][0])


# ----------------------------------------------------------------- errors
def test_fit_errors():
    model = make_model()
    with pytest.raises(ValueError, match="fit: `epochs` must be an int >= 0, got -1"):
        bd.fit(model, _ds(), epochs=-1)
    with pytest.raises(ValueError, match="`verbose` must be 0, 1 or 2"):
        bd.fit(model, _ds(), verbose=3)
    with pytest.raises(TypeError, match="`dataset` must be a tf.data.Dataset"):
        bd.fit(model, [1, 2, 3, 4])
    with pytest.raises(ValueError, match="need a `batch_size`"):
        bd.fit(model, data())
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        bd.fit("model", _ds())
    with pytest.raises(TypeError, match="`strategy` must be a tf.distribute.Strategy"):
        bd.fit(model, _ds(), strategy="mirrored")
    bare = make_model(compile=False)
    with pytest.raises(ValueError, match="no `loss` given and the model is not compiled"):
        bd.fit(bare, _ds(), optimizer="sgd")
    with pytest.raises(ValueError, match="no `optimizer` given"):
        bd.fit(bare, _ds(), loss="mse")
    with pytest.raises(TypeError, match="`callbacks` must be keras.callbacks.Callback"):
        bd.fit(model, _ds(), callbacks=[print], verbose=0)
    with pytest.raises(ValueError, match="metric names must be unique"):
        bd.fit(model, _ds(), metrics=[keras.metrics.Mean(name="kl")], verbose=0)


def test_split_cpu_errors():
    with pytest.raises(ValueError, match="split_cpu: `num_devices` must be a positive int, got 0"):
        bd.split_cpu(0)
    tf.constant(0.0)  # devices are initialized by now
    n = len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(RuntimeError, match="already initialized"):
        bd.split_cpu(n + 1)

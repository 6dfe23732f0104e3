"""bayesflip.export: serving SavedModel == mc_predict / posterior_mean; no bayesflip needed to serve; TFLite."""

import json
import os
import subprocess
import sys
import textwrap
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip import heads, uncertainty
from bayesflip.layers import DenseFlipout

T = 8

# Runs in a fresh interpreter in which bayesflip, Keras, tf_keras and TFP cannot be imported.
_SERVE = textwrap.dedent("""
    import json, sys
    BLOCKED = ("bayesflip", "keras", "tf_keras", "tensorflow_probability")
    for name in BLOCKED:
        sys.modules[name] = None  # `import name` now raises ImportError
    for name in BLOCKED:
        try:
            __import__(name)
            raise SystemExit(name + " is importable")
        except ImportError:
            pass
    import numpy as np
    import tensorflow as tf

    path, x_file, out_file = sys.argv[1:]
    served = tf.saved_model.load(path)
    x = tf.constant(np.load(x_file))
    out = {}
    for sig in ("predict", "uncertainty", "posterior_mean"):
        out[sig] = {k: v.numpy().tolist() for k, v in served.signatures[sig](x=x).items()}
    out["blocked"] = [m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None]
    json.dump(out, open(out_file, "w"))
    """)


def _classifier():
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(16, activation="relu", seed=0, init_scale=0.3, kl_weight=1.0),
            DenseFlipout(3, activation="softmax", seed=1, init_scale=0.3, kl_weight=1.0),
        ]
    )
    return model


def _x(n=6):
    return np.random.default_rng(0).normal(size=(n, 4)).astype("float32")


@pytest.mark.slow  # a fresh interpreter without bayesflip
def test_served_without_bayesflip_equals_mc_predict_and_posterior_mean(tmp_path):
    model = _classifier()
    x = _x()
    path = bayesflip.export(model, tmp_path / "bnn", num_samples=T, task="classification")
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "serve.py"
    script.write_text(_SERVE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [sys.executable, str(script), path, str(tmp_path / "x.npy"), str(tmp_path / "out.json")],
        check=True,
        cwd=str(tmp_path),  # not the repository root: bayesflip is not on sys.path there
        env=env,
        timeout=240,
    )
    served = json.loads((tmp_path / "out.json").read_text())
    assert served["blocked"] == []
    # The served stream continues the model's stream: predict = draws 0..T-1, uncertainty = T..2T-1.
    ref = uncertainty.mc_predict(model, x, num_samples=T, return_samples=True)
    np.testing.assert_allclose(served["predict"]["samples"], ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(served["predict"]["predictions"], ref.mean(axis=0), rtol=0, atol=1e-6)
    ref2 = uncertainty.mc_predict(model, x, num_samples=T, return_samples=True)
    u = served["uncertainty"]
    np.testing.assert_allclose(u["probabilities"], ref2.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(
        u["predictive_entropy"], uncertainty.predictive_entropy(ref2.mean(axis=0)), atol=1e-5
    )
    np.testing.assert_allclose(u["expected_entropy"], uncertainty.expected_entropy(ref2), atol=1e-5)
    np.testing.assert_allclose(u["mutual_information"], uncertainty.mutual_information(ref2), atol=1e-5)
    with bayesflip.posterior_mean(model):
        mean = model.predict(x, verbose=0)
    np.testing.assert_allclose(served["posterior_mean"]["predictions"], mean, atol=1e-6)


def test_regression_head_uncertainty_matches_mc_predict(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(16, activation="relu", seed=2, init_scale=0.3, kl_weight=1.0),
            DenseFlipout(2, seed=3, init_scale=0.3, kl_weight=1.0),
            heads.GaussianHead(units=1),
        ]
    )
    x = _x()
    served = tf.saved_model.load(bayesflip.export(model, tmp_path / "reg", num_samples=T))
    u = {k: v.numpy() for k, v in served.signatures["uncertainty"](x=tf.constant(x)).items()}
    ref = uncertainty.mc_predict(model, x, num_samples=T)  # a RegressionPredictive
    for name in ("mean", "aleatoric_variance", "epistemic_variance", "total_variance"):
        np.testing.assert_allclose(u[name], getattr(ref, name), rtol=1e-5, atol=1e-6, err_msg=name)


def test_concurrent_serving_calls_never_share_draws(tmp_path):
    served = tf.saved_model.load(
        bayesflip.export(_classifier(), tmp_path / "bnn", num_samples=4, task="classification")
    )
    predict = served.signatures["predict"]
    x = tf.constant(_x(1))
    predict(x=x)
    rows, lock, calls = [], threading.Lock(), 20

    def work():
        mine = [predict(x=x)["samples"].numpy()[:, 0] for _ in range(calls)]
        with lock:
            rows.extend(r for block in mine for r in block)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rows) == 6 * calls * 4
    assert len({tuple(np.round(r, 6)) for r in rows}) == len(rows)  # every draw distinct
    # one atomic skip per call: the counter (Philox layout, 256 per skip) counts every call
    assert int(served.serving_rng_state.numpy()[0]) == 256 * (1 + 6 * calls)


def test_tflite_posterior_mean_builtin_ops_and_sampling_with_select_tf_ops(tmp_path):
    model = _classifier()
    x = _x()
    path = bayesflip.export(model, tmp_path / "bnn", num_samples=T, task="classification")
    converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=["posterior_mean"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # builtin ops only
    interpreter = tf.lite.Interpreter(model_content=converter.convert())
    got = interpreter.get_signature_runner("posterior_mean")(x=x)["predictions"]
    with bayesflip.posterior_mean(model):
        mean = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, mean, rtol=0, atol=1e-5)
    # The sampling graph converts with Select TF ops (running it needs the Flex delegate,
    # which this Python interpreter does not link).
    converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=["predict"])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    converter.experimental_enable_resource_variables = True
    assert len(converter.convert()) > 0


def test_bad_inputs_and_no_partial_folder(tmp_path, monkeypatch):
    model = _classifier()
    with pytest.raises(ValueError, match=r"export: `num_samples` must be a positive int, got 0"):
        bayesflip.export(model, tmp_path / "a", num_samples=0, task="classification")
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no bayesflip variational layers"):
        bayesflip.export(plain, tmp_path / "b")
    with pytest.raises(TypeError, match="export: `model` must be a Keras model, got str"):
        bayesflip.export("model", tmp_path / "c")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="exists and is not an empty folder"):
        bayesflip.export(model, tmp_path / "full", task="classification")
    assert (tmp_path / "full" / "keep.txt").exists()

    def broken_save(*args, **kwargs):
        os.makedirs(os.path.join(args[1], "variables"), exist_ok=True)  # half-written
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        bayesflip.export(model, tmp_path / "out", task="classification")
    assert sorted(os.listdir(tmp_path)) == ["full"]  # neither `out` nor a temporary folder


def test_multiplicative_posteriors_export_with_pruned_posterior_mean(tmp_path):
    """Variational dropout's pruned weights (log α > 3) stay pruned in the served posterior mean."""
    from bayesflip.posteriors import GaussianDropConnect, sparsity

    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(8, activation="relu", posterior="variational_dropout", seed=1),
            DenseFlipout(3, posterior=GaussianDropConnect(rate=0.2), seed=2),
        ]
    )
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    model(x)
    post = model.layers[0].kernel_posterior
    drop = np.random.default_rng(1).random(post.shape) < 0.5
    post.log_sigma2.assign(post.log_sigma2.numpy() + np.where(drop, 20.0, 0.0).astype("float32"))
    assert sparsity(model).pruned == int(drop.sum())
    served = tf.saved_model.load(
        bayesflip.export(model, str(tmp_path / "vd"), num_samples=4, task="regression")
    )
    with bayesflip.posterior_mean(model):
        expected = model(x).numpy()
    np.testing.assert_allclose(
        served.signatures["posterior_mean"](x=tf.constant(x))["predictions"].numpy(),
        expected,
        rtol=1e-6,
        atol=1e-6,
    )
    assert served.signatures["predict"](x=tf.constant(x))["samples"].shape == (4, 5, 3)


@pytest.mark.parametrize("crash", [None, "rename_in"])
def test_overwrite_swaps_atomically_and_a_failed_swap_keeps_the_old_export(tmp_path, monkeypatch, crash):
    """Old export aside, new one renamed in, then the old one deleted; a crash in between restores the old."""
    from bayesflip import serving

    old, new = tmp_path / "bnn", tmp_path / ".bnn.partial-1"
    for folder, text in ((old, "old"), (new, "new")):
        (folder / "variables").mkdir(parents=True)
        (folder / "saved_model.pb").write_text(text)
    real_replace = os.replace

    def crash_on_rename_in(src, dst):
        if ".partial-" in os.path.basename(src):  # the complete new export moving in: "power cut"
            raise OSError("crash between moving the old export aside and renaming the new one in")
        real_replace(src, dst)

    if crash:
        monkeypatch.setattr(serving.os, "replace", crash_on_rename_in)
        with pytest.raises(OSError, match="crash between"):
            serving._replace_folder(str(new), str(old))
        assert sorted(os.listdir(tmp_path)) == [".bnn.partial-1", "bnn"]  # export() then deletes the partial
        assert (old / "saved_model.pb").read_text() == "old"
    else:
        serving._replace_folder(str(new), str(old))
        assert sorted(os.listdir(tmp_path)) == ["bnn"]  # no set-aside folder left
        assert (old / "saved_model.pb").read_text() == "new"


def test_task_is_explicit_or_read_from_a_head_never_from_an_activation(tmp_path):
    # a sigmoid-bounded regressor: its uncertainty is a variance, not entropies
    bounded = keras.Sequential([keras.Input((4,)), DenseFlipout(2, activation="sigmoid", seed=0)])
    with pytest.raises(ValueError, match=r"export: model '.*' does not end in a bayesflip head.*pass task="):
        bayesflip.export(bounded, tmp_path / "a")
    with pytest.raises(ValueError, match=r"export: `task` must be one of .*got 'ordinal'"):
        bayesflip.export(bounded, tmp_path / "a", task="ordinal")
    x = _x()
    served = tf.saved_model.load(
        bayesflip.export(bounded, tmp_path / "reg", num_samples=T, task="regression")
    )
    assert sorted(served.signatures["uncertainty"](x=tf.constant(x))) == ["epistemic_variance", "mean"]
    # the same outputs as independent Bernoulli probabilities: entropies per unit
    served = tf.saved_model.load(bayesflip.export(bounded, tmp_path / "bin", num_samples=T, task="binary"))
    u = {k: v.numpy() for k, v in served.signatures["uncertainty"](x=tf.constant(x)).items()}
    ref = uncertainty.mc_predict(bounded, x, num_samples=T, return_samples=True)  # the same T draws
    two_class = np.stack([1 - ref, ref], axis=-1)
    np.testing.assert_allclose(u["probabilities"], ref.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(
        u["predictive_entropy"], uncertainty.predictive_entropy(two_class.mean(axis=0)), atol=1e-5
    )
    np.testing.assert_allclose(u["expected_entropy"], uncertainty.expected_entropy(two_class), atol=1e-5)
    np.testing.assert_allclose(u["mutual_information"], uncertainty.mutual_information(two_class), atol=1e-5)
    # a head decides; a contradicting task is an error
    reg = keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=3), heads.GaussianHead()])
    with pytest.raises(ValueError, match=r"ends in GaussianHead .* task is 'regression', got task='binary'"):
        bayesflip.export(reg, tmp_path / "c", task="binary")
    with pytest.raises(ValueError, match=r"`from_logits` does not apply .*GaussianHead"):
        bayesflip.export(reg, tmp_path / "c", from_logits=True)

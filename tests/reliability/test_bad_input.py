"""Bad input across the public API: each case must fail *clearly*.

Every case asserts the exception type and that the message names the object
(layer or function), the argument, what was expected and what came. Cases
already covered elsewhere (tests/layers/test_dense.py, test_conv.py,
test_recurrent.py, tests/test_priors.py, tests/test_elbo.py,
tests/test_cli.py, tests/calibration/test_metrics.py) are not repeated here;
docs/reliability.md counts both.

``CASES`` rows are ``(id, call, exception type, [regex, ...])``; every regex
must match the message.
"""

from __future__ import annotations

import os
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip import calibration as cal
from bayesflip import cli, priors
from bayesflip import uncertainty as unc
from bayesflip.elbo import KLAnnealing, set_kl_weight
from bayesflip.layers import (
    Conv1DTransposeFlipout,
    Conv2DFlipout,
    Conv3DFlipout,
    DenseFlipout,
    GRUFlipout,
    LSTMFlipout,
)

P = np.array([[0.6, 0.4], [0.3, 0.7]])


def _model():
    return keras.Sequential([keras.Input((4,)), DenseFlipout(2, seed=0, name="d")], name="m")


def _call_after_build(layer, first, second):
    layer(np.ones(first, "float32"))
    return layer(np.ones(second, "float32"))


def _keras_layer(name):
    """Keras' input-spec errors name the layer as ``layer 'L'`` (Keras >= 3.13) or ``layer "L"`` (older)."""
    return rf"""layer ['"]{name}['"]"""


_KERAS_LAYER_L = _keras_layer("L")

CASES = [
    # ---------------------------------------------------------------- layers: constructor
    (
        "dense-units-str",
        lambda: DenseFlipout("3", name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`units`", r"positive int", r"got '3'"],
    ),
    (
        "dense-init_scale-str",
        lambda: DenseFlipout(2, init_scale="a", name="L"),
        TypeError,
        [r"DenseFlipout 'L'", r"`init_scale`", r"must be a number", r"got 'a'"],
    ),
    (
        "dense-init_scale-nan",
        lambda: DenseFlipout(2, init_scale=float("nan"), name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`init_scale`", r"finite and greater than `min_scale`", r"got nan"],
    ),
    (
        "dense-min_scale-negative",
        lambda: DenseFlipout(2, min_scale=-1.0, name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`min_scale`", r">= 0", r"got -1.0"],
    ),
    (
        "dense-init_scale-below-min_scale",
        lambda: DenseFlipout(2, init_scale=0.1, min_scale=0.5, name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`init_scale`", r"greater than `min_scale`=0.5", r"got 0.1"],
    ),
    (
        "dense-kl_weight-nan",
        lambda: DenseFlipout(2, kl_weight=float("nan"), name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`kl_weight`", r"finite number >= 0", r"got nan"],
    ),
    (
        "dense-kl_weight-str",
        lambda: DenseFlipout(2, kl_weight="x", name="L"),
        TypeError,
        [r"DenseFlipout 'L'", r"`kl_weight`", r"must be a number", r"got 'x'"],
    ),
    (
        "dense-estimator-not-str",
        lambda: DenseFlipout(2, estimator=3, name="L"),
        ValueError,
        [
            r"DenseFlipout 'L'",
            r"estimator",
            r"expected one of \['flipout', 'shared', 'local'\]",
            r"unknown estimator 3",
        ],
    ),
    (
        "dense-prior-int",
        lambda: DenseFlipout(2, prior=3, name="L"),
        TypeError,
        [r"DenseFlipout 'L'", r"`prior`", r"Prior, a name or a config dict", r"got 3"],
    ),
    (
        "dense-prior-config-of-non-prior",
        lambda: DenseFlipout(
            2, prior={"class_name": "Zeros", "config": {}, "module": "keras.initializers"}, name="L"
        ),
        TypeError,
        [r"DenseFlipout 'L'", r"`prior`", r"bayesflip prior", r"Zeros"],
    ),
    (
        "dense-seed-negative",
        lambda: DenseFlipout(2, seed=-1, name="L"),
        ValueError,
        [r"DenseFlipout 'L'", r"`seed`", r"non-negative int", r"got -1"],
    ),
    (
        "dense-seed-float",
        lambda: DenseFlipout(2, seed=1.5, name="L"),
        TypeError,
        [r"DenseFlipout 'L'", r"`seed`", r"int or None", r"got 1.5"],
    ),
    (
        "conv1d-kernel_size-zero",
        lambda: Conv2DFlipout(2, 0, name="L"),
        ValueError,
        [r"Conv2DFlipout 'L'", r"`kernel_size`", r"int >= 1", r"got 0"],
    ),
    (
        "conv2d-dilation-zero",
        lambda: Conv2DFlipout(2, 3, dilation_rate=0, name="L"),
        ValueError,
        [r"Conv2DFlipout 'L'", r"`dilation_rate`", r"int >= 1 or a tuple of 2", r"got 0"],
    ),
    (
        "conv2d-filters-float",
        lambda: Conv2DFlipout(2.5, 3, name="L"),
        ValueError,
        [r"Conv2DFlipout 'L'", r"`filters`", r"positive int", r"got 2.5"],
    ),
    (
        "conv1d-transpose-strides-negative",
        lambda: Conv1DTransposeFlipout(2, 3, strides=-1, name="L"),
        ValueError,
        [r"Conv1DTransposeFlipout 'L'", r"`strides`", r"int >= 1", r"got -1"],
    ),
    # Keras' own checks: clear, but they name the argument/value, not the layer instance
    (
        "dense-activation-unknown",
        lambda: DenseFlipout(2, activation="nope", name="L"),
        ValueError,
        [r"activation function identifier", r"nope"],
    ),
    (
        "lstm-unknown-keyword",
        lambda: LSTMFlipout(2, dropout=0.5, name="L"),
        ValueError,
        [r"Unrecognized keyword arguments passed to LSTMFlipout", r"'dropout': 0.5"],
    ),
    (
        "lstm-units-negative",
        lambda: LSTMFlipout(-2, name="L"),
        ValueError,
        [r"LSTMFlipout 'L'", r"`units`", r"positive int", r"got -2"],
    ),
    (
        "gru-prior-unknown",
        lambda: GRUFlipout(2, prior="cauchy", name="L"),
        ValueError,
        [r"GRUFlipout 'L'", r"`prior`", r"expected one of \[.*'normal'.*\]", r"'cauchy'"],
    ),
    # ---------------------------------------------------------------- layers: inputs
    (
        "dense-unknown-last-dim",
        lambda: DenseFlipout(2, name="L")(keras.Input((None,))),
        ValueError,
        [r"DenseFlipout 'L'", r"last input dimension", r"known", r"\(None, None\)"],
    ),
    (
        "dense-scalar-input",
        lambda: DenseFlipout(2, name="L")(np.float32(1.0)),
        ValueError,
        [_KERAS_LAYER_L, r"Input 0", r"min_ndim=2", r"ndim=0"],
    ),
    (
        "dense-complex-input",
        lambda: DenseFlipout(2, name="L")(np.ones((2, 3), np.complex64)),
        TypeError,
        [r"DenseFlipout 'L'", r"inputs", r"numeric \(float or integer\)", r"complex64"],
    ),
    (
        "conv2d-rank-changed-after-build",
        lambda: _call_after_build(Conv2DFlipout(2, 3, name="L"), (1, 5, 5, 2), (1, 2, 5, 5, 2)),
        ValueError,
        [_KERAS_LAYER_L, r"Input 0", r"expected ndim=4", r"found ndim=5"],
    ),
    (
        "conv3d-wrong-rank",
        lambda: Conv3DFlipout(2, 3, name="L")(np.ones((1, 5, 5, 1), "float32")),
        ValueError,
        [_KERAS_LAYER_L, r"Input 0", r"expected ndim=5", r"found ndim=4"],
    ),
    (
        "conv2d-input-smaller-than-kernel",
        lambda: Conv2DFlipout(2, 5, name="L")(np.ones((1, 3, 3, 1), "float32")),
        ValueError,
        [
            r"Conv2DFlipout 'L'",
            r"padding='valid'",
            r"dilated kernel size \(5, 5\)",
            r"got input shape \(1, 3, 3, 1\)",
        ],
    ),
    (
        "lstm-string-input",
        lambda: LSTMFlipout(2, name="L")(tf.fill([1, 3, 2], "a")),
        TypeError,
        [r"LSTMFlipout 'L'", r"inputs", r"numeric", r"dtype string"],
    ),
    (
        "lstm-rank-4",
        lambda: LSTMFlipout(2, name="L")(np.ones((1, 3, 2, 2), "float32")),
        ValueError,
        [_KERAS_LAYER_L, r"Input 0", r"expected ndim=3", r"found ndim=4"],
    ),
    (
        "gru-feature-size-changed",
        lambda: _call_after_build(GRUFlipout(2, name="L"), (1, 3, 2), (1, 3, 5)),
        ValueError,
        [_KERAS_LAYER_L, r"axis -1", r"value 2", r"\(1, 3, 5\)"],
    ),
    # ---------------------------------------------------------------- priors
    (
        "normal-loc-nan",
        lambda: priors.Normal(loc=float("nan")),
        ValueError,
        [r"Normal prior", r"`loc`", r"finite number", r"got nan"],
    ),
    (
        "normal-loc-str",
        lambda: priors.Normal(loc="0"),
        ValueError,  # the one error type of bayesflip._checks for a bad number
        [r"Normal prior", r"`loc`", r"finite number", r"got '0'"],
    ),
    (
        "mixture-pi-one",
        lambda: priors.ScaleMixtureNormal(pi=1.0),
        ValueError,
        [r"ScaleMixtureNormal prior", r"`pi`", r"\(0, 1\)", r"got 1.0"],
    ),
    (
        "mixture-scale_2-zero",
        lambda: priors.ScaleMixtureNormal(scale_2=0.0),
        ValueError,
        [r"ScaleMixtureNormal prior", r"`scale_2`", r"positive finite", r"got 0.0"],
    ),
    (
        "prior-get-config-of-non-prior",
        lambda: priors.get({"class_name": "Zeros", "config": {}, "module": "keras.initializers"}),
        TypeError,
        [r"Config", r"Zeros", r"does not describe", r"bayesflip prior"],
    ),
    # ---------------------------------------------------------------- loss helpers
    (
        "set_kl_weight-neither",
        lambda: set_kl_weight(_model()),
        ValueError,
        [r"set_kl_weight", r"`kl_weight`", r"`num_examples`", r"exactly one"],
    ),
    (
        "set_kl_weight-num_examples-float",
        lambda: set_kl_weight(_model(), num_examples=10.0),
        ValueError,
        [r"set_kl_weight", r"`num_examples`", r"positive int", r"got 10.0"],
    ),
    (
        "set_kl_weight-inf",
        lambda: set_kl_weight(_model(), float("inf")),
        ValueError,
        [r"set_kl_weight", r"`kl_weight`", r"finite number >= 0", r"got inf"],
    ),
    (
        "set_kl_weight-not-a-model",
        lambda: set_kl_weight("m", 0.1),
        TypeError,
        [r"variational_layers", r"Keras model or layer", r"got str"],
    ),
    (
        "KLAnnealing-schedule",
        lambda: KLAnnealing(1e-3, 3, schedule="exp"),
        ValueError,
        [r"KLAnnealing", r"`schedule`", r"'linear' or 'cosine'", r"got 'exp'"],
    ),
    (
        "KLAnnealing-start-negative",
        lambda: KLAnnealing(1e-3, 3, start=-1.0),
        ValueError,
        [r"KLAnnealing", r"`kl_weight`", r">= 0", r"got -1.0"],
    ),
    (
        "layer-kl_weight-setter-negative",
        lambda: setattr(_model().layers[0], "kl_weight", -1.0),
        ValueError,
        [r"DenseFlipout 'd'", r"`kl_weight`", r">= 0", r"got -1.0"],
    ),
    (
        "posterior-mean-no-variational-layers",
        lambda: bayesflip.set_posterior_mean(
            keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)], name="det")
        ),
        ValueError,
        [r"set_posterior_mean", r"model 'det'", r"variational layers"],
    ),
    # ---------------------------------------------------------------- uncertainty
    (
        "mc_predict-num_samples-float",
        lambda: unc.mc_predict(_model(), np.ones((2, 4), "f"), num_samples=2.5),
        ValueError,
        [r"mc_predict", r"`num_samples`", r"positive int", r"got 2.5"],
    ),
    (
        "mc_predict-model-not-keras",
        lambda: unc.mc_predict("m", np.ones((2, 4), "f"), num_samples=2),
        TypeError,
        [r"mc_predict", r"`model`", r"Keras model or layer", r"got str"],
    ),
    (
        "mc_predict-empty-batch",
        lambda: unc.mc_predict(_model(), np.ones((0, 4), "f"), num_samples=2),
        ValueError,
        [r"mc_predict", r"empty", r"batch dimension 0"],
    ),
    (
        "mc_predict-batch_size-zero",
        lambda: unc.mc_predict(_model(), np.ones((2, 4), "f"), num_samples=2, batch_size=0),
        ValueError,
        [r"mc_predict", r"`batch_size`", r"positive int", r"got 0"],
    ),
    (
        "mc_predict-wrong-feature-size",
        lambda: unc.mc_predict(_model(), np.ones((2, 5), "f"), num_samples=2),
        # clear Keras message, but inside a tf.function "in user code:" trace (see docs/reliability.md)
        ValueError,
        [_keras_layer("d"), r"axis -1", r"value 4", r"\(None, 5\)"],
    ),
    (
        "predictive_entropy-off-simplex",
        lambda: unc.predictive_entropy([[0.6, 0.6]]),
        ValueError,
        [r"predictive_entropy", r"`probs`", r"probability simplex", r"off by 0.2"],
    ),
    (
        "predictive_entropy-nan",
        lambda: unc.predictive_entropy([[np.nan, 1.0]]),
        ValueError,
        [r"predictive_entropy", r"`probs`", r"NaN or infinite"],
    ),
    (
        "predictive_entropy-strings",
        lambda: unc.predictive_entropy([["a", "b"]]),
        TypeError,
        [r"predictive_entropy", r"`probs`", r"numeric", r"<U1"],
    ),
    (
        "predictive_entropy-scalar",
        lambda: unc.predictive_entropy(0.5),
        ValueError,
        [r"predictive_entropy", r"`probs`", r"rank >= 1", r"shape \(\)"],
    ),
    (
        "mutual_information-empty",
        lambda: unc.mutual_information(np.zeros((0, 2, 3))),
        ValueError,
        [r"mutual_information", r"`sample_probs`", r"empty", r"\(0, 2, 3\)"],
    ),
    (
        "regression_uncertainty-shape-mismatch",
        lambda: unc.regression_uncertainty(np.zeros((3, 4)), np.ones((3, 5))),
        ValueError,
        [
            r"regression_uncertainty",
            r"`sample_means` and `sample_scales`",
            r"same shape",
            r"\(3, 4\) and \(3, 5\)",
        ],
    ),
    (
        "regression_uncertainty-negative-scale",
        lambda: unc.regression_uncertainty(np.zeros((3, 4)), -np.ones((3, 4))),
        ValueError,
        [r"regression_uncertainty", r"`sample_scales`", r">= 0", r"minimum of -1"],
    ),
    (
        "prediction_interval-level-one",
        lambda: unc.prediction_interval(np.zeros((3, 4)), np.ones((3, 4)), level=1.0),
        ValueError,
        [r"prediction_interval", r"`level`", r"in \(0, 1\)", r"got 1.0"],
    ),
    (
        "ood_auroc-empty",
        lambda: unc.ood_auroc([], [1.0]),
        ValueError,
        [r"ood_auroc", r"in- and one out-of-distribution score", r"at least one", r"got 0 and 1"],
    ),
    (
        "ood_auroc-nan",
        lambda: unc.ood_auroc([np.nan], [1.0]),
        ValueError,
        [r"ood_auroc", r"scores", r"NaN or infinite"],
    ),
    (
        "predictive_cdf-zero-scale",
        lambda: unc.predictive_cdf([1.0], [0.0], [0.0]),
        ValueError,
        [r"predictive_cdf", r"`scale`", r"> 0", r"minimum of 0"],
    ),
    # ---------------------------------------------------------------- calibration
    (
        "ece-num_bins-bool",
        lambda: cal.expected_calibration_error([0, 1], P, num_bins=True),
        ValueError,
        [r"expected_calibration_error", r"`num_bins`", r"positive int", r"got True"],
    ),
    (
        "ece-probs-rank-3",
        lambda: cal.expected_calibration_error([0, 1], np.ones((2, 2, 2)) / 2),
        ValueError,
        [r"expected_calibration_error", r"`probs`", r"\(num_examples, num_classes\)", r"\(2, 2, 2\)"],
    ),
    (
        "ece-probs-inf",
        lambda: cal.expected_calibration_error([0, 1], [[np.inf, 0], [0.3, 0.7]]),
        ValueError,
        [r"expected_calibration_error", r"`probs`", r"NaN or infinite"],
    ),
    (
        "ece-one-hot-wrong-classes",
        lambda: cal.expected_calibration_error([[1, 0, 0], [0, 1, 0]], P),
        ValueError,
        [r"expected_calibration_error", r"`labels`", r"one-hot \(2, 2\)", r"got shape \(2, 3\)"],
    ),
    (
        "brier-too-few-labels",
        lambda: cal.brier_score([0], P),
        ValueError,
        [r"brier_score", r"labels", r"2 predictions", r"got 1"],
    ),
    (
        "nll-logits-nan",
        lambda: cal.negative_log_likelihood([0, 1], [[np.nan, 0], [0, 0]], from_logits=True),
        ValueError,
        [r"negative_log_likelihood", r"`logits`", r"NaN or infinite"],
    ),
    (
        "classwise-empty",
        lambda: cal.classwise_calibration_error([], np.zeros((0, 2))),
        ValueError,
        [r"classwise_calibration_error", r"`probs`", r"empty", r"\(0, 2\)"],
    ),
    (
        "calibration_bins-num_bins-zero",
        lambda: cal.calibration_bins([0, 1], P, num_bins=0),
        ValueError,
        [r"calibration_bins", r"`num_bins`", r"positive int", r"got 0"],
    ),
    (
        "quantile-num_levels-zero",
        lambda: cal.quantile_calibration_error(pit=[0.5], num_levels=0),
        ValueError,
        [r"quantile_calibration", r"`num_levels`", r"positive int", r"got 0"],
    ),
    (
        "interval_coverage-empty",
        lambda: cal.interval_coverage([], [], []),
        ValueError,
        [r"interval_coverage", r"`y_true`", r"empty", r"\(0,\)"],
    ),
    (
        "interval_coverage-nan",
        lambda: cal.interval_coverage([np.nan], [0.0], [1.0]),
        ValueError,
        [r"interval_coverage", r"`y_true`, `lower` and `upper`", r"finite", r"NaN"],
    ),
]


@pytest.mark.parametrize("call, exc, patterns", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_clearly(call, exc, patterns):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"


def test_case_ids_are_distinct_and_enough():
    ids = [c[0] for c in CASES]
    assert len(set(ids)) == len(ids)
    assert len(ids) >= 25


# --------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["demo", "--batch-size", "-4"], ["--batch-size", "expected a positive integer", "got -4"]),
        (["demo", "--seed", "abc"], ["--seed", "invalid int value", "'abc'"]),
        (["demo", "--learning-rate", "nan"], ["--learning-rate", "expected a positive number", "got nan"]),
        (["demo", "--unknown-flag"], ["unrecognized arguments", "--unknown-flag"]),
        (["train"], ["invalid choice: 'train'", "choose from"]),
    ],
    ids=["batch-size-negative", "seed-not-int", "learning-rate-nan", "unknown-flag", "unknown-command"],
)
def test_cli_bad_options_exit_2_with_a_clear_message(argv, fragments, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def _main_as_nobody(argv: list[str]) -> tuple[int, str]:
    """``cli.main(argv)`` in a forked child that first drops root's privileges to ``nobody``.

    Returns the exit status and what the child wrote to stderr. A fork, not a new
    interpreter: the interpreter may live where ``nobody`` cannot read it (e.g. under
    ``/root``); the child runs only the argument checks of the command line, no TensorFlow.
    """
    import pwd

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        status = 70
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            with os.fdopen(write_end, "w") as err:
                sys.stderr = err
                status = cli.main(argv)
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as err:
        text = err.read()
    _, wait_status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(wait_status), text


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX permissions")
def test_cli_unwritable_output_folder(capsys):
    """A folder the user may not write to: exit status 2 and a message naming it.

    Root writes anywhere, so as root (as CI runs) the command runs in a child process that
    drops its privileges to ``nobody`` first; other users run it in this process.
    """
    import shutil
    import tempfile

    base = tempfile.mkdtemp(prefix="bayesflip-locked-")  # under /tmp: every user may traverse it
    locked = os.path.join(base, "locked")
    os.mkdir(locked)
    os.chmod(base, 0o755)
    os.chmod(locked, 0o555)
    target = os.path.join(locked, "out")
    argv = ["demo", "--output", target, "--quiet"]
    try:
        if os.geteuid() == 0:
            status, err = _main_as_nobody(argv)
        else:
            status, err = cli.main(argv), capsys.readouterr().err
        assert status == 2, err
        assert "bayesflip demo" in err and "--output" in err and target in err and "cannot create" in err
        assert "Permission denied" in err
        assert not os.path.exists(target)
    finally:
        os.chmod(locked, 0o700)
        shutil.rmtree(base)


def test_cli_output_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = str(blocker / "out")
    assert cli.main(["demo", "--output", target, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and target in err


# --------------------------------------------------------------------------- NaN / inf: documented behaviour
def test_nan_input_propagates_only_to_its_own_example():
    """Documented: a NaN/inf input is not checked inside the graph (that would cost a
    reduction per call); it propagates to the outputs of *its own* example only,
    in every estimator, because flipout's perturbation is per-example."""
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    x[1, 2] = np.nan
    for estimator in ("flipout", "shared", "local"):
        y = DenseFlipout(5, estimator=estimator, seed=0)(x).numpy()
        assert np.all(np.isnan(y[1])), estimator
        assert np.all(np.isfinite(np.delete(y, 1, axis=0))), estimator


def test_nan_data_stops_training_with_terminate_on_nan():
    """Documented: with NaN in the training data the loss becomes NaN; the
    recommended guard, ``keras.callbacks.TerminateOnNaN``, stops ``fit`` at the
    first such batch (the weights updated by that batch are NaN, so restore a
    checkpoint)."""
    x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
    y = np.zeros((32, 1), "float32")
    x[20] = np.nan
    model = keras.Sequential([keras.Input((3,)), DenseFlipout(1, seed=0, kl_weight=1e-3)])
    model.compile("sgd", "mse")
    history = model.fit(
        x, y, batch_size=8, epochs=3, shuffle=False, verbose=0, callbacks=[keras.callbacks.TerminateOnNaN()]
    )
    assert len(history.history["loss"]) == 1  # stopped during the first epoch
    assert np.isnan(history.history["loss"][0])
    assert model.stop_training

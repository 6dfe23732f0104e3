"""The ``bayesflip`` command line and the demo job."""

import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bayesflip import cli
from bayesflip.datasets import corrupt_images, load_digits


def _scores_of(report):
    return {
        net: {k: report[net][k] for k in ("accuracy", "nll", "brier", "ece")}
        for net in ("deterministic", "bayesian")
    }


@pytest.mark.slow  # a fresh interpreter
def test_demo_end_to_end_writes_a_consistent_and_reproducible_report(tmp_path):
    out = os.path.join(tmp_path, "out")
    argv = [
        "demo",
        "--output",
        out,
        "--epochs",
        "3",
        "--num-samples",
        "4",
        "--posterior-temperature",
        "0.5",
        "--kl-warmup-epochs",
        "2",
    ]
    assert cli.main([*argv, "--quiet"]) == 0
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    # the same seed in a fresh process gives bit-identical figures
    out2 = os.path.join(tmp_path, "out2")
    proc = subprocess.run(
        [sys.executable, "-m", "bayesflip", *argv[:2], out2, *argv[3:], "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(os.path.join(out2, "report.json")) as f:
        assert _scores_of(json.load(f)) == _scores_of(report)
    # the report says which posterior it is about, and the layers got kl_weight = T / N
    config = report["config"]
    assert config["posterior"] == "tempered (T = 0.5)" and config["posterior_temperature"] == 0.5
    assert config["kl_weight"] == pytest.approx(0.5 / config["train_examples"])
    assert config["kl_warmup_epochs"] == 2 and config["schedule"] == "cosine"
    assert report["versions"]["tensorflow"] and report["versions"]["keras"]
    for net in ("deterministic", "bayesian"):
        scores = report[net]
        assert 0.0 <= scores["accuracy"] <= 1.0 and 0.0 <= scores["ece"] <= 1.0
        assert scores["nll"] > 0 and 0.0 <= scores["brier"] <= 2.0
    config = report["config"]
    assert config["train_examples"] + config["temperature_examples"] + config["test_examples"] == 1797
    for net in ("deterministic", "bayesian"):
        assert report[net]["temperature"] > 0
        # temperature scaling changes confidences, never the predicted class
        assert report[net]["after_temperature_scaling"]["accuracy"] == report[net]["accuracy"]
        for suffix in ("", "_temperature_scaled"):
            assert os.path.getsize(os.path.join(out, f"reliability_{net}{suffix}.png")) > 1000
    for kind in ("permuted", "noise"):
        for score in ("predictive", "mutual"):
            assert os.path.getsize(os.path.join(out, f"uncertainty_{kind}_{score}.png")) > 1000
    unc = report["uncertainty"]
    for kind in ("in_distribution", "permuted", "noise"):
        assert 0.0 <= unc[kind]["mutual_information"] <= unc[kind]["predictive_entropy"] + 1e-6
    # The Laplace column: the deterministic net made Bayesian post hoc (its parameters, its argmax
    # under the probit GLM predictive up to near-ties), timed against that net's training.
    la, det = report["laplace"], report["deterministic"]
    assert la["parameters"] == det["parameters"] and la["prior_precision"] > 0
    assert abs(la["accuracy"] - det["accuracy"]) <= 0.01
    assert la["fit_fraction_of_training"] == pytest.approx(la["fit_seconds"] / det["train_seconds"])
    assert la["after_temperature_scaling"]["accuracy"] == la["accuracy"]
    for kind in ("permuted", "noise"):
        assert 0.0 <= unc[kind]["laplace"]["auroc_entropy_laplace"] <= 1.0
    assert os.path.getsize(os.path.join(out, "reliability_laplace.png")) > 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--epochs", "0"], "expected a positive integer, got 0"),
        (["demo", "--num-samples", "x"], "expected a positive integer, got 'x'"),
        (["demo", "--estimator", "magic"], "invalid choice: 'magic'"),
        (["demo", "--learning-rate", "-1"], "expected a positive number"),
        (["demo", "--posterior-temperature", "0"], "expected a positive number"),
        (["demo", "--kl-warmup-epochs", "-1"], "expected a non-negative integer, got -1"),
        (["demo", "--schedule", "step"], "invalid choice: 'step'"),
        ([], "required"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_output_that_is_a_file(tmp_path, capsys):
    path = os.path.join(tmp_path, "file.txt")
    open(path, "w").close()
    assert cli.main(["demo", "--output", path, "--quiet"]) == 2
    assert "exists and is not a folder" in capsys.readouterr().err


def test_cli_defaults_are_the_demo_defaults():
    from bayesflip import demo

    args = vars(cli.build_parser().parse_args(["demo"]))
    assert args["posterior_temperature"] == demo.DEFAULT_TEMPERATURE
    assert args["kl_warmup_epochs"] == demo.DEFAULT_KL_WARMUP_EPOCHS
    assert args["schedule"] == demo.DEFAULT_SCHEDULE
    # every option of the demo defaults to run_demo's own default
    signature = inspect.signature(demo.run_demo).parameters
    shared = set(args) & set(signature)
    assert shared == set(signature) - {"verbose"}
    assert {k: args[k] for k in shared} == {k: signature[k].default for k in shared}


@pytest.mark.slow  # a fresh interpreter
def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "bayesflip", "demo", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and "--estimator" in proc.stdout


def test_digits_split_and_corruptions():
    d = load_digits(seed=1)
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.x_train.min() >= 0.0 and d.x_train.max() <= 1.0
    assert sorted(np.unique(d.y_test)) == list(range(10))
    x = d.x_test[:10]
    perm = corrupt_images(x, "permuted")
    np.testing.assert_allclose(np.sort(perm, axis=1), np.sort(x, axis=1))  # same pixels, shuffled
    assert not np.array_equal(perm, x)
    np.testing.assert_allclose(corrupt_images(x, "inverted"), 1 - x)
    with pytest.raises(ValueError, match="unknown `kind` 'blur'"):
        corrupt_images(x, "blur")
    with pytest.raises(ValueError, match="test_fraction"):
        load_digits(test_fraction=1.5)


_STARTUP_NOISE = ("onednn", "cuda", "absl")


@pytest.mark.slow  # two fresh interpreters (~25 s)
def test_cli_starts_without_tensorflow_startup_lines(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user's shell has it
    runs = {
        "help": [sys.executable, "-m", "bayesflip", "demo", "--help"],
        "demo": [
            sys.executable,
            "-m",
            "bayesflip",
            "demo",
            "--output",
            str(tmp_path / "out"),
            "--epochs",
            "1",
            "--num-samples",
            "2",
            "--quiet",
        ],
    }
    for what, command in runs.items():
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        noisy = [line for line in proc.stderr.splitlines() if any(w in line.lower() for w in _STARTUP_NOISE)]
        assert not noisy, (what, noisy)
    assert (
        "usage: bayesflip demo"
        in subprocess.run(
            runs["help"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
        ).stdout
    )
    # stderr is restored after TensorFlow loads: our own errors still show
    proc = subprocess.run(
        [sys.executable, "-m", "bayesflip", "demo", "--epochs", "0"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "expected a positive integer, got 0" in proc.stderr
    assert not [line for line in proc.stderr.splitlines() if any(w in line.lower() for w in _STARTUP_NOISE)]


def test_quiet_stderr_silences_fd2_and_restores_it(capfd):
    from bayesflip._startup import quiet_stderr

    with quiet_stderr():
        os.write(2, b"hidden\n")
    os.write(2, b"shown\n")
    err = capfd.readouterr().err
    assert "hidden" not in err and "shown" in err


@pytest.mark.parametrize(
    "orig_argv, argv0, expected",
    [
        (["python", "-m", "bayesflip", "demo"], "-m", True),
        (["python", "-m", "pytest", "tests"], "-m", False),
        (["/venv/bin/python", "/venv/bin/bayesflip", "demo"], "/venv/bin/bayesflip", True),
        (["python", "train.py"], "train.py", False),
    ],
)
def test_started_as_cli(monkeypatch, orig_argv, argv0, expected):
    from bayesflip._startup import started_as_cli

    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    monkeypatch.setattr(sys, "argv", [argv0])
    assert started_as_cli() is expected

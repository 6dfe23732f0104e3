"""Shared fixtures for the bayesflip test suite."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Scripts that the tests run in subprocesses (they split the CPU into logical
# devices or join a multi-worker cluster at import): never import them in the
# test process, not even for --doctest-modules.
collect_ignore = [
    "calibration/mirrored_metrics_script.py",
    "distribute/backup_restore_worker.py",
    "distribute/mirrored_checks.py",
    "distribute/multiworker_worker.py",
]

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_keras_session():
    """Fresh layer names per test (names appear in error messages) and the same global seed.

    Unseeded initializers draw from Keras' global RNG: without a reset each
    test's weights depended on which tests ran before it in the same worker.
    """
    # free_memory=False: the gc.collect() it would run costs ~1 s per test once TF/TFP are imported.
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def load_benchmark(name: str):
    """Import the benchmark module ``benchmarks/<name>.py`` (the ``benchmarks`` package)."""
    import importlib

    return importlib.import_module(f"benchmarks.{name}")

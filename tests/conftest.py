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
    """Import ``benchmarks/<name>.py`` (not a package) as a module, once per process."""
    import importlib.util
    import sys

    module_name = f"bayesflip_benchmark_{name}"
    if module_name not in sys.modules:
        path = os.path.join(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", f"{name}.py"
        )
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name]

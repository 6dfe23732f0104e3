"""Shared pieces of the distribute tests: a small Bayesian classifier, its data,
and running helper scripts in fresh Python processes.

Tests that need two logical CPU devices or several workers run their TF code in
subprocesses (``python tests/distribute/<script>.py``): TensorFlow's devices can
be split only before they are initialized, which in a shared pytest process
(xdist included) another test may already have done.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
N_EXAMPLES, N_FEATURES, N_CLASSES = 64, 6, 3


def data(seed: int = 0):
    """A small 3-class problem (float32 features, int32 labels)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_EXAMPLES, N_FEATURES)).astype("float32")
    w = rng.normal(size=(N_FEATURES, N_CLASSES))
    y = np.argmax(x @ w + 0.3 * rng.normal(size=(N_EXAMPLES, N_CLASSES)), axis=1).astype("int32")
    return x, y


def make_model(
    seed: int = 1,
    init_scale: float = 0.1,
    estimator: str = "flipout",
    compile: bool = True,
    lr: float = 0.05,
    optimizer: str = "sgd",
    posterior=None,
):
    """Two flipout layers; ``kl_weight = 1 / N``; deterministic given ``seed``."""
    import keras

    from bayesflip.layers import DenseFlipout

    keras.utils.set_random_seed(seed)
    kw = dict(init_scale=init_scale, kl_weight=1.0 / N_EXAMPLES, estimator=estimator, posterior=posterior)
    model = keras.Sequential(
        [
            keras.Input((N_FEATURES,)),
            DenseFlipout(16, activation="relu", seed=seed, **kw),
            DenseFlipout(N_CLASSES, seed=seed + 100, **kw),
        ]
    )
    if compile:
        opt = keras.optimizers.SGD(lr) if optimizer == "sgd" else keras.optimizers.Adam(lr)
        model.compile(
            opt,
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
        )
    return model


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env.update(
        KERAS_BACKEND="tensorflow",
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def run_script(script: str, *args: str, timeout: float = 180) -> dict:
    """Run ``tests/distribute/<script>`` and return the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"{script} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (bound briefly, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def run_once(tmp_path_factory, name: str, compute) -> dict:
    """``compute()`` once per pytest session, even across pytest-xdist workers.

    The first worker computes under a file lock and stores the JSON result in
    the session's shared temporary directory; the others wait and read it.
    (``xdist_group`` marks are not enough: with pytest 9 / xdist 3.8 the
    loadgroup scheduler was measured to spread a group over both workers.)
    ``compute`` receives a fresh directory it may write into.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    path = root / f"{name}.json"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return json.loads(path.read_text())
        work = root / f"{name}_work"
        work.mkdir(exist_ok=True)
        result = compute(work)
        path.write_text(json.dumps(result))
        return result


def max_abs_diff(a, b) -> float:
    """Largest absolute difference between two equally long lists of weight arrays.

    The lists must match in length and in each array's shape (a missing or
    extra weight, or a broadcastable shape, fails instead of being skipped).
    """
    a, b = [np.asarray(u) for u in a], [np.asarray(v) for v in b]
    assert len(a) == len(b), f"{len(a)} weights vs {len(b)}"
    assert [u.shape for u in a] == [v.shape for v in b], ([u.shape for u in a], [v.shape for v in b])
    return max(float(np.max(np.abs(u - v))) if u.size else 0.0 for u, v in zip(a, b, strict=True))

"""MultiWorkerMirroredStrategy end to end: two local worker processes.

``TF_CONFIG`` points both at free 127.0.0.1 ports; the processes are bounded in
time and killed on failure. Keras 3's ``model.fit`` fails under this strategy
(keras-team/keras#20585); ``bayesflip.distribute.fit`` must work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import bayesflip
from bayesflip import distribute as bd
from tests.distribute._common import HERE, ROOT, data, free_ports, make_model, run_once, subprocess_env
from tests.distribute._common import max_abs_diff as _max_abs_diff

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distribute")]  # subprocesses
TIMEOUT_S = 300


@pytest.fixture(scope="session")  # once per (xdist) process, whatever the test order
def workers(tmp_path_factory):
    return run_once(tmp_path_factory, "multiworker", _run_workers)


def _run_workers(out):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    try:
        for i in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(HERE / "multiworker_worker.py"), str(out)],
                    env=subprocess_env(TF_CONFIG=tf_config),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=str(ROOT),
                )
            )
        logs = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (stdout, stderr) in zip(procs, logs):
        assert p.returncode == 0, f"worker failed ({p.returncode}):\n{stdout[-2000:]}\n{stderr[-5000:]}"
    results = [json.loads((out / f"result_{i}.json").read_text()) for i in range(2)]
    return {"results": results, "stdout": [log[0] for log in logs], "dir": str(out)}


def test_cluster_and_chief(workers):
    r = workers["results"]
    assert [x["replicas"] for x in r] == [2, 2]
    assert [x["chief"] for x in r] == [True, False]


def test_progress_printed_by_chief_only(workers):
    chief, other = workers["stdout"]
    assert "Epoch 1/1" in chief and "Epoch 2/2" in chief and "loss:" in chief
    assert "Epoch" not in other and "loss" not in other


def test_workers_perturb_independently(workers):
    r = workers["results"]
    mean = np.asarray(r[0]["mean"])
    np.testing.assert_array_equal(mean, r[1]["mean"])  # same posterior on both workers
    p0, p1 = np.asarray(r[0]["outputs"]) - mean, np.asarray(r[1]["outputs"]) - mean
    assert np.std(p0) > 0.5 and np.std(p1) > 0.5
    corr = np.corrcoef(p0.ravel(), p1.ravel())[0, 1]
    assert abs(corr) < 0.25, corr  # n = 512: independent => |corr| ~ 0.044
    assert r[0]["rng_state"] == r[1]["rng_state"] == [11, 1]


def test_two_workers_equal_one_process_and_resume(workers):
    """Global batch 16 split over two workers == one process with batch 16
    (posterior-mean mode, so the draws play no role), across a checkpoint resume."""
    x, y = data()
    model = make_model(seed=7, init_scale=0.05)
    bayesflip.set_kl_weight(model, num_examples=32)  # as the workers did; the resumed model restores it
    bayesflip.set_posterior_mean(model)
    ref = bd.fit(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=2, verbose=0)
    r0, r1 = workers["results"]
    assert _max_abs_diff(r0["weights"], r1["weights"]) == 0.0  # workers in sync
    assert _max_abs_diff(r0["weights"], model.get_weights()) < 1e-5
    for name in ("loss", "nll", "kl"):
        assert r0["first_history"][name][0] == pytest.approx(ref[name][0], rel=1e-5), name
        # the resumed call ran only the missing epoch
        assert len(r0["resumed_history"][name]) == 1
        assert r0["resumed_history"][name][0] == pytest.approx(ref[name][1], rel=1e-5), name
    # restored RNG states are those of seeds 7/107, not of the fresh model's seed 99
    assert r0["rng_states"] == [[7, 0], [107, 0]]
    ckpt = Path(workers["dir"]) / "ckpt"
    assert (ckpt / "checkpoint").exists()
    assert not [p for p in ckpt.iterdir() if p.name.startswith(".worker")]  # non-chief temp dir removed

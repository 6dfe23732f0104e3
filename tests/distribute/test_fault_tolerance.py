"""A real kill: model.fit with BackupAndRestore, SIGKILLed mid-epoch, restarted.

The RNG states are saved weights, so the restarted run draws what the
uninterrupted one drew and ends with the same weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.distribute import backup_restore_worker as worker
from tests.distribute._common import HERE, ROOT, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("distribute")]  # subprocesses
TIMEOUT_S = 240


def _start(*args):
    return subprocess.Popen(
        [sys.executable, str(HERE / "backup_restore_worker.py"), *map(str, args)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
    )


def test_killed_and_restarted_run_ends_like_an_uninterrupted_one(tmp_path):
    backup, out = tmp_path / "backup", tmp_path / "weights.npz"
    marker = tmp_path / "stalled"
    proc = _start(backup, out, 2)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while not marker.exists():
            if proc.poll() is not None:
                err = proc.stderr.read()[-4000:]
                raise AssertionError(f"worker exited early ({proc.returncode}):\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError("worker did not reach the kill point in time")
            time.sleep(0.2)
        proc.kill()  # SIGKILL mid-epoch 3: no clean-up code runs
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9
    assert not out.exists()
    assert backup.exists()  # the backup of the last finished epoch

    restarted = _start(backup, out)
    try:
        _, stderr = restarted.communicate(timeout=TIMEOUT_S)
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    assert restarted.returncode == 0, stderr[-4000:]
    info = json.loads((tmp_path / "weights.npz.json").read_text())
    assert info["epochs"] == [2, 3]  # resumed at the interrupted epoch, not from scratch

    # reference: the same training uninterrupted, in this process
    model, ref = worker.train(str(tmp_path / "backup_ref"))
    np.testing.assert_allclose(info["loss"], ref["loss"][2:], rtol=1e-6)
    with np.load(out) as restored:
        got = [restored[f"arr_{i}"] for i in range(len(restored.files))]
    expected = model.get_weights()
    assert [a.shape for a in got] == [b.shape for b in expected]
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # the RNG states continued: 4 epochs x 4 steps
    assert [w.tolist() for w in got if w.dtype == np.int64] == [[12, 16], [112, 16]]

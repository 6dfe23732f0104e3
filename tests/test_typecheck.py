"""The type checker is clean on bayesflip/ ([tool.mypy] in pyproject.toml)."""

import os
import subprocess
import sys
from pathlib import Path

import mypy  # noqa: F401 - in the dev extra: a missing type checker fails here, it is not skipped
import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_mypy_is_clean_on_the_package(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy_cache")],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"mypy failed (exit {proc.returncode}):\n{proc.stdout[-10000:]}\n{proc.stderr[-5000:]}"
    )
    assert "Success" in proc.stdout, proc.stdout

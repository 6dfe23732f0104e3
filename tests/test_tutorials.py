"""Execute every tutorial notebook top to bottom: a notebook that breaks fails CI.

Each ``tutorials/*.ipynb`` runs in a fresh Jupyter kernel of *this* Python
(``sys.executable``, through a kernelspec written to a temporary directory, so
nothing is registered globally and a user-level ``python3`` kernel of another
environment cannot be picked up by accident). The notebooks run in a temporary
working directory (files they save do not litter the repo), with a
non-interactive matplotlib backend. Any cell that raises fails the test with
the cell's traceback.

The notebooks are stored without outputs (see ``tutorials/README.md``); this
test is what checks that they still run and reproduce their claims (the
notebooks ``assert`` their key facts).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in)
import nbclient
import nbformat
import pytest

# The dev extra installs these; a missing one is a collection error, never a silent skip.

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL_NAME = "bayesflip-tutorials"
#: Per-notebook limit; each notebook is written to run in well under 2 minutes on 2 CPU cores.
TIMEOUT_S = 240


@pytest.fixture
def kernel_env(tmp_path, monkeypatch) -> str:
    """A kernelspec running ``sys.executable`` found only through this test's JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayesflip tutorials",
        "language": "python",
        # No TF_CPP_MIN_LOG_LEVEL here: each notebook must quiet TensorFlow itself, as a user runs it.
        "env": {"MPLBACKEND": "Agg", "KERAS_BACKEND": "tensorflow"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL_NAME


def test_tutorials_exist():
    assert NOTEBOOKS, f"no notebooks found in {TUTORIALS}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, kernel_env: str, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    stored_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("outputs")]
    assert not stored_outputs, f"{path.name}: store notebooks without outputs (cells {stored_outputs})"
    workdir = tmp_path / "work"
    workdir.mkdir()
    client = nbclient.NotebookClient(
        nb,
        timeout=TIMEOUT_S,
        kernel_name=kernel_env,
        resources={"metadata": {"path": str(workdir)}},
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    print(f"{path.name}: executed in {elapsed:.1f} s")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    first = next(c for c in nb.cells if c.cell_type == "code")
    noise = [
        o["text"]
        for o in first.get("outputs", [])
        if o.get("output_type") == "stream" and o["name"] == "stderr"
    ]
    assert not noise, f"{path.name}: the first cell printed TensorFlow's start-up lines: {noise}"

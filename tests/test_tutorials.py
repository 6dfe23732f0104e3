"""Execute every tutorial notebook top to bottom: a notebook that breaks fails CI.

Each ``tutorials/*.ipynb`` runs in a fresh Jupyter kernel of *this* Python
(``sys.executable``, through a kernelspec written to a temporary directory, so
nothing is registered globally and a user-level ``python3`` kernel of another
environment cannot be picked up by accident). The notebooks run in a temporary
working directory (files they save do not litter the repo), with a
non-interactive matplotlib backend. Any cell that raises fails the test with
the cell's traceback.

The notebooks are committed *executed* (``python tutorials/refresh.py`` re-runs
them in place, see ``tutorials/README.md``). This test checks that they still
run and reproduce their claims (the notebooks ``assert`` their key facts), and
that the committed outputs still come from the current code: every number
printed by a *checking* cell (a code cell containing ``assert``) in the fresh
run must match the committed one within ``REL_TOL`` relative or ``ABS_TOL``
absolute. The seeded CPU runs are reproducible up to float noise, which these
tolerances absorb; a changed result (a different table, a lost digit of
accuracy) does not pass. Cells that time something (``perf_counter`` in their
source, or the ``nondeterministic`` tag) are not compared.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in)
import nbclient
import nbformat
import pytest

# The dev extra installs these; a missing one is a collection error, never a silent skip.

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tutorials"))
from refresh import drop_tensorflow_startup_lines  # noqa: E402

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
KERNEL_NAME = "bayesflip-tutorials"
#: Per-notebook limit; each notebook is written to run in well under 2 minutes on 2 CPU cores.
TIMEOUT_S = 240
#: A committed number ``a`` and a fresh one ``b`` agree when ``|a - b| <= max(REL_TOL * max(|a|, |b|), ABS_TOL)``.
REL_TOL = 0.05
ABS_TOL = 0.01
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def cell_text(cell) -> str:
    """The plain text a code cell printed or displayed (streams and ``text/plain``)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out["text"])
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def checked_numbers(nb) -> dict[int, list[float]]:
    """The numbers printed by each checking cell (one containing ``assert``), by cell index."""
    numbers = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or "assert" not in cell.source:
            continue
        if "perf_counter" in cell.source or "nondeterministic" in cell.metadata.get("tags", []):
            continue
        numbers[i] = [float(x) for x in _NUMBER.findall(cell_text(cell))]
    return numbers


def agree(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def test_number_comparison_catches_changes():
    """The comparison tolerates float noise and nothing more."""
    assert agree(0.912, 0.9121) and agree(0.0031, 0.0102)
    assert not agree(0.912, 0.85) and not agree(1437, 1221)
    nums = [float(x) for x in _NUMBER.findall("accuracy 0.975, NLL -0.114 at T=1e-2 (360, 10) ep1")]
    assert nums == [0.975, -0.114, 1e-2, 360, 10]


def test_startup_filter_drops_tensorflow_lines_only():
    startup = (
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        "I0000 00:00:1796393843.931986   28490 port.cc:153] oneDNN custom operations are on. You may see "
        "slightly different numerical results due to floating-point round-off errors.\n"
        "I0000 00:00:1796393843.933469   28490 cudart_stub.cc:31] Could not find cuda drivers on your "
        "machine, GPU will not be used.\n"
        "I0000 00:00:1796393843.996439   28490 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.\n"
    )
    cuinit = "E0000 00:00:1796393849.474273   28490 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
    own = "UserWarning: mc_predict: values passed as logits lie on the probability simplex\n"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import tensorflow"),
        nbformat.v4.new_code_cell("x"),
    ]
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stderr", text=startup),
        nbformat.v4.new_output("stream", name="stdout", text="I0000 printed by the code stays\n"),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stderr", text=cuinit + own)]
    assert drop_tensorflow_startup_lines(nb) == 6
    assert [o["name"] for o in nb.cells[0].outputs] == ["stdout"]
    assert nb.cells[1].outputs[0]["text"] == own
    assert drop_tensorflow_startup_lines(nb) == 0


@pytest.fixture
def kernel_env(tmp_path, monkeypatch) -> str:
    """A kernelspec running ``sys.executable`` found only through this test's JUPYTER_PATH."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "bayesflip tutorials",
        "language": "python",
        # No TF_CPP_MIN_LOG_LEVEL here: the notebooks run as a user runs them.
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
    committed = checked_numbers(nb)
    figures = sum(
        "image/png" in o.get("data", {})
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )
    assert figures, (
        f"{path.name}: commit the notebook executed (python tutorials/refresh.py), with its figures"
    )
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
    assert drop_tensorflow_startup_lines(nbformat.read(path, as_version=4)) == 0, (
        f"{path.name}: TensorFlow's start-up lines are committed; refresh with python tutorials/refresh.py"
    )
    fresh = checked_numbers(nb)
    for i, old in committed.items():
        new = fresh[i]
        assert len(new) == len(old), f"{path.name} cell {i}: printed {len(new)} numbers, {len(old)} committed"
        bad = [(a, b) for a, b in zip(old, new) if not agree(a, b)]
        assert not bad, (
            f"{path.name} cell {i}: committed outputs no longer come from the code (committed, fresh): {bad};"
            " refresh them with python tutorials/refresh.py"
        )

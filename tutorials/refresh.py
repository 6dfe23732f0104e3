"""Re-execute tutorial notebooks in place, refreshing their committed outputs.

Usage (from the repository root)::

    python tutorials/refresh.py                 # every tutorials/*.ipynb, one at a time
    python tutorials/refresh.py 01 04           # only the notebooks whose names start with these

Each notebook runs top to bottom in a fresh kernel of this Python, in a temporary working
directory, with the non-interactive matplotlib backend; its outputs (printed numbers and PNG
figures) replace the stored ones and its run time is printed. A notebook that raises is left
unchanged and the script exits non-zero. ``tests/test_tutorials.py`` re-executes the notebooks and
compares the numbers printed by their checking cells with these committed outputs.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

TUTORIALS = Path(__file__).resolve().parent
TIMEOUT_S = 240


def execute(nb: nbformat.NotebookNode, workdir: str, kernel_name: str = "python3") -> float:
    """Execute ``nb`` in place (fresh kernel, ``workdir`` as its cwd); return the run time in s."""
    client = nbclient.NotebookClient(
        nb, timeout=TIMEOUT_S, kernel_name=kernel_name, resources={"metadata": {"path": workdir}}
    )
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main(prefixes: list[str]) -> int:
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # a kernelspec for *this* Python, found only through JUPYTER_PATH (nothing registered globally)
    jupyter = tempfile.mkdtemp()
    spec_dir = Path(jupyter) / "kernels" / "bayesflip-refresh"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "bayesflip", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    os.environ["JUPYTER_PATH"] = jupyter
    paths = sorted(TUTORIALS.glob("*.ipynb"))
    if prefixes:
        paths = [p for p in paths if any(p.name.startswith(x) for x in prefixes)]
    failed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as workdir:
            try:
                elapsed = execute(nb, workdir, "bayesflip-refresh")
            except nbclient.exceptions.CellExecutionError as err:
                print(f"{path.name}: FAILED\n{err}", flush=True)
                failed.append(path.name)
                continue
        for cell in nb.cells:  # execution counts and timings would churn the diff
            if cell.cell_type == "code":
                cell.metadata.pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: refreshed in {elapsed:.1f} s ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Re-execute tutorial notebooks in place, refreshing their committed outputs.

Usage (from the repository root)::

    python tutorials/refresh.py                 # every tutorials/*.ipynb, one at a time
    python tutorials/refresh.py 01 04           # only the notebooks whose names start with these

Each notebook runs top to bottom in a fresh kernel of this Python, in a temporary working
directory, with the non-interactive matplotlib backend; its outputs (printed numbers and PNG
figures) replace the stored ones and its run time is printed. TensorFlow's own start-up lines
(oneDNN, CUDA probing, CPU features: printed by its C++ runtime before any log level applies) are
and the other lines of its C++ runtime log (XLA and tf.data notices) are dropped from the stored
outputs by :func:`drop_tensorflow_startup_lines`; a reader who runs the notebook sees them on stderr. A notebook that raises is left
unchanged and the script exits non-zero. ``tests/test_tutorials.py`` re-executes the notebooks and
compares the numbers printed by their checking cells with these committed outputs.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbclient
import nbformat

TUTORIALS = Path(__file__).resolve().parent
TIMEOUT_S = 240
#: One line of TensorFlow's C++ runtime log (absl's pre-init banner, ``I0000 … port.cc:153] oneDNN custom
#: operations are on …``, CUDA probing, the CPU-feature notice, XLA and tf.data notices: any line in the
#: runtime's ``[IWE]mmdd time thread file.cc:line]`` format).
_TF_STARTUP_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+ +\d+ [\w.]+\.(cc|h):\d+\] .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$"
)


def drop_tensorflow_startup_lines(nb: nbformat.NotebookNode) -> int:
    """Remove TensorFlow's start-up lines from ``nb``'s stderr outputs in place; return how many.

    Only lines that match ``_TF_STARTUP_LINE`` go; any other stderr text (a warning the code
    raises) stays, and a stream left empty is removed.
    """
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                lines = out["text"].splitlines(keepends=True)
                rest = [line for line in lines if not _TF_STARTUP_LINE.match(line.rstrip("\n"))]
                dropped += len(lines) - len(rest)
                if not rest:
                    continue
                out["text"] = "".join(rest)
            kept.append(out)
        cell["outputs"] = kept
    return dropped


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
        drop_tensorflow_startup_lines(nb)
        for cell in nb.cells:  # execution counts and timings would churn the diff
            if cell.cell_type == "code":
                cell.metadata.pop("execution", None)
        nbformat.write(nb, path)
        print(f"{path.name}: refreshed in {elapsed:.1f} s ({path.stat().st_size / 1024:.0f} KiB)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

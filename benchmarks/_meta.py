"""What every benchmark shares: where its results go, and the metadata record written into them.

- :func:`output_dir` — an explicit ``--output`` wins; otherwise the full protocol (every argument
  at its default) writes to the committed ``benchmarks/results/`` and anything else (``--quick``,
  a changed argument) to the git-ignored ``benchmarks/results/scratch/``, so a smoke run never
  overwrites a published result.
- :func:`metadata` — library versions, git commit (and whether the tree was dirty), machine,
  arguments and date: the ``"meta"`` entry of every result JSON.
- :func:`write_json` — writes a result with that record.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
#: The committed results (full-protocol runs only).
RESULTS = os.path.join(HERE, "results")
#: Quick runs and runs with changed arguments land here (git-ignored).
SCRATCH = os.path.join(RESULTS, "scratch")
#: Superseded committed runs, kept for the numbers prose still compares with.
ARCHIVE = os.path.join(RESULTS, "archive")

#: Modules whose versions the record states (import name → key).
_LIBRARIES = {
    "bayesflip": "bayesflip",
    "tensorflow": "tensorflow",
    "keras": "keras",
    "tensorflow_probability": "tfp",
    "numpy": "numpy",
}


def output_dir(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    dest: str = "output",
    ignore: tuple[str, ...] = (),
) -> str:
    """The folder a run writes to (and stores in ``args.<dest>``).

    An explicit ``--output`` is used as given. Otherwise a run whose arguments all equal the
    parser's defaults (the full protocol) writes to :data:`RESULTS`; any other run (``--quick``
    or a changed argument) to :data:`SCRATCH`. ``ignore`` names arguments that do not change
    what is measured (e.g. a ``--replot`` flag that only reads the results).
    """
    chosen = getattr(args, dest)
    if chosen is None:
        defaults = vars(parser.parse_args([]))
        changed = [k for k, v in vars(args).items() if k != dest and k not in ignore and v != defaults.get(k)]
        chosen = SCRATCH if changed else RESULTS
    setattr(args, dest, chosen)
    return chosen


def _git(*cmd: str) -> str | None:
    try:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _relative(value: Any) -> Any:
    """A path inside the checkout, relative to its root (results do not record where a checkout lives)."""
    if isinstance(value, str) and os.path.isabs(value) and os.path.commonpath([value, ROOT]) == ROOT:
        return os.path.relpath(value, ROOT)
    return value


def versions() -> dict[str, str | None]:
    """Installed versions of the libraries a result depends on (``None`` when not importable)."""
    out: dict[str, str | None] = {}
    for module, key in _LIBRARIES.items():
        try:
            out[key] = getattr(importlib.import_module(module), "__version__", None)
        except Exception:  # an optional library (TFP) may be missing or fail to import
            out[key] = None
    out["python"] = platform.python_version()
    return out


def metadata(args: argparse.Namespace | dict[str, Any] | None = None) -> dict[str, Any]:
    """The record every result JSON carries under ``"meta"``.

    Keys: ``recorded`` (True), ``versions`` (bayesflip, tensorflow, keras, tfp, numpy, python),
    ``git`` (``commit``, ``dirty``; ``None`` outside a git checkout), ``machine`` (``cpu_count``,
    ``platform``, ``processor``), ``arguments`` (the run's parsed arguments; paths inside the
    checkout relative to its root), ``command``
    (``sys.argv``) and ``date`` (UTC, ISO 8601).
    """
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    arguments = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    arguments = {k: _relative(v) for k, v in arguments.items()}
    return {
        "recorded": True,
        "versions": versions(),
        "git": None if commit is None else {"commit": commit, "dirty": bool(status)},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        "arguments": json.loads(json.dumps(arguments, default=str)),
        "command": list(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json(
    path: str, result: dict[str, Any], args: argparse.Namespace | dict[str, Any] | None, indent: int = 1
) -> dict[str, Any]:
    """Write ``result`` to ``path`` with :func:`metadata` under ``"meta"``; return what was written."""
    result = {"meta": metadata(args), **{k: v for k, v in result.items() if k != "meta"}}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=indent)
        f.write("\n")
    return result

"""bayesflip's benchmarks: one registry, one entry point (``python -m benchmarks``).

Every benchmark is a module here with a ``main(argv)`` that accepts ``--quick`` and
``--output DIR``, writes its JSON through :func:`benchmarks._meta.write_json` (which adds the
metadata record) and chooses its folder with :func:`benchmarks._meta.output_dir` (quick or
non-default runs go to ``results/scratch/``). To register a new one, add one line to
:data:`BENCHMARKS`.
"""

from __future__ import annotations

import ast
import importlib
import os
from types import ModuleType
from typing import Any

#: ``name -> module`` (under ``benchmarks/``): the registered benchmarks, in the order ``list`` shows.
BENCHMARKS: dict[str, str] = {
    "gradient_variance": "bench_gradient_variance",
    "speed": "run_all_speed",
    "dense": "bench_dense",
    "layers_conv_rnn": "bench_layers_conv_rnn",
    "resnet20": "bench_resnet20",
    "cost_growth": "bench_cost_growth",
    "step_profile": "bench_step_profile",
    "applications": "bench_applications",
    "memory": "bench_memory",
    "mc_predictive": "bench_mc_predictive",
    "es": "bench_es",
    "lstm_regularization": "bench_lstm_regularization",
    "speedup": "bench_speedup",
    "trace_time": "bench_trace_time",
    "distribute": "bench_distribute",
    "ablation_defaults": "ablation_defaults",
    "suite": "suite",
    "conformal": "bench_conformal",
    "rank1": "bench_rank1",
    "ablation_rank1": "ablation_rank1",
    "laplace": "bench_laplace",
    "active_learning": "bench_active_learning",
    "main_job": "main_job",
}


def _check(name: str) -> str:
    if name not in BENCHMARKS:
        raise KeyError(f"benchmarks: unknown benchmark {name!r}; registered: {', '.join(BENCHMARKS)}.")
    return BENCHMARKS[name]


def describe(name: str) -> str:
    """The first line of benchmark ``name``'s module docstring (read without importing it)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{_check(name)}.py")
    with open(path, encoding="utf-8") as f:
        doc = ast.get_docstring(ast.parse(f.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def load(name: str) -> ModuleType:
    """Import benchmark ``name``'s module (``benchmarks.<module>``)."""
    module = importlib.import_module(f"benchmarks.{_check(name)}")
    if not callable(getattr(module, "main", None)):
        raise AttributeError(f"benchmarks: {module.__name__} has no main(argv) function.")
    return module


def run(name: str, argv: list[str] | None = None) -> Any:
    """Run benchmark ``name`` with command-line arguments ``argv`` (e.g. ``["--quick"]``)."""
    return load(name).main(list(argv or []))

"""Run every layer-speed benchmark in ``benchmarks/`` and combine the results.

Discovers the ``benchmarks/bench_*.py`` modules that are layer-speed
comparisons (``bench_dense``, ``bench_layers_conv_rnn``, and any module that
sets ``LAYER_SPEED_BENCHMARK = True``), runs
each one's ``main(["--steps", N, "--output", <folder>])`` in this process, and
reads back the ``<short name>.json`` it wrote there. Each such JSON holds one or more measurements
``{"batch_size": …, "median_ms": {name: ms}}`` (under ``"results"`` when there
are several). A name is ``<implementation>_<layer>[_<variant>]`` (e.g.
``keras_lstm``, ``bayesflip_conv2d_flipout``, ``tfp_conv2d_flipout``); when the
second token is an estimator (``bayesflip_flipout`` in ``bench_dense``) the
layer is the benchmark's name (``dense``). The baseline of a layer is
``keras_<layer>`` from the same measurement.

Writes ``speed.json`` (all rows) and ``speed.md`` (a Markdown table) into the output
folder (see ``benchmarks/_meta.py``) and prints
the table. Ratios are step time over the deterministic Keras layer's step time,
measured in the same process with interleaved steps (median of many).

Usage: ``python -m benchmarks run speed [--quick] [--output DIR] [--steps 40] [--only dense layers_conv_rnn]``
"""

from __future__ import annotations

import argparse
import glob
import importlib
import json
import os
import platform
import sys
import time

from benchmarks._meta import HERE, output_dir, write_json

#: Layer-speed comparisons known to this runner; any other ``bench_*.py`` joins by
#: defining ``LAYER_SPEED_BENCHMARK = True`` at module level.
KNOWN_SPEED = ("bench_dense", "bench_layers_conv_rnn")
MARKER = "LAYER_SPEED_BENCHMARK = True"


def discover() -> dict[str, str]:
    """``{short name: path}`` of the layer-speed benchmark modules, sorted."""
    found = {}
    for path in sorted(glob.glob(os.path.join(HERE, "bench_*.py"))):
        mod = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            marked = MARKER in f.read()
        if mod in KNOWN_SPEED or marked:
            found[mod[len("bench_") :]] = path
    return found


def _load(name: str, path: str):
    module = importlib.import_module(f"benchmarks.{os.path.splitext(os.path.basename(path))[0]}")
    if not hasattr(module, "main"):
        raise AttributeError(f"run_all_speed: benchmark {path} has no main(argv) function.")
    return module


def family_of(name: str, default: str) -> str:
    """Layer family of a result name: ``keras_lstm`` -> ``lstm``; ``bayesflip_flipout`` -> default."""
    parts = name.split("_")
    if len(parts) >= 2 and parts[1] not in ("flipout", "shared", "local"):
        return parts[1]
    return default


def measurements_in(data) -> list[dict]:
    """Every dict holding a ``median_ms`` mapping, anywhere in a benchmark's JSON."""
    if isinstance(data, dict):
        if isinstance(data.get("median_ms"), dict):
            return [data]
        return [m for v in data.values() for m in measurements_in(v)]
    if isinstance(data, list):
        return [m for v in data for m in measurements_in(v)]
    return []


def rows_from(benchmark: str, data: dict) -> list[dict]:
    """Normalise one benchmark's JSON into table rows with ratios to ``keras_<layer>``."""
    default_family = benchmark.split("_")[0]
    rows = []
    for m in measurements_in(data):
        med = m["median_ms"]
        for name, ms in med.items():
            fam = family_of(name, default_family)
            base = med.get(f"keras_{fam}")
            rows.append(
                {
                    "benchmark": benchmark,
                    "batch_size": m.get("batch_size"),
                    # bench_dense trains with Adam and does not label its runs
                    "update": m.get("update", "adam"),
                    "layer": fam,
                    "implementation": name,
                    "median_ms": float(ms),
                    "ratio_to_keras": float(ms) / base if base else None,
                }
            )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| benchmark | batch | optimizer | layer | implementation | median step (ms) | × Keras deterministic |",
        "|---|---:|---|---|---|---:|---:|",
    ]
    for r in rows:
        ratio = "—" if r["ratio_to_keras"] is None else f"{r['ratio_to_keras']:.2f}"
        lines.append(
            f"| {r['benchmark']} | {r['batch_size']} | {r['update']} | {r['layer']} | {r['implementation']} | "
            f"{r['median_ms']:.2f} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=40, help="timed steps per model (passed to every benchmark)")
    p.add_argument("--only", nargs="+", default=None, help="short names, e.g. dense layers_conv_rnn")
    p.add_argument("--quick", action="store_true", help="smoke run: every benchmark in its --quick mode")
    p.add_argument(
        "--output", "--out", dest="out", default=None, help="output folder (default: see benchmarks/_meta.py)"
    )
    p.add_argument(
        "--from-json", action="store_true", help="only rebuild the table from the JSON files in --output"
    )
    args = p.parse_args(argv)
    output_dir(p, args, dest="out", ignore=("from_json",))
    available = discover()
    names = args.only or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"run_all_speed: unknown benchmark(s) {unknown}; available: {sorted(available)}")
    os.makedirs(args.out, exist_ok=True)
    rows, failures, seconds, sources = [], {}, {}, {}
    for name in names:
        path = os.path.join(args.out, f"{name}.json")
        print(f"== {name} ==", flush=True)
        t0 = time.time()
        try:
            if not args.from_json:
                quick = ["--quick"] if args.quick else ["--steps", str(args.steps)]
                _load(name, available[name]).main([*quick, "--output", args.out])
            with open(path) as f:
                data = json.load(f)
            rows += rows_from(name, data)
            sources[name] = data.get("meta")  # when and on what each measurement ran
        except Exception as err:  # report and continue with the other benchmarks
            failures[name] = f"{type(err).__name__}: {err}"
            print(f"   FAILED: {failures[name]}", flush=True)
        seconds[name] = time.time() - t0
    table = markdown(rows)
    header = (
        f"Training-step time, median of {args.steps} interleaved steps per model, one process; "
        f"{platform.machine()}, {os.cpu_count()} CPUs. Ratio = step time / deterministic Keras step time.\n\n"
    )
    with open(os.path.join(args.out, "speed.md"), "w") as f:
        f.write(header + table)
    out = {
        "steps": args.steps,
        "rows": rows,
        "failures": failures,
        "seconds": seconds,
        "source_meta": sources,
    }
    out = write_json(os.path.join(args.out, "speed.json"), out, args)
    print()
    print(table)
    if failures:
        print("failed:", failures)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])

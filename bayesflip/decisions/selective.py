"""Selective prediction: abstain on the least confident inputs and measure the risk of the rest.

Sort the inputs by a confidence (higher = more confident; any score of
:mod:`bayesflip.decisions.ood` negated, e.g. ``-ood_scores(...)["mutual_information"]``)
and keep the top ``i`` of ``N``: coverage ``i / N``, selective risk the mean
loss of the kept inputs. Inputs of equal confidence cannot be split by a
threshold; within such a tie the risk of a prefix is its expectation over
the order of the tied inputs (so results do not depend on the sort).

- :func:`risk_coverage_curve`: the achievable (coverage, risk, threshold) points.
- :func:`aurc`: area under the risk–coverage curve, ``(1/N) Σ_i risk(i/N)``
  (Geifman et al., ICLR 2019).
- :func:`excess_aurc` (E-AURC): ``AURC − AURC*``, where ``AURC*`` is the AURC of
  the oracle confidence that ranks the inputs by their own loss.
- :func:`accuracy_at_coverage`, :func:`coverage_at_risk` and :func:`risk_coverage_plot`.

Losses are per-input and non-negative; for classification the 0/1 error
``argmax p ≠ y`` (risk = error rate).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import numpy as np

from bayesflip._checks import check_real
from bayesflip._typing import ArrayLike

__all__ = [
    "RiskCoverage",
    "risk_coverage_curve",
    "aurc",
    "excess_aurc",
    "accuracy_at_coverage",
    "coverage_at_risk",
    "risk_coverage_plot",
]


class RiskCoverage(NamedTuple):
    """Points of a risk–coverage curve, one per distinct confidence threshold (decreasing)."""

    coverage: np.ndarray
    risk: np.ndarray
    threshold: np.ndarray


def _inputs(fn: str, confidences: ArrayLike, losses: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(confidences, np.float64)
    ell = np.asarray(losses, np.float64)
    if c.ndim != 1:
        raise ValueError(f"{fn}: `confidences` must have shape (N,), got {c.shape}.")
    if ell.shape != c.shape:
        raise ValueError(f"{fn}: `losses` must have the shape of `confidences` {c.shape}, got {ell.shape}.")
    if c.size == 0:
        raise ValueError(f"{fn}: got an empty set (`confidences` has shape {c.shape}).")
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(ell))):
        raise ValueError(f"{fn}: `confidences` and `losses` must be finite.")
    if np.any(ell < 0):
        raise ValueError(f"{fn}: `losses` must be non-negative, got minimum {ell.min()}.")
    return c, ell


def _prefix_risks(c: np.ndarray, ell: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected risk of every prefix size 1..N, and the ends and thresholds of the tie blocks."""
    order = np.argsort(-c, kind="stable")
    c, ell = c[order], ell[order]
    n = c.size
    ends = np.r_[np.nonzero(np.diff(c))[0] + 1, n]  # exclusive end of each tie block
    starts = np.r_[0, ends[:-1]]
    cum = np.r_[0.0, np.cumsum(ell)]
    block_mean = (cum[ends] - cum[starts]) / (ends - starts)
    block_of = np.repeat(np.arange(ends.size), ends - starts)
    i = np.arange(1, n + 1)
    expected_sum = cum[starts[block_of]] + (i - starts[block_of]) * block_mean[block_of]
    return expected_sum / i, ends, c[ends - 1]


def risk_coverage_curve(confidences: ArrayLike, losses: ArrayLike) -> RiskCoverage:
    """The risk–coverage curve at every distinct confidence threshold.

    Args:
        confidences: ``(N,)`` confidences (higher = keep first).
        losses: ``(N,)`` non-negative per-input losses (0/1 errors for accuracy).

    Returns:
        A :class:`RiskCoverage` of coverages (increasing to 1), selective risks
        and the thresholds (keep inputs with confidence ``>=`` threshold).

    Example:
    >>> r = risk_coverage_curve([0.9, 0.8, 0.3], [0, 1, 1])
    >>> r.coverage.round(3).tolist(), r.risk.round(3).tolist()
    ([0.333, 0.667, 1.0], [0.0, 0.5, 0.667])
    """
    c, ell = _inputs("risk_coverage_curve", confidences, losses)
    risks, ends, thresholds = _prefix_risks(c, ell)
    return RiskCoverage(ends / c.size, risks[ends - 1], thresholds)


def aurc(confidences: ArrayLike, losses: ArrayLike) -> float:
    """Area under the risk–coverage curve ``(1/N) Σ_{i=1}^N risk(i/N)`` (lower is better).

    Args:
        confidences: ``(N,)`` confidences.
        losses: ``(N,)`` non-negative losses.

    Returns:
        The AURC.

    Example:
    >>> round(aurc([0.9, 0.8, 0.3], [0, 1, 1]), 4)  # (0 + 1/2 + 2/3) / 3
    0.3889
    """
    c, ell = _inputs("aurc", confidences, losses)
    return float(np.mean(_prefix_risks(c, ell)[0]))


def excess_aurc(confidences: ArrayLike, losses: ArrayLike) -> float:
    """E-AURC: the AURC above that of the oracle ranking by the losses themselves (Geifman et al., 2019).

    Args:
        confidences: ``(N,)`` confidences.
        losses: ``(N,)`` non-negative losses.

    Returns:
        ``AURC − AURC*`` (``>= 0``; 0 for a perfect ranking).

    Example:
    >>> excess_aurc([0.9, 0.8, 0.3], [0, 0, 1])
    0.0
    """
    c, ell = _inputs("excess_aurc", confidences, losses)
    oracle = np.mean(_prefix_risks(-ell, ell)[0])
    return float(max(np.mean(_prefix_risks(c, ell)[0]) - oracle, 0.0))


def accuracy_at_coverage(confidences: ArrayLike, correct: ArrayLike, coverage: float) -> float:
    """Accuracy on the ``ceil(coverage · N)`` most confident inputs (expected over ties at the cut).

    Args:
        confidences: ``(N,)`` confidences.
        correct: ``(N,)`` booleans (or 0/1): whether each prediction is right.
        coverage: share of inputs kept, in ``(0, 1]``.

    Returns:
        The selective accuracy.

    Example:
    >>> accuracy_at_coverage([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 1], coverage=0.5)
    1.0
    """
    fn = "accuracy_at_coverage"
    coverage = check_real(fn, "coverage", coverage, low=0)
    if coverage > 1:
        raise ValueError(f"{fn}: `coverage` must lie in (0, 1], got {coverage!r}.")
    ok = np.asarray(correct, np.float64)
    c, ell = _inputs(fn, confidences, 1.0 - ok)
    if np.any((ok != 0) & (ok != 1)):
        raise ValueError(f"{fn}: `correct` must hold booleans or 0/1.")
    k = max(int(np.ceil(coverage * c.size - 1e-9)), 1)
    return float(1.0 - _prefix_risks(c, ell)[0][k - 1])


def coverage_at_risk(confidences: ArrayLike, losses: ArrayLike, target_risk: float) -> tuple[float, float]:
    """The largest coverage whose selective risk is at most ``target_risk``, and its threshold.

    Args:
        confidences: ``(N,)`` confidences.
        losses: ``(N,)`` non-negative losses.
        target_risk: the acceptable selective risk (``>= 0``).

    Returns:
        ``(coverage, threshold)``: keep inputs with confidence ``>= threshold``;
        ``(0.0, inf)`` when no threshold meets the target.

    Example:
    >>> coverage_at_risk([0.9, 0.8, 0.3, 0.2], [0, 0, 1, 0], target_risk=0.25)
    (1.0, 0.2)
    """
    fn = "coverage_at_risk"
    target_risk = check_real(fn, "target_risk", target_risk)
    if target_risk < 0:
        raise ValueError(f"{fn}: `target_risk` must be >= 0, got {target_risk!r}.")
    curve = risk_coverage_curve(confidences, losses)
    ok = np.nonzero(curve.risk <= target_risk + 1e-12)[0]
    if ok.size == 0:
        return 0.0, float("inf")
    j = ok[-1]
    return float(curve.coverage[j]), float(curve.threshold[j])


def risk_coverage_plot(
    curves: dict[str, tuple[ArrayLike, ArrayLike]],
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Any:
    """Risk–coverage curves of several confidences, the AURC of each in the legend.

    Args:
        curves: ``{label: (confidences, losses)}``.
        title: figure title.
        path: if given, write a PNG there.

    Returns:
        A ``matplotlib.figure.Figure``.
    """
    from matplotlib.figure import Figure

    from bayesflip.decisions.ood import _save

    if not curves:
        raise ValueError("risk_coverage_plot: `curves` is empty.")
    fig = Figure(figsize=(5, 4), layout="constrained")
    ax = fig.add_subplot()
    for label, (conf, losses) in curves.items():
        r = risk_coverage_curve(conf, losses)
        ax.step(r.coverage, r.risk, where="post", label=f"{label} (AURC {aurc(conf, losses):.4f})")
    ax.set_xlabel("coverage")
    ax.set_ylabel("selective risk")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(fig, path)

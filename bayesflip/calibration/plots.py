"""Calibration and uncertainty plots (matplotlib, headless).

Figures are built with ``matplotlib.figure.Figure`` directly (no ``pyplot``
global state, no GUI backend needed; PNGs are rendered with Agg). Each function
returns the Figure and, given ``path``, also writes a PNG there. matplotlib is
imported when the first figure is drawn, not with ``bayesflip``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from bayesflip import uncertainty as unc
from bayesflip._typing import ArrayLike
from bayesflip.calibration import _inputs
from bayesflip.calibration import metrics as m

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["reliability_diagram", "uncertainty_histogram", "regression_calibration_curve"]


def _figure(width: float, height: float) -> Figure:
    """A headless ``matplotlib.figure.Figure`` (matplotlib imported here, on first use)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        path = os.fspath(path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        fig.savefig(path, format="png", dpi=fig.dpi)
    return fig


def reliability_diagram(
    labels: ArrayLike,
    probs: ArrayLike,
    num_bins: int = 15,
    binning: str = "equal_width",
    from_logits: bool = False,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Reliability diagram with a confidence histogram below it.

    Top: accuracy per confidence bin (solid bars), each bin's mean confidence
    (a black tick across the bin), the gap between them as an unfilled hatched
    box (red above the bar where the model is overconfident, orange inside the
    bar where it is underconfident, so the bar's top is always the accuracy),
    and the diagonal of perfect calibration; the legend gives the ECE.
    Bottom: number of examples per bin, with the overall accuracy and mean
    confidence marked.

    Args:
        labels: integer class labels ``(N,)``.
        probs: probabilities ``(N, K)`` or logits with ``from_logits=True``.
        num_bins: number of confidence bins.
        binning: ``"equal_width"`` or ``"equal_mass"``.
        from_logits: whether ``probs`` holds logits.
        title: figure title.
        path: if given, write a PNG there (parent folders are created).

    Returns:
        The matplotlib Figure (axes: ``[reliability, histogram]``).

    Example:
    >>> fig = reliability_diagram([0, 1, 1], [[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]], num_bins=5)
    >>> len(fig.axes)
    2
    """
    bins = m.calibration_bins(labels, probs, num_bins=num_bins, binning=binning, from_logits=from_logits)
    ece = m.expected_calibration_error(
        labels, probs, num_bins=num_bins, binning=binning, from_logits=from_logits
    )
    fig = _figure(5.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    left, widths = bins.edges[:-1], np.diff(bins.edges)
    filled = bins.counts > 0
    acc = np.where(filled, bins.accuracy, 0.0)
    conf = np.where(filled, bins.confidence, 0.0)
    top.bar(
        left,
        acc,
        width=widths,
        align="edge",
        color="tab:blue",
        alpha=0.7,
        edgecolor="navy",
        label="accuracy (bar)",
    )
    # The gap between accuracy and mean confidence: unfilled and hatched, so it never changes the
    # colour of the accuracy bar it overlaps (underconfidence) and is never read as accuracy
    # (overconfidence: above the bar). Each direction has its own colour and legend entry.
    for sign, color, hatch, label in [
        (1, "tab:red", "//", "gap: overconfident"),
        (-1, "tab:orange", "\\\\", "gap: underconfident"),
    ]:
        sel = filled & (sign * (conf - acc) > 0)
        top.bar(
            left[sel],
            (conf - acc)[sel],
            bottom=acc[sel],
            width=widths[sel],
            align="edge",
            fill=False,
            hatch=hatch,
            edgecolor=color,
            lw=1.0,
            label=label if sel.any() else "_nolegend_",
        )
    # The bin's mean confidence, as a thick black tick across the bin.
    top.hlines(
        conf[filled], left[filled], (left + widths)[filled], colors="black", lw=2.5, label="mean confidence"
    )
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", title=f"ECE = {ece:.4f}")
    if title:
        top.set_title(title)
    bottom.bar(left, bins.counts, width=widths, align="edge", color="tab:gray", edgecolor="black")
    total = bins.counts.sum()
    bottom.axvline(
        np.sum(np.where(filled, bins.accuracy * bins.counts, 0)) / total,
        color="tab:blue",
        ls="-",
        label="accuracy",
    )
    bottom.axvline(
        np.sum(np.where(filled, bins.confidence * bins.counts, 0)) / total,
        color="black",
        ls="--",
        label="mean confidence",
    )
    bottom.set_xlabel("confidence")
    bottom.set_ylabel("count")
    bottom.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def uncertainty_histogram(
    scores_in: ArrayLike,
    scores_out: ArrayLike,
    num_bins: int = 30,
    score_name: str = "predictive entropy",
    labels: tuple[str, str] = ("in-distribution", "out-of-distribution"),
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Overlaid histograms of an uncertainty score for in- vs out-of-distribution inputs.

    Both histograms share the same bins (densities, so different sample sizes
    compare); the legend gives the AUROC of :func:`bayesflip.uncertainty.ood_auroc`.

    Args:
        scores_in: scores of in-distribution inputs (higher = more uncertain).
        scores_out: scores of out-of-distribution inputs.
        num_bins: number of shared bins.
        score_name: x-axis label.
        labels: legend entries for the two groups.
        title: figure title.
        path: if given, write a PNG there.

    Returns:
        The matplotlib Figure.

    Example:
    >>> fig = uncertainty_histogram([0.1, 0.2, 0.3], [0.8, 0.9])
    >>> fig.axes[0].get_xlabel()
    'predictive entropy'
    """
    auroc = unc.ood_auroc(scores_in, scores_out)
    a = np.asarray(scores_in, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_out, dtype=np.float64).reshape(-1)
    num_bins = _inputs.check_num_bins("uncertainty_histogram", num_bins)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, num_bins + 1)
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    ax.hist(
        a, bins=edges.tolist(), density=True, alpha=0.55, color="tab:blue", label=f"{labels[0]} (n={a.size})"
    )
    ax.hist(
        b,
        bins=edges.tolist(),
        density=True,
        alpha=0.55,
        color="tab:orange",
        label=f"{labels[1]} (n={b.size})",
    )
    ax.set_xlabel(score_name)
    ax.set_ylabel("density")
    ax.legend(title=f"AUROC = {auroc:.3f}")
    if title:
        ax.set_title(title)
    return _save(fig, path)


def regression_calibration_curve(
    y_true: ArrayLike | None = None,
    mean: ArrayLike | None = None,
    scale: ArrayLike | None = None,
    *,
    pit: ArrayLike | None = None,
    num_levels: int = 20,
    title: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Calibration curve of regression quantiles: observed vs expected level (Kuleshov et al. 2018).

    Args:
        y_true, mean, scale, pit, num_levels: as in
            :func:`bayesflip.calibration.quantile_calibration_curve` (``mean``/``scale``
            may carry a leading sample axis for the MC mixture).
        title: figure title.
        path: if given, write a PNG there.

    Returns:
        The matplotlib Figure; its first line holds ``(levels, observed)``.

    Example:
    >>> fig = regression_calibration_curve(pit=[0.1, 0.4, 0.6, 0.9], num_levels=4)
    >>> fig.axes[0].lines[0].get_ydata().tolist()
    [0.25, 0.25, 0.75, 0.75]
    """
    levels, observed = m.quantile_calibration_curve(y_true, mean, scale, pit=pit, num_levels=num_levels)
    error = float(np.mean((levels - observed) ** 2))
    fig = _figure(4.5, 4.5)
    ax = fig.subplots()
    ax.plot(levels, observed, "o-", color="tab:blue", label="model")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.fill_between(levels, levels, observed, color="tab:red", alpha=0.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("expected quantile level")
    ax.set_ylabel("observed frequency")
    ax.legend(loc="upper left", title=f"calibration error = {error:.4f}")
    if title:
        ax.set_title(title)
    return _save(fig, path)

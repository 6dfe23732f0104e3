"""Plots: each returns a Figure whose drawn data equal the metric functions' values,
and writes a PNG."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from bayesflip import calibration as cal
from bayesflip import uncertainty as unc
from tests.calibration.helpers import calibrated_sample

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


@pytest.mark.parametrize("binning", ["equal_width", "equal_mass"])
def test_reliability_diagram_draws_the_bins(tmp_path, rng, binning):
    labels, probs = calibrated_sample(rng, 600, 3)
    path = tmp_path / "sub" / "reliability.png"
    fig = cal.reliability_diagram(labels, probs, num_bins=8, binning=binning, title="t", path=path)
    assert isinstance(fig, Figure)
    assert_png(path)
    bins = cal.calibration_bins(labels, probs, num_bins=8, binning=binning)
    top, bottom = fig.axes
    acc_bars = top.containers[0]
    np.testing.assert_allclose([r.get_height() for r in acc_bars], np.nan_to_num(bins.accuracy), atol=1e-12)
    np.testing.assert_allclose([r.get_x() for r in acc_bars], bins.edges[:-1], atol=1e-12)
    np.testing.assert_allclose([r.get_height() for r in bottom.containers[0]], bins.counts)
    ece = cal.expected_calibration_error(labels, probs, num_bins=8, binning=binning)
    assert f"{ece:.4f}" in top.get_legend().get_title().get_text()


@pytest.mark.parametrize("shift", [0.15, -0.2])
def test_reliability_diagram_gap_never_hides_the_accuracy(rng, shift):
    """Under- (shift > 0) or overconfident (shift < 0): the accuracy bars keep their height and colour
    (the gap boxes are unfilled, so nothing is blended over a bar), each bin's mean confidence is drawn
    as its own mark, and the gap box spans exactly confidence <-> accuracy, labelled by direction."""
    import matplotlib.colors as mcolors

    conf = rng.uniform(0.4, 1.0, 2000)
    correct = rng.uniform(size=conf.size) < np.clip(conf + shift, 0, 1)
    labels = np.where(correct, 0, 1)
    probs = np.stack([conf, 1 - conf], axis=1)
    fig = cal.reliability_diagram(labels, probs, num_bins=10)
    bins = cal.calibration_bins(labels, probs, num_bins=10)
    filled = bins.counts > 0
    top = fig.axes[0]
    acc_bars, over, under = top.containers[:3]
    np.testing.assert_allclose([r.get_height() for r in acc_bars], np.nan_to_num(bins.accuracy), atol=1e-12)
    acc, conf_bin = np.nan_to_num(bins.accuracy), np.nan_to_num(bins.confidence)
    for container, sel in [(over, filled & (conf_bin > acc)), (under, filled & (conf_bin < acc))]:
        assert len(container) == sel.sum()
        for r in container:
            assert not r.get_fill() and mcolors.to_rgba(r.get_facecolor())[3] == 0
        lo = np.array([min(r.get_y(), r.get_y() + r.get_height()) for r in container])
        hi = np.array([max(r.get_y(), r.get_y() + r.get_height()) for r in container])
        np.testing.assert_allclose(lo, np.minimum(acc, conf_bin)[sel], atol=1e-12)
        np.testing.assert_allclose(hi, np.maximum(acc, conf_bin)[sel], atol=1e-12)
    assert len(under if shift > 0 else over) >= 4  # the sample's direction dominates
    ticks = top.collections[0].get_segments()
    np.testing.assert_allclose([seg[0][1] for seg in ticks], conf_bin[filled], atol=1e-12)
    legend = [t.get_text() for t in top.get_legend().get_texts()]
    assert ("gap: underconfident" in legend) == (len(under) > 0)
    assert ("gap: overconfident" in legend) == (len(over) > 0)


def test_uncertainty_histogram(tmp_path, rng):
    a, b = rng.normal(size=400), rng.normal(loc=2.0, size=150)
    path = tmp_path / "ood.png"
    fig = cal.uncertainty_histogram(a, b, num_bins=20, score_name="mutual information", path=path)
    assert_png(path)
    ax = fig.axes[0]
    heights_in = np.array([r.get_height() for r in ax.containers[0]])
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 21)
    np.testing.assert_allclose(heights_in, np.histogram(a, bins=edges, density=True)[0], rtol=1e-10)
    assert ax.get_xlabel() == "mutual information"
    assert f"{unc.ood_auroc(a, b):.3f}" in ax.get_legend().get_title().get_text()


def test_regression_calibration_curve(tmp_path, rng):
    y = rng.normal(size=2000)
    mean, scale = np.zeros_like(y), np.full_like(y, 0.6)
    path = tmp_path / "reg.png"
    fig = cal.regression_calibration_curve(y, mean, scale, num_levels=10, path=path)
    assert_png(path)
    levels, observed = cal.quantile_calibration_curve(y, mean, scale, num_levels=10)
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_xdata(), levels)
    np.testing.assert_allclose(line.get_ydata(), observed)


def test_plot_errors():
    with pytest.raises(ValueError, match="calibration_bins.*simplex"):
        cal.reliability_diagram([0], [[0.7, 0.7]])
    with pytest.raises(ValueError, match="uncertainty_histogram.*num_bins"):
        cal.uncertainty_histogram([0.1], [0.2], num_bins=0)
    with pytest.raises(ValueError, match="ood_auroc.*at least one"):
        cal.uncertainty_histogram([], [0.2])

"""Calibration metric functions against hand-worked examples, NumPy loops,
scikit-learn and TFP references, and statistical properties."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import tensorflow as tf
from scipy import special, stats
from sklearn.metrics import brier_score_loss, log_loss

from bayesflip import calibration as cal
from bayesflip._tfp import tfp
from tests.calibration.helpers import calibrated_sample, random_probs, reference_classwise_ece, reference_ece

# --------------------------------------------------------------------------- ECE


def test_ece_hand_worked_example():
    # bins of width 0.2: {0.9 (right), 0.9 (wrong)} -> gap |0.5 - 0.9| = 0.4; {0.8, 0.8 (both right)} -> 0.2
    labels = [0, 1, 1, 1]
    probs = [[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.2, 0.8]]
    assert cal.expected_calibration_error(labels, probs, num_bins=5) == pytest.approx(0.3, abs=1e-12)
    assert cal.expected_calibration_error(labels, probs, num_bins=5, norm="max") == pytest.approx(
        0.4, abs=1e-12
    )
    assert cal.expected_calibration_error(labels, probs, num_bins=5, norm="l2") == pytest.approx(
        np.sqrt(0.5 * 0.16 + 0.5 * 0.04), abs=1e-12
    )
    # one bin: |3/4 - 0.85|
    assert cal.expected_calibration_error(labels, probs, num_bins=1) == pytest.approx(0.1, abs=1e-12)


@pytest.mark.parametrize("binning", ["equal_width", "equal_mass"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("num_bins", [1, 7, 15])
def test_ece_matches_loop_reference(rng, binning, norm, num_bins):
    probs = random_probs(rng, 503, 5)
    labels = rng.integers(0, 5, size=503)
    got = cal.expected_calibration_error(labels, probs, num_bins=num_bins, binning=binning, norm=norm)
    assert got == pytest.approx(reference_ece(labels, probs, num_bins, binning, norm), abs=1e-12)


def test_ece_norm_ordering_and_from_logits(rng):
    logits = 3 * rng.normal(size=(400, 6))
    labels = rng.integers(0, 6, size=400)
    probs = special.softmax(logits, axis=1)
    l1, l2, mx = (cal.expected_calibration_error(labels, probs, norm=n) for n in ("l1", "l2", "max"))
    assert 0 < l1 <= l2 <= mx <= 1  # weighted power means (Jensen)
    assert cal.expected_calibration_error(labels, logits, from_logits=True) == pytest.approx(l1, abs=1e-12)


def test_ece_of_calibrated_predictor_vanishes_as_data_grows():
    errors = []
    for n in (500, 5000, 50000):
        labels, probs = calibrated_sample(np.random.default_rng(n), n)
        errors.append(cal.expected_calibration_error(labels, probs, num_bins=10))
    # Noise-only ECE shrinks like 1/sqrt(n); a fixed bias would not.
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.01


def test_ece_detects_overconfidence(rng):
    labels, probs = calibrated_sample(rng, 20000)
    logits = np.log(probs)
    sharp = special.softmax(3 * logits, axis=1)  # same argmax, overconfident
    assert cal.expected_calibration_error(labels, sharp) > 5 * cal.expected_calibration_error(labels, probs)


@pytest.mark.parametrize("binning", ["equal_width", "equal_mass"])
def test_ece_invariant_to_sample_order(rng, binning):
    probs = random_probs(rng, 300, 3)
    labels = rng.integers(0, 3, size=300)
    perm = rng.permutation(300)
    a = cal.expected_calibration_error(labels, probs, binning=binning)
    b = cal.expected_calibration_error(labels[perm], probs[perm], binning=binning)
    assert a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("n", [100, 101, 359])
def test_equal_mass_bins_hold_equal_counts(rng, n):
    probs = random_probs(rng, n, 4)
    labels = rng.integers(0, 4, size=n)
    bins = cal.calibration_bins(labels, probs, num_bins=10, binning="equal_mass")
    assert bins.counts.sum() == n
    assert bins.counts.max() - bins.counts.min() <= 1
    # bins are ordered by confidence and each bin's mean lies between its edges
    assert np.all(np.diff(bins.confidence) >= 0)
    assert np.all(np.diff(bins.edges) >= 0) and bins.edges[0] == 0 and bins.edges[-1] == 1
    assert np.all((bins.edges[:-1] <= bins.confidence) & (bins.confidence <= bins.edges[1:]))


def test_calibration_bins_statistics(rng):
    probs = random_probs(rng, 200, 3)
    labels = rng.integers(0, 3, size=200)
    bins = cal.calibration_bins(labels, probs, num_bins=4)
    conf, correct = probs.max(1), probs.argmax(1) == labels
    np.testing.assert_allclose(bins.edges, [0, 0.25, 0.5, 0.75, 1.0])
    for b in range(4):
        mask = (conf > b / 4) & (conf <= (b + 1) / 4)
        assert bins.counts[b] == mask.sum()
        if mask.any():
            assert bins.confidence[b] == pytest.approx(conf[mask].mean())
            assert bins.accuracy[b] == pytest.approx(correct[mask].mean())
        else:
            assert np.isnan(bins.accuracy[b])


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_classwise_ece_matches_loop_reference(rng, norm):
    probs = random_probs(rng, 400, 4)
    labels = rng.integers(0, 4, size=400)
    got = cal.classwise_calibration_error(labels, probs, num_bins=8, norm=norm)
    assert got == pytest.approx(reference_classwise_ece(labels, probs, 8, norm), abs=1e-12)


def test_classwise_ece_hand_worked_example():
    labels = np.array([0, 0, 1, 1, 0, 1])
    p1 = np.array([0.1, 0.3, 0.8, 0.6, 0.7, 0.95])
    probs = np.stack([1 - p1, p1], axis=1)
    # class 1, bins (0, .5], (.5, 1]: {.1, .3} -> outcomes 0, 0: gap .2 (w 2/6);
    #   {.8, .6, .7, .95} -> outcomes 1, 1, 0, 1: gap |.75 - .7625| = .0125 (w 4/6)  => 0.075
    # class 0 mirrors class 1: {.2, .4, .3, .05} vs outcomes 0, 0, 1, 0 and {.9, .7} vs 1, 1  => 0.075
    assert cal.classwise_calibration_error(labels, probs, num_bins=2) == pytest.approx(0.075, abs=1e-12)
    # top label: all confidences in (.5, 1], accuracy 5/6, mean confidence .775
    assert cal.expected_calibration_error(labels, probs, num_bins=2) == pytest.approx(
        5 / 6 - 0.775, abs=1e-12
    )


# --------------------------------------------------------------------------- Brier / NLL


def test_brier_binary_is_twice_sklearn_binary_loss(rng):
    p1 = rng.random(300)
    y = rng.integers(0, 2, size=300)
    ours = cal.brier_score(y, np.stack([1 - p1, p1], axis=1))
    assert ours == pytest.approx(2 * brier_score_loss(y, p1), rel=1e-12)


def _sklearn_multiclass_brier(y, probs):
    """scikit-learn's multiclass Brier score (>= 1.7); before, the sum of its one-vs-rest binary scores."""
    if "scale_by_half" in inspect.signature(brier_score_loss).parameters:
        return brier_score_loss(y, probs, labels=list(range(probs.shape[1])), scale_by_half=False)
    return sum(brier_score_loss(y == k, probs[:, k]) for k in range(probs.shape[1]))


def test_brier_multiclass_matches_sklearn_unscaled(rng):
    probs = random_probs(rng, 300, 5)
    y = rng.integers(0, 5, size=300)
    ref = _sklearn_multiclass_brier(y, probs)
    assert cal.brier_score(y, probs) == pytest.approx(ref, rel=1e-12)
    assert cal.brier_score(y, np.log(probs), from_logits=True) == pytest.approx(ref, rel=1e-10)
    assert cal.brier_score(np.eye(5)[y], probs) == pytest.approx(ref, rel=1e-12)  # one-hot labels


def test_nll_matches_sklearn_log_loss(rng):
    probs = random_probs(rng, 300, 5, sharpness=1.0)
    y = rng.integers(0, 5, size=300)
    ref = log_loss(y, probs, labels=list(range(5)))
    assert cal.negative_log_likelihood(y, probs) == pytest.approx(ref, rel=1e-10)
    assert cal.negative_log_likelihood(y[:, None], probs) == pytest.approx(ref, rel=1e-10)


def test_nll_from_logits_is_stable():
    logits = np.array([[1000.0, 0.0], [0.0, -1000.0]])
    # -log softmax(1000, 0)[0] = log(1 + e^-1000) ~ 0;  -log softmax(0, -1000)[1] = 1000 + log(1 + e^-1000)
    assert cal.negative_log_likelihood([0, 1], logits, from_logits=True) == pytest.approx(500.0, rel=1e-12)
    ref = np.mean(special.logsumexp(logits, axis=1) - logits[[0, 1], [0, 1]])
    assert cal.negative_log_likelihood([0, 1], logits, from_logits=True) == pytest.approx(ref)


# --------------------------------------------------------------------------- Brier decomposition


@pytest.mark.parametrize("num_bins", [1, 5, 15])
def test_brier_decomposition_sums_to_brier(rng, num_bins):
    probs = random_probs(rng, 400, 4)
    y = rng.integers(0, 4, size=400)
    d = cal.brier_decomposition(y, probs, num_bins=num_bins)
    assert d.brier == pytest.approx(cal.brier_score(y, probs), rel=1e-12)
    total = d.reliability - d.resolution + d.uncertainty + d.within_bin_variance - 2 * d.within_bin_covariance
    assert total == pytest.approx(d.brier, abs=1e-12)
    assert d.reliability >= 0 and d.resolution >= 0 and d.within_bin_variance >= 0


def test_brier_decomposition_discrete_forecasts_murphy_hand_example():
    # Two distinct forecasts: f1 = (0.8, 0.2) issued 3 times (outcomes 0, 0, 1), f2 = (0.3, 0.7) once (outcome 1).
    y = [0, 0, 1, 1]
    probs = [[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.3, 0.7]]
    d = cal.brier_decomposition(y, probs, num_bins=None)
    o1 = np.array([2 / 3, 1 / 3])
    rel = (
        3 * np.sum((np.array([0.8, 0.2]) - o1) ** 2) + 1 * np.sum((np.array([0.3, 0.7]) - [0, 1]) ** 2)
    ) / 4
    obar = np.array([0.5, 0.5])
    res = (3 * np.sum((o1 - obar) ** 2) + np.sum((np.array([0.0, 1.0]) - obar) ** 2)) / 4
    assert d.reliability == pytest.approx(rel, abs=1e-12)
    assert d.resolution == pytest.approx(res, abs=1e-12)
    assert d.uncertainty == pytest.approx(0.5, abs=1e-12)
    assert d.within_bin_variance == pytest.approx(0, abs=1e-15)
    assert d.within_bin_covariance == pytest.approx(0, abs=1e-15)
    assert d.reliability - d.resolution + d.uncertainty == pytest.approx(d.brier, abs=1e-12)


def test_brier_uncertainty_term_matches_tfp(rng):
    probs = random_probs(rng, 500, 3)
    y = rng.integers(0, 3, size=500)
    unc_tfp, _, _ = tfp.stats.brier_decomposition(tf.constant(y, tf.int32), tf.constant(np.log(probs)))
    # TFP scores sum_k p_k^2 - 2 p_y, i.e. our Brier score minus 1; its uncertainty is -sum_k obar_k^2.
    assert cal.brier_decomposition(y, probs).uncertainty == pytest.approx(1 + float(unc_tfp), rel=1e-9)


# --------------------------------------------------------------------------- regression


def test_quantile_calibration_curve_closed_form(rng):
    # y ~ N(0, 1) but the predictive is N(0, s^2): observed(p) = Phi(s * Phi^-1(p)).
    y = rng.normal(size=40000)
    levels = np.linspace(0.05, 0.95, 19)
    for s in (0.5, 1.0, 2.0):
        lv, observed = cal.quantile_calibration_curve(y, np.zeros_like(y), np.full_like(y, s), levels=levels)
        expected = stats.norm.cdf(s * stats.norm.ppf(levels))
        # binomial standard error <= 0.5 / sqrt(40000) = 0.0025
        np.testing.assert_allclose(observed, expected, atol=0.0125)
    calibrated = cal.quantile_calibration_error(y, np.zeros_like(y), np.ones_like(y))
    overconfident = cal.quantile_calibration_error(y, np.zeros_like(y), np.full_like(y, 0.5))
    assert calibrated < 1e-4 < 0.005 < overconfident


def test_quantile_calibration_hand_example_and_pit_path():
    pit = [0.1, 0.3, 0.35, 0.9]
    # levels 0.25, 0.5, 0.75: observed 1/4, 3/4, 3/4 -> squared gaps 0, 1/16, 0
    assert cal.quantile_calibration_error(pit=pit, levels=[0.25, 0.5, 0.75]) == pytest.approx(1 / 48)


def test_quantile_calibration_mixture_of_samples(rng):
    # Posterior samples of the mean: the mixture of N(mu_s, 1) with mu_s ~ N(0, 1) is N(0, 2).
    y = rng.normal(scale=np.sqrt(2), size=20000)
    mu = stats.norm.ppf((np.arange(200) + 0.5) / 200)[:, None] * np.ones((1, 20000))  # ~N(0, 1) draws
    mixture = cal.quantile_calibration_error(y, mu, np.ones_like(mu))
    single = cal.quantile_calibration_error(y, np.zeros_like(y), np.ones_like(y))
    assert mixture < 5e-4 < single


def test_interval_coverage(rng):
    y = rng.normal(size=20000)
    z = stats.norm.ppf(0.95)
    cov = cal.interval_coverage(y, np.full_like(y, -z), np.full_like(y, z))
    assert cov == pytest.approx(0.9, abs=4 * np.sqrt(0.09 / 20000))
    assert cal.interval_coverage([1.0, 2.0, 3.0], [0.0, 2.5, 3.0], [1.0, 3.0, 3.0]) == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- validation

GOOD_P = np.array([[0.6, 0.4], [0.3, 0.7]])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cal.expected_calibration_error([0, 1], [0.6, 0.4]), r"shape \(num_examples, num_classes\)"),
        (lambda: cal.expected_calibration_error([0, 2], GOOD_P), r"labels.*\[0, 1\].*got values in \[0, 2\]"),
        (lambda: cal.expected_calibration_error([0, -1], GOOD_P), r"labels.*\[0, 1\]"),
        (lambda: cal.expected_calibration_error([0, 1, 1], GOOD_P), r"3 labels for 2 predictions"),
        (lambda: cal.expected_calibration_error([0, 1], [[0.6, 0.6], [0.3, 0.7]]), r"simplex.*from_logits"),
        (lambda: cal.expected_calibration_error([0, 1], [[1.5, -0.5], [0.3, 0.7]]), r"simplex"),
        (lambda: cal.expected_calibration_error([], np.zeros((0, 3))), r"empty"),
        (
            lambda: cal.expected_calibration_error([0, 1], GOOD_P, num_bins=0),
            r"num_bins.*positive int, got 0",
        ),
        (lambda: cal.expected_calibration_error([0, 1], GOOD_P, num_bins=2.5), r"num_bins"),
        (lambda: cal.expected_calibration_error([0, 1], GOOD_P, norm="l3"), r"norm.*'l3'"),
        (lambda: cal.expected_calibration_error([0, 1], GOOD_P, binning="quantile"), r"binning"),
        (lambda: cal.expected_calibration_error([0.5, 1], GOOD_P), r"integer class indices"),
        (lambda: cal.expected_calibration_error([[0.5, 0.5], [0, 1]], GOOD_P), r"one-hot"),
        (lambda: cal.brier_score([0, 1], [[np.nan, 1.0], [0.3, 0.7]]), r"brier_score.*NaN"),
        (
            lambda: cal.negative_log_likelihood([0, 1], [[0.2, 0.2], [0.3, 0.7]]),
            r"negative_log_likelihood.*simplex",
        ),
        (
            lambda: cal.negative_log_likelihood([0, 3], [[1.0, 2.0], [0.0, 0.0]], from_logits=True),
            r"\[0, 1\]",
        ),
        (lambda: cal.classwise_calibration_error([0, 1], GOOD_P, num_bins=-1), r"classwise.*num_bins"),
        (lambda: cal.brier_decomposition([0, 1], GOOD_P, num_bins=0), r"brier_decomposition.*num_bins"),
        (lambda: cal.interval_coverage([1.0], [2.0], [1.0]), r"lower.*upper"),
        (lambda: cal.interval_coverage([1.0, 2.0], [0.0], [3.0]), r"shape"),
        (lambda: cal.quantile_calibration_error(pit=[0.2, 1.5]), r"pit.*\[0, 1\]"),
        (lambda: cal.quantile_calibration_error(pit=[]), r"empty"),
        (lambda: cal.quantile_calibration_error(pit=[0.5], levels=[0.0, 0.5]), r"levels.*\(0, 1\)"),
        (lambda: cal.quantile_calibration_error([1.0], [0.0]), r"y_true.*mean.*scale"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match="expected_calibration_error.*numeric"):
        cal.expected_calibration_error(["a", "b"], GOOD_P)


def test_simplex_tolerance_accepts_float32_round_off(rng):
    probs = random_probs(rng, 50, 10).astype(np.float32)
    probs[:, 0] += 1e-5  # within tolerance
    labels = rng.integers(0, 10, size=50)
    assert np.isfinite(cal.expected_calibration_error(labels, probs))

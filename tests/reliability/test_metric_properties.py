"""Property tests of the calibration and uncertainty metrics (hypothesis + seeded checks).

* ECE (every binning and norm) and classwise ECE lie in [0, 1];
* ECE ≈ 0 for a predictor calibrated by construction (labels drawn from the
  predicted probabilities, large n) and clearly > 0 for a sharpened one;
* metrics are invariant to permuting the examples;
* the Brier decomposition sums to the Brier score, which matches a NumPy reference;
* entropies >= 0 and 0 <= mutual information <= predictive entropy, with the
  exact identity H[mean] = E[H] + MI, against a NumPy reference.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from bayesflip import calibration as cal
from bayesflip import uncertainty as unc

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)

problems = st.fixed_dictionaries(
    {
        "n": st.integers(1, 300),
        "k": st.integers(2, 6),
        "alpha": st.sampled_from([0.05, 0.5, 1.0, 5.0]),  # small alpha: near-degenerate rows
        "seed": st.integers(0, 2**32 - 1),
    }
)


def _sample(n, k, alpha, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, alpha), size=n)
    probs = np.clip(probs, 0.0, None)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, k, size=n)
    return rng, labels, probs


@SETTINGS
@given(problems, st.integers(1, 30))
def test_calibration_errors_lie_in_unit_interval(problem, num_bins):
    _, labels, probs = _sample(**problem)
    for binning in ("equal_width", "equal_mass"):
        for norm in ("l1", "l2", "max"):
            ece = cal.expected_calibration_error(labels, probs, num_bins=num_bins, binning=binning, norm=norm)
            assert 0.0 <= ece <= 1.0, (binning, norm, ece)
    cw = cal.classwise_calibration_error(labels, probs, num_bins=num_bins)
    assert 0.0 <= cw <= 1.0


@SETTINGS
@given(problems)
def test_metrics_are_invariant_to_permuting_examples(problem):
    rng, labels, probs = _sample(**problem)
    perm = rng.permutation(len(labels))
    for metric in (
        lambda y, p: cal.expected_calibration_error(y, p, num_bins=10),
        lambda y, p: cal.expected_calibration_error(y, p, num_bins=7, binning="equal_mass"),
        lambda y, p: cal.classwise_calibration_error(y, p, num_bins=5),
        cal.brier_score,
        cal.negative_log_likelihood,
        lambda y, p: tuple(cal.brier_decomposition(y, p, num_bins=8)),
    ):
        np.testing.assert_allclose(
            metric(labels, probs), metric(labels[perm], probs[perm]), rtol=1e-6, atol=1e-9
        )


@SETTINGS
@given(problems, st.one_of(st.none(), st.integers(1, 20)))
def test_brier_decomposition_sums_to_brier_score(problem, num_bins):
    _, labels, probs = _sample(**problem)
    d = cal.brier_decomposition(labels, probs, num_bins=num_bins)
    onehot = np.eye(probs.shape[1])[labels]
    reference = np.mean(np.sum((probs - onehot) ** 2, axis=1))  # NumPy closed form
    np.testing.assert_allclose(d.brier, reference, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(cal.brier_score(labels, probs), reference, rtol=1e-5, atol=1e-7)
    total = d.reliability - d.resolution + d.uncertainty + d.within_bin_variance - 2 * d.within_bin_covariance
    np.testing.assert_allclose(total, d.brier, rtol=1e-5, atol=1e-6)
    assert d.reliability >= -1e-9 and d.resolution >= -1e-9 and 0.0 <= d.uncertainty <= 1.0


def test_ece_vanishes_for_a_predictor_calibrated_by_construction():
    """Labels drawn from the predicted probabilities: the top-label ECE is pure
    sampling noise, O(sqrt(num_bins / n)) — below 0.01 at n = 200k with 15 bins.
    A sharpened (overconfident) version of the same predictor is clearly off."""
    rng = np.random.default_rng(0)
    n, k = 200_000, 4
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    labels = (rng.random(n)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)  # y ~ Categorical(p)
    labels = np.minimum(labels, k - 1)
    for binning in ("equal_width", "equal_mass"):
        assert cal.expected_calibration_error(labels, probs, num_bins=15, binning=binning) < 0.01
    assert cal.classwise_calibration_error(labels, probs, num_bins=15) < 0.01
    sharp = probs**3 / np.sum(probs**3, axis=1, keepdims=True)
    assert cal.expected_calibration_error(labels, sharp, num_bins=15) > 0.05


def _entropy_np(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


@SETTINGS
@given(problems, st.integers(1, 12))
def test_entropy_and_mutual_information_bounds(problem, num_samples):
    rng = np.random.default_rng(problem["seed"])
    n, k, alpha = min(problem["n"], 50), problem["k"], problem["alpha"]
    sample_probs = rng.dirichlet(np.full(k, alpha), size=(num_samples, n))
    sample_probs /= sample_probs.sum(axis=-1, keepdims=True)
    mean = sample_probs.mean(axis=0)
    h_total = unc.predictive_entropy(mean)
    h_exp = unc.expected_entropy(sample_probs)
    mi = unc.mutual_information(sample_probs)
    assert np.all(h_total >= 0) and np.all(h_exp >= 0) and np.all(mi >= 0)
    assert np.all(h_total <= np.log(k) + 1e-5)
    assert np.all(mi <= h_total + 1e-6)
    np.testing.assert_allclose(h_total, _entropy_np(mean), atol=1e-5)
    np.testing.assert_allclose(h_exp, _entropy_np(sample_probs).mean(axis=0), atol=1e-5)
    np.testing.assert_allclose(h_total, h_exp + mi, atol=1e-5)
    if num_samples == 1:
        np.testing.assert_allclose(mi, 0.0, atol=1e-6)  # one draw: no epistemic term

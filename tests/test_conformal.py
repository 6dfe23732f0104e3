"""Tests of bayesflip.conformal against independent references.

- the quantile rule on hand-made data and against ``np.quantile(method="higher")``;
- APS/RAPS scores and sets equal to a loop-by-loop NumPy port of the published
  algorithms (Romano, Sesia, Candès 2020; Angelopoulos, Bates, Malik, Jordan
  2021, Algorithm 2 and their reference code's ``get_tau``/``gcq``);
- coverage, a statistical test: over R random calibration/test splits of
  synthetic exchangeable data (a fixed, deliberately imperfect model), the mean
  coverage lies in ``[1 − α, 1 − α + 1/(n+1)]`` up to 4 standard errors of the
  mean over splits, and within 4 standard errors of the exact value
  ``⌈(n+1)(1−α)⌉/(n+1)`` for tie-free scores;
- the wrappers on real (small, untrained) bayesflip models through ``mc_predict``;
- every error path.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from scipy import stats

from bayesflip import calibration, conformal, heads
from bayesflip.layers import DenseFlipout


# --------------------------------------------------------------------------- quantile rule
def test_quantile_hand_made():
    s = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert conformal.conformal_quantile(s, 0.5) == 3.0  # k = ceil(6 * 0.5) = 3
    assert conformal.conformal_quantile(s, 0.34) == 4.0  # k = ceil(6 * 0.66) = ceil(3.96) = 4
    assert conformal.conformal_quantile(s, 1 / 3) == 4.0  # k = ceil(6 * 2/3) = 4 exactly (round-off safe)
    assert conformal.conformal_quantile(np.arange(1.0, 10.0), 0.1) == 9.0  # n = 9: k = ceil(10 * 0.9) = 9
    assert conformal.conformal_quantile(np.arange(1.0, 20.0), 0.05) == 19.0  # n = 19, k = 19
    with pytest.raises(ValueError, match=r"8 calibration scores are too few for alpha=0.1.*at least 9"):
        conformal.conformal_quantile(np.arange(1.0, 9.0), 0.1)
    assert [conformal.min_calibration_size(a) for a in (0.5, 0.2, 0.1, 0.05, 0.01)] == [1, 4, 9, 19, 99]


@pytest.mark.parametrize("n", [9, 10, 37, 100, 999])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2, 0.5])
def test_quantile_matches_numpy_inverted_cdf(n, alpha):
    s = np.random.default_rng(n).normal(size=(n, 3))
    k = math.ceil(round((n + 1) * (1 - alpha), 9))
    if k > n:
        with pytest.raises(ValueError, match="too few"):
            conformal.conformal_quantile(s, alpha)
        return
    # smallest x with F_n(x) >= k/n (asked at (k - 1/2)/n: k/n itself is at the mercy of round-off in n * q)
    ref = np.quantile(s, (k - 0.5) / n, axis=0, method="inverted_cdf")
    np.testing.assert_array_equal(conformal.conformal_quantile(s, alpha), ref)
    assert conformal.conformal_quantile(s[:, 0], alpha) == ref[0]
    np.testing.assert_array_equal(np.sort(s, axis=0)[k - 1], ref)


def test_numpy_higher_idiom_is_one_rank_too_high():
    # np.quantile(s, k/n, method="higher") interpolates at k(n-1)/n, so it returns the (k+1)-th smallest
    s = np.arange(1.0, 6.0)
    assert conformal.conformal_quantile(s, 0.5) == 3.0
    assert np.quantile(s, 3 / 5, method="higher") == 4.0


# --------------------------------------------------------------------------- APS / RAPS reference
def _ref_sort_sum(p):
    order = p.argsort(axis=1)[:, ::-1]
    ordered = np.take_along_axis(p, order, axis=1)
    return order, ordered, ordered.cumsum(axis=1)


def _ref_score(p, y, u, lam, k_reg, randomized, allow_zero_sets):
    """Angelopoulos et al.'s ``get_tau`` for one example (penalties λ at ranks ≥ k_reg, 0-based)."""
    order, ordered, cumsum = _ref_sort_sum(p[None])
    pen = np.zeros(p.size)
    pen[k_reg:] += lam
    r = int(np.where(order[0] == y)[0][0])
    if not randomized:
        return cumsum[0, r] + pen[: r + 1].sum()
    if r == 0:
        return (cumsum[0, 0] if not allow_zero_sets else u * cumsum[0, 0]) + pen[0]
    return u * ordered[0, r] + cumsum[0, r - 1] + pen[: r + 1].sum()


def _ref_set(p, tau, u, lam, k_reg, randomized, allow_zero_sets):
    """Algorithm 2 of Angelopoulos et al. 2021 (their ``gcq``) for one example: a set of classes."""
    order, ordered, cumsum = _ref_sort_sum(p[None])
    pen = np.zeros(p.size)
    pen[k_reg:] += lam
    pen_cum = pen.cumsum()
    size = min(int(((cumsum[0] + pen_cum) <= tau).sum()) + 1, p.size)
    if randomized:
        v = (tau - (cumsum[0, size - 1] - ordered[0, size - 1]) - pen_cum[size - 1]) / ordered[0, size - 1]
        size -= int(u >= v)
    if not allow_zero_sets and size == 0:
        size = 1
    return set(order[0, :size].tolist())


@pytest.mark.parametrize(
    "score,lam,k_reg", [("aps", 0.0, 0), ("raps", 0.05, 1), ("raps", 0.2, 2), ("raps", 0.1, 0)]
)
@pytest.mark.parametrize("randomized", [True, False])
@pytest.mark.parametrize("allow_empty", [True, False])
def test_aps_raps_equal_published_algorithm(score, lam, k_reg, randomized, allow_empty):
    rng = np.random.default_rng(7)
    n, k = 60, 6
    probs = rng.dirichlet(np.full(k, 0.7), size=n)
    labels = rng.integers(0, k, size=n)
    u = np.random.default_rng(123).uniform(size=n)
    s = conformal.class_scores(probs, score, randomized, lam, k_reg, seed=123, allow_empty=allow_empty)
    explicit = conformal.class_scores(probs, score, randomized, lam, k_reg, u=u, allow_empty=allow_empty)
    assert np.allclose(s, explicit)
    cal = conformal.label_scores(s, labels)
    ref_cal = [_ref_score(probs[i], labels[i], u[i], lam, k_reg, randomized, allow_empty) for i in range(n)]
    np.testing.assert_allclose(cal, ref_cal, rtol=0, atol=1e-12)
    for tau in (0.3, 0.62, 0.9, 0.97, 1.15):
        keep_top = randomized and not allow_empty
        sets = conformal.prediction_sets(
            s, tau, probs=probs if keep_top else None, include_last=not randomized
        )
        for i in range(n):
            ref = _ref_set(probs[i], tau, u[i], lam, k_reg, randomized, allow_empty)
            assert set(np.flatnonzero(sets[i]).tolist()) == ref, (i, tau)


def test_nonrandomized_plain_set_is_published_set_minus_crossing_class():
    probs = np.random.default_rng(3).dirichlet(np.ones(5), size=40)
    s = conformal.class_scores(probs, "aps", randomized=False)
    plain = conformal.prediction_sets(s, 0.8)
    published = conformal.prediction_sets(s, 0.8, include_last=True)
    assert np.all(published.sum(1) == np.minimum(plain.sum(1) + 1, 5))
    assert np.all(published >= plain)


def test_lac_scores_and_sets():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.35, 0.25]])
    np.testing.assert_allclose(conformal.class_scores(p, "lac"), 1 - p)
    assert conformal.prediction_sets(conformal.class_scores(p, "lac"), 0.7).tolist() == [
        [True, False, False],
        [True, True, False],
    ]


def test_randomization_follows_seed():
    p = np.random.default_rng(0).dirichlet(np.ones(4), size=50)
    a = conformal.class_scores(p, "aps", seed=5)
    np.testing.assert_array_equal(a, conformal.class_scores(p, "aps", seed=5))
    assert not np.allclose(a, conformal.class_scores(p, "aps", seed=6))
    gen = np.random.default_rng(5)
    np.testing.assert_array_equal(a, conformal.class_scores(p, "aps", seed=gen))


# --------------------------------------------------------------------------- coverage (statistical)
R, N_CAL, N_TEST, ALPHA = 400, 50, 200, 0.1
EXACT = math.ceil((N_CAL + 1) * (1 - ALPHA)) / (N_CAL + 1)  # 46/51 for tie-free scores


def _check_coverage(covs, exact=True):
    covs = np.asarray(covs)
    mean, se = covs.mean(), covs.std(ddof=1) / np.sqrt(len(covs))
    tol = 4 * se
    assert mean >= 1 - ALPHA - tol, (mean, se)
    if exact:
        assert mean <= 1 - ALPHA + 1 / (N_CAL + 1) + tol, (mean, se)
        assert abs(mean - EXACT) < tol, (mean, EXACT, se)
    return mean


def _regression_data(rng, n):
    x = rng.uniform(-2, 2, n)
    y = np.sin(2 * x) + (0.1 + 0.4 * np.abs(x)) * rng.standard_t(5, n)
    mean = np.sin(2 * x) + 0.1  # a biased model ...
    sd = 0.3 + 0.2 * np.abs(x)  # ... with a roughly right, too-small spread
    return y, mean, sd


def test_regression_coverage_over_random_splits():
    rng = np.random.default_rng(0)
    covs = {m: [] for m in conformal.REGRESSION_SCORES}
    widths = {m: [] for m in conformal.REGRESSION_SCORES}
    z = stats.norm.ppf(1 - ALPHA / 2)
    for _ in range(R):
        y, mu, sd = _regression_data(rng, N_CAL + N_TEST)
        c, t = slice(0, N_CAL), slice(N_CAL, None)
        q = conformal.conformal_quantile(conformal.absolute_residual_score(y[c], mu[c]), ALPHA)
        ints = {"absolute": conformal.absolute_residual_interval(mu[t], q)}
        q = conformal.conformal_quantile(conformal.normalized_residual_score(y[c], mu[c], sd[c]), ALPHA)
        ints["normalized"] = conformal.normalized_interval(mu[t], sd[t], q)
        lo, hi = mu - z * sd, mu + z * sd
        q = conformal.conformal_quantile(conformal.cqr_score(y[c], lo[c], hi[c]), ALPHA)
        ints["cqr"] = conformal.cqr_interval(lo[t], hi[t], q)
        for m, (a, b) in ints.items():
            covs[m].append(conformal.interval_covered(y[t], a, b).mean())
            widths[m].append(conformal.mean_width(a, b))
    for m in covs:
        _check_coverage(covs[m])
    # the model's sd tracks the noise: normalised intervals are narrower at the same coverage
    assert np.mean(widths["normalized"]) < 0.95 * np.mean(widths["absolute"])


def _classification_data(rng, n, k=5):
    probs = rng.dirichlet(np.full(k, 0.8), size=n)  # the model's predictive
    true = probs**2 / (probs**2).sum(1, keepdims=True)  # the truth is sharper: the model is underconfident
    labels = (rng.uniform(size=(n, 1)) > np.cumsum(true, axis=1)).sum(1)
    return probs, labels


@pytest.mark.parametrize(
    "score,randomized,include_last",
    [
        ("lac", False, False),
        ("aps", True, False),
        ("aps", False, False),
        ("aps", False, True),
        ("raps", True, False),
        ("raps", False, False),
    ],
)
def test_classification_coverage_over_random_splits(score, randomized, include_last):
    rng = np.random.default_rng(1)
    covs, sizes = [], []
    for _r in range(R):
        probs, labels = _classification_data(rng, N_CAL + N_TEST)
        s = conformal.class_scores(probs, score, randomized, lam=0.1, k_reg=1, seed=rng)
        q = conformal.conformal_quantile(conformal.label_scores(s[:N_CAL], labels[:N_CAL]), ALPHA)
        sets = conformal.prediction_sets(s[N_CAL:], q, include_last=include_last)
        covs.append(conformal.set_covered(sets, labels[N_CAL:]).mean())
        sizes.append(conformal.mean_set_size(sets))
    mean = _check_coverage(covs, exact=not include_last)
    if include_last:  # the published non-randomised set is conservative
        assert mean > 1 - ALPHA + 1 / (N_CAL + 1)
    assert 1 < np.mean(sizes) < 5


# --------------------------------------------------------------------------- wrappers on models
def _regression_model():
    head = heads.GaussianHead(units=1)
    return keras.Sequential(
        [
            keras.Input((1,)),
            # seeded weights too (not only the noise): the coverage checks are then one fixed draw,
            # independent of the test order
            DenseFlipout(
                8, activation="tanh", seed=0, kernel_initializer=keras.initializers.GlorotUniform(seed=0)
            ),
            DenseFlipout(2, seed=1, kernel_initializer=keras.initializers.GlorotUniform(seed=1)),
            head,
        ]
    )


def test_conformal_regressor_on_a_model():
    rng = np.random.default_rng(0)
    n_cal, n_test = 2000, 2000
    x = rng.uniform(-2, 2, (n_cal + n_test, 1)).astype("float32")
    y = (np.sin(2 * x[:, 0]) + 0.3 * rng.normal(size=n_cal + n_test)).astype("float32")
    model = _regression_model()  # untrained: the guarantee does not care
    for score in conformal.REGRESSION_SCORES:
        cr = conformal.ConformalRegressor(model, score=score, num_samples=8).fit(x[:n_cal], y[:n_cal])
        assert cr.num_calibration == n_cal
        for alpha in (0.1, 0.3):
            lo, hi = cr.predict(x[n_cal:], alpha=alpha)
            assert lo.shape == (n_test,) and np.all(hi >= lo)
            cov = conformal.interval_covered(y[n_cal:], lo, hi).mean()
            # coverage given the calibration set is Beta-distributed around 1 - alpha (sd ~ sqrt(a(1-a)/n_cal)),
            # and the test set adds binomial noise: 4 standard deviations of both
            tolerance = 4 * np.sqrt(alpha * (1 - alpha) * (1 / n_cal + 1 / n_test))
            assert abs(cov - (1 - alpha)) < tolerance, (score, alpha, cov, tolerance)
        if score != "cqr":  # (CQR's base interval changes with alpha too)
            assert cr.quantile(0.1) > cr.quantile(0.3)  # alpha chosen at predict time
    # (N, 1) targets keep the unit axis; the quantile is one per unit
    cr = conformal.ConformalRegressor(model, num_samples=8).fit(x[:n_cal], y[:n_cal, None])
    lo, hi = cr.predict(x[n_cal : n_cal + 10])
    assert lo.shape == (10, 1) and np.shape(cr.quantile(0.1)) == (1,)


def test_regressor_from_draws_and_predictive():
    rng = np.random.default_rng(1)
    draws = rng.normal(size=(8, 300, 2))  # MC draws of point predictions, 2 outputs
    y = rng.normal(size=(300, 2))
    cr = conformal.ConformalRegressor(score="cqr").fit_predictive(draws[:, :100], y[:100])
    lo, hi = cr.predict_predictive(draws[:, 100:], 0.2)
    assert lo.shape == (200, 2) and np.shape(cr.quantile(0.2)) == (2,)
    # a RegressionPredictive: normalised by sqrt(total variance)
    samples = np.stack([rng.normal(size=(8, 50, 1)), np.full((8, 50, 1), 0.5)], -1)
    p = heads.predictive(heads.GaussianHead(), samples)
    yy = rng.normal(size=50)
    cr = conformal.ConformalRegressor().fit_predictive(p, yy)
    q = cr.quantile(0.2)
    expected = conformal.conformal_quantile(np.abs(yy - p.mean[:, 0]) / np.sqrt(p.total_variance[:, 0]), 0.2)
    assert np.isclose(float(np.squeeze(q)), expected)


def test_conformal_classifier_on_a_model():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 4)).astype("float32")
    labels = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5)
    model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, seed=0), heads.CategoricalHead()])
    for score in conformal.CLASSIFICATION_SCORES:
        cc = conformal.ConformalClassifier(model, score=score, seed=0, num_samples=8)
        cc.fit(x[:400], labels[:400])
        sets = cc.predict(x[400:], alpha=0.1)
        assert sets.shape == (800, 3) and sets.dtype == bool
        assert abs(conformal.set_covered(sets, labels[400:]).mean() - 0.9) < 0.05
    # same seed, same sets (the wrapper's Generator draws for calibration, then for each predict in turn)
    probs = bayesflip_mc(model, x)
    a = conformal.ConformalClassifier(seed=3).fit_predictive(probs[:400], labels[:400])
    b = conformal.ConformalClassifier(seed=3).fit_predictive(probs[:400], labels[:400])
    first = a.predict_predictive(probs[400:], 0.1)
    np.testing.assert_array_equal(first, b.predict_predictive(probs[400:], 0.1))
    assert not np.array_equal(first, a.predict_predictive(probs[400:], 0.1))  # a fresh u per call


def bayesflip_mc(model, x):
    from bayesflip.uncertainty import mc_predict

    return mc_predict(model, x, num_samples=8)


# --------------------------------------------------------------------------- metrics
def test_group_metrics():
    covered = np.array([1, 1, 0, 1, 0, 0, 1, 1], bool)
    g = conformal.coverage_by_group(covered, [2, 2, 2, 2, 5, 5, 7, 7])
    assert g.groups.tolist() == [2, 5, 7] and g.count.tolist() == [4, 2, 2]
    np.testing.assert_allclose(g.coverage, [0.75, 0.0, 1.0])
    assert g.worst == 0.0
    deciles = conformal.quantile_groups(np.random.default_rng(0).normal(size=1000), 10)
    assert np.bincount(deciles).tolist() == [100] * 10
    y, lo, hi = np.array([0.0, 1.0, 2.0]), np.zeros(3), np.ones(3) * 1.5
    assert conformal.interval_covered(y, lo, hi).mean() == calibration.interval_coverage(y, lo, hi)
    assert conformal.mean_width(lo, hi) == 1.5
    assert conformal.mean_set_size(np.eye(3, dtype=bool)) == 1.0


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize("alpha", [0, 1, -0.1, 1.5, True, "0.1", None, float("nan")])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"`alpha` must be a number in \(0, 1\)"):
        conformal.conformal_quantile([1.0, 2.0], alpha)
    cc = conformal.ConformalClassifier(score="lac").fit_predictive(np.full((20, 2), 0.5), np.zeros(20, int))
    with pytest.raises(ValueError, match=r"ConformalClassifier.quantile: `alpha` must be"):
        cc.predict_predictive(np.full((2, 2), 0.5), alpha)


def test_too_few_calibration_points():
    cr = conformal.ConformalRegressor(score="absolute").fit_predictive(np.zeros((4, 15)), np.ones(15))
    assert cr.quantile(0.1) == 1.0
    msg = r"15 calibration points are too few for alpha=0.05; it needs at least 19"
    with pytest.raises(ValueError, match=msg):
        cr.predict_predictive(np.zeros((4, 3)), alpha=0.05)
    cc = conformal.ConformalClassifier(score="lac").fit_predictive(np.full((5, 2), 0.5), np.zeros(5, int))
    with pytest.raises(ValueError, match=r"5 calibration scores are too few for alpha=0.1"):
        cc.quantile(0.1)


def test_shape_and_label_errors():
    msg = r"`y` and `mean` must have the same shape, got `y` \(3,\) and `mean` \(2,\)"
    with pytest.raises(ValueError, match=msg):
        conformal.absolute_residual_score([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"every `sd` must be > 0"):
        conformal.normalized_residual_score([1.0], [1.0], [0.0])
    msg = r"ConformalRegressor.fit: `y` and `the predictive mean` must have the same"
    with pytest.raises(ValueError, match=msg):
        conformal.ConformalRegressor().fit_predictive(np.zeros((4, 10, 2)), np.zeros(10))
    draws = np.random.default_rng(0).normal(size=(4, 20))
    cr = conformal.ConformalRegressor().fit_predictive(draws, np.zeros(20))
    with pytest.raises(ValueError, match=r"per-example shape \(2,\), but calibration had \(\)"):
        cr.predict_predictive(np.ones((4, 3, 2)), 0.1)
    msg = r"labels.*must be in \[0, 2\] for 3 classes, got values in \[0, 3\]"
    with pytest.raises(ValueError, match=msg):
        conformal.ConformalClassifier().fit_predictive(np.full((4, 3), 1 / 3), [0, 1, 2, 3])
    with pytest.raises(ValueError, match=r"got 3 labels for 4 predictions"):
        conformal.ConformalClassifier().fit_predictive(np.full((4, 3), 1 / 3), [0, 1, 2])
    with pytest.raises(ValueError, match=r"probability simplex"):
        conformal.class_scores([[0.5, 0.9]])
    cc = conformal.ConformalClassifier(score="lac").fit_predictive(np.full((20, 3), 1 / 3), np.zeros(20, int))
    with pytest.raises(ValueError, match=r"expected probabilities over 3 classes, got shape \(2, 4\)"):
        cc.predict_predictive(np.full((2, 4), 0.25), 0.1)
    with pytest.raises(ValueError, match=r"`u` must have shape \(1,\)"):
        conformal.class_scores([[0.5, 0.5]], u=[0.1, 0.2])


def test_argument_errors():
    msg = r"`score` must be one of \['normalized', 'absolute', 'cqr'\], got 'abs'"
    with pytest.raises(ValueError, match=msg):
        conformal.ConformalRegressor(score="abs")
    with pytest.raises(ValueError, match=r"`score` must be one of \['lac', 'aps', 'raps'\], got 'thr'"):
        conformal.ConformalClassifier(score="thr")
    with pytest.raises(ValueError, match=r"`lam` must be a finite number >= 0"):
        conformal.class_scores([[0.5, 0.5]], "raps", lam=-1)
    with pytest.raises(ValueError, match=r"`k_reg` must be an int >= 0"):
        conformal.class_scores([[0.5, 0.5]], "raps", k_reg=1.5)
    with pytest.raises(ValueError, match=r"`seed` must be None, a non-negative int or a numpy Generator"):
        conformal.ConformalClassifier(seed="a")
    with pytest.raises(ValueError, match=r"ConformalRegressor.quantile: call fit\(x_cal, y_cal\) first"):
        conformal.ConformalRegressor().quantile(0.1)
    with pytest.raises(ValueError, match=r"no model was given; use fit_predictive"):
        conformal.ConformalRegressor().fit(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match=r"`scores` contains NaN"):
        conformal.conformal_quantile([1.0, np.nan], 0.5)

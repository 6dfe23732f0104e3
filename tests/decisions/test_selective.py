"""Selective prediction against a direct NumPy computation."""

import itertools

import numpy as np
import pytest

from bayesflip import decisions


def _direct(conf, losses):
    order = np.argsort(-conf)
    risks = np.cumsum(losses[order]) / np.arange(1, conf.size + 1)
    oracle = np.cumsum(np.sort(losses)) / np.arange(1, conf.size + 1)
    return risks, risks.mean(), risks.mean() - oracle.mean()


def test_aurc_and_excess_against_numpy(rng):
    conf = rng.random(200)
    errors = (rng.random(200) < 0.6 - 0.5 * conf).astype(float)
    risks, aurc, eaurc = _direct(conf, errors)
    assert decisions.aurc(conf, errors) == pytest.approx(aurc, abs=1e-12)
    assert decisions.excess_aurc(conf, errors) == pytest.approx(eaurc, abs=1e-12)
    curve = decisions.risk_coverage_curve(conf, errors)
    np.testing.assert_allclose(curve.risk, risks)
    np.testing.assert_allclose(curve.coverage, np.arange(1, 201) / 200)
    # 0/1 losses: the oracle's AURC has the closed form of Geifman et al. in the limit
    r = errors.mean()
    assert decisions.aurc(-errors, errors) == pytest.approx(eaurc * 0 + (aurc - eaurc), abs=1e-12)
    assert aurc - eaurc == pytest.approx(r + (1 - r) * np.log(1 - r), abs=0.02)
    # accuracy at coverage and coverage at risk
    assert decisions.accuracy_at_coverage(conf, 1 - errors, 0.5) == pytest.approx(1 - risks[99], abs=1e-12)
    cov, thr = decisions.coverage_at_risk(conf, errors, 0.2)
    i = np.nonzero(risks <= 0.2)[0][-1]
    assert cov == pytest.approx((i + 1) / 200) and thr == np.sort(conf)[::-1][i]


def test_ties_are_averaged_over_orders():
    conf = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    losses = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    aurcs = []
    for perm in itertools.permutations([1, 2, 3]):
        order = np.r_[0, perm, 4]
        aurcs.append(np.mean(np.cumsum(losses[order]) / np.arange(1, 6)))
    assert decisions.aurc(conf, losses) == pytest.approx(np.mean(aurcs), abs=1e-12)
    assert decisions.risk_coverage_curve(conf, losses).coverage.tolist() == [0.2, 0.8, 1.0]


def test_plot(rng, tmp_path):
    conf = rng.random(50)
    fig = decisions.risk_coverage_plot({"a": (conf, conf < 0.3)}, path=tmp_path / "rc.png")
    assert "AURC" in fig.axes[0].get_legend().get_texts()[0].get_text()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: decisions.aurc([], []), r"aurc: got an empty set"),
        (lambda: decisions.aurc([[0.1]], [[1.0]]), r"aurc: `confidences` must have shape \(N,\)"),
        (lambda: decisions.excess_aurc([0.1, 0.2], [1.0]), r"excess_aurc: `losses` must have the shape"),
        (lambda: decisions.aurc([0.1], [-1.0]), r"aurc: `losses` must be non-negative"),
        (
            lambda: decisions.accuracy_at_coverage([0.1], [1], 1.5),
            r"accuracy_at_coverage: `coverage` must lie",
        ),
        (
            lambda: decisions.coverage_at_risk([0.1], [1], -0.1),
            r"coverage_at_risk: `target_risk` must be >= 0",
        ),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()

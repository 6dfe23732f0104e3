"""OOD scores and their evaluation against SciPy / scikit-learn / NumPy references."""

import numpy as np
import pytest
from scipy.special import logsumexp, softmax
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from bayesflip import decisions, uncertainty


@pytest.fixture
def logits(rng):
    return rng.normal(0, 2, size=(6, 40, 5))  # (S, N, K)


def test_energy_is_minus_logsumexp(rng):
    z = rng.normal(0, 3, size=(30, 7))
    np.testing.assert_allclose(decisions.energy(z), -logsumexp(z, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(
        decisions.energy(z, temperature=2.0), -2.0 * logsumexp(z / 2.0, axis=-1), rtol=1e-12
    )


def test_ood_scores_match_their_definitions(logits):
    scores = decisions.ood_scores(logits, from_logits=True)
    assert list(scores) == list(decisions.SCORE_NAMES)
    p = softmax(logits, axis=-1)
    mean = p.mean(0)
    np.testing.assert_allclose(scores["max_softmax_probability"], -mean.max(-1), rtol=1e-10)
    np.testing.assert_allclose(scores["max_logit"], -logits.mean(0).max(-1), rtol=1e-10)
    np.testing.assert_allclose(scores["energy"], -logsumexp(logits.mean(0), axis=-1), rtol=1e-10)
    np.testing.assert_allclose(scores["predictive_entropy"], -(mean * np.log(mean)).sum(-1), rtol=1e-5)
    mi = -(mean * np.log(mean)).sum(-1) + (p * np.log(p)).sum(-1).mean(0)
    np.testing.assert_allclose(scores["mutual_information"], mi, rtol=1e-4, atol=1e-6)
    votes = logits.argmax(-1)
    modal = np.array([np.bincount(votes[:, i], minlength=5).max() for i in range(votes.shape[1])])
    np.testing.assert_allclose(scores["variation_ratio"], 1 - modal / logits.shape[0])
    # probabilities in: the logit scores are absent, the others agree
    from_probs = decisions.ood_scores(p)
    assert "energy" not in from_probs and "max_logit" not in from_probs
    np.testing.assert_allclose(from_probs["predictive_entropy"], scores["predictive_entropy"], rtol=1e-6)


def test_metrics_against_scikit_learn(rng):
    a, b = rng.normal(0, 1, 300), rng.normal(1, 1, 200)
    y = np.r_[np.zeros(a.size), np.ones(b.size)]
    s = np.r_[a, b]
    m = decisions.ood_metrics(a, b)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert m["aupr_in"] == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)
    # FPR95 with in-distribution as positives: scikit-learn's ROC of -score
    fpr, tpr, _ = roc_curve(1 - y, -s)
    assert m["fpr95"] == pytest.approx(fpr[np.searchsorted(tpr, 0.95, side="left")], abs=1e-12)


def test_evaluate_ood_table_and_histograms(logits, tmp_path):
    s_in = decisions.ood_scores(logits, from_logits=True)
    s_out = decisions.ood_scores(logits * 0.1, from_logits=True)
    table = decisions.evaluate_ood(s_in, s_out)
    assert set(table) == set(decisions.SCORE_NAMES)
    assert table["energy"]["auroc"] == pytest.approx(uncertainty.ood_auroc(s_in["energy"], s_out["energy"]))
    assert "fpr95" in str(table).splitlines()[0]
    fig = decisions.ood_histograms(s_in, s_out, path=tmp_path / "h.png")
    assert len(fig.axes) == len(decisions.SCORE_NAMES) and (tmp_path / "h.png").stat().st_size > 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: decisions.ood_metrics([], [1.0]), r"ood_metrics: `scores_in` is empty"),
        (lambda: decisions.ood_metrics([0.1], np.zeros(0)), r"ood_metrics: `scores_out` is empty"),
        (lambda: decisions.ood_metrics([[0.1, 0.2]], [0.3]), r"ood_metrics: `scores_in` must have rank 1"),
        (lambda: decisions.max_logit([1.0, 2.0]), r"max_logit: `logits` must have rank 2"),
        (
            lambda: decisions.variation_ratio(np.ones((3, 2))),
            r"variation_ratio: `sample_probs` must have rank 3",
        ),
        (lambda: decisions.ood_scores(np.ones(3)), r"ood_scores: `samples` must have rank 2 or 3"),
        (
            lambda: decisions.evaluate_ood({"a": [1.0]}, {"b": [2.0]}),
            r"evaluate_ood: .* must name the same scores",
        ),
        (
            lambda: decisions.evaluate_ood({"a": [1.0]}, {"a": []}),
            r"evaluate_ood: `scores_out\['a'\]` is empty",
        ),
        (lambda: decisions.energy([[1.0]], temperature=0), r"energy: `temperature` must be a positive"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()

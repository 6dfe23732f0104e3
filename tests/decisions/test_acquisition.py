"""Acquisition functions against NumPy closed forms; BatchBALD's behaviour on duplicates."""

import numpy as np
import pytest

from bayesflip import decisions


@pytest.fixture
def samples(rng):
    return rng.dirichlet(np.full(4, 0.5), size=(8, 30))  # (S, N, K)


def _h(p):
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)


def test_scores_against_numpy(samples):
    mean = samples.mean(0)
    np.testing.assert_allclose(decisions.bald(samples), _h(mean) - _h(samples).mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(decisions.max_entropy(samples), _h(mean), rtol=1e-5)
    np.testing.assert_allclose(decisions.mean_std(samples), samples.std(0).mean(-1), rtol=1e-12)
    votes = samples.argmax(-1)
    modal = np.array([np.bincount(votes[:, i], minlength=4).max() for i in range(30)])
    np.testing.assert_allclose(decisions.variation_ratios(samples), 1 - modal / 8)


def test_batchbald_of_one_is_bald(samples):
    assert decisions.batchbald(samples, 1).tolist() == [int(np.argmax(decisions.bald(samples)))]


def test_batchbald_exact_joint_against_enumeration(samples):
    # two steps enumerate K^2 configurations exactly: the 2nd pick maximises I[y_a, y_n; w]
    first, second = decisions.batchbald(samples, 2, num_configurations=16)
    joint = np.einsum("si,snj->nij", samples[:, first], samples) / samples.shape[0]
    mi = _h(joint.reshape(30, -1)) - _h(samples[:, first]).mean(0) - _h(samples).mean(0)
    mi[first] = -np.inf
    assert second == int(np.argmax(mi))


def test_batchbald_skips_duplicates_that_topk_bald_takes(rng):
    # 16 posterior draws; input 0 is certain given w but its class flips with s % 2 (BALD = log 2),
    # input 1 flips with (s // 2) % 2 (independent of input 0) but is a little soft (BALD < log 2),
    # inputs 2..7 are nearly agreed on, input 8 duplicates input 0.
    s_idx = np.arange(16)
    eye = np.eye(3)
    pool = np.empty((16, 9, 3))
    pool[:, 0] = eye[s_idx % 2]
    pool[:, 1] = 0.9 * eye[(s_idx // 2) % 2] + 0.1 / 3
    pool[:, 2:8] = rng.dirichlet(np.full(3, 50.0), size=(1, 6))
    pool[:, 8] = pool[:, 0]
    b = decisions.bald(pool)
    assert b[0] == pytest.approx(np.log(2)) and b[1] < b[0]
    assert sorted(decisions.select("bald", pool, 2).tolist()) == [0, 8]  # top-k BALD takes both copies
    assert decisions.batchbald(pool, 2).tolist() == [0, 1]  # BatchBALD: the joint information
    # the sampled estimator (fewer configurations than K^b) still avoids the duplicate
    sampled = decisions.batchbald(pool, 3, num_configurations=5, seed=1)
    assert sampled[:2].tolist() == [0, 1] and 8 not in sampled.tolist()


def test_select_random_and_ties(samples):
    r = decisions.select("random", None, 5, seed=3, pool_size=30)
    assert r.tolist() == np.random.default_rng(3).permutation(30)[:5].tolist()
    for name in ("bald", "max_entropy", "variation_ratios", "mean_std", "batchbald", "random"):
        picked = decisions.select(name, samples, 7, seed=0)
        assert picked.shape == (7,) and np.unique(picked).size == 7


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: decisions.select("bald", s, 0), r"select: `k` must be a positive int, got 0"),
        (lambda s: decisions.select("bald", s, 2.0), r"select: `k` must be a positive int, got 2.0"),
        (
            lambda s: decisions.select("bald", s, 31),
            r"select: the pool \(30 inputs\) is smaller than `k` = 31",
        ),
        (lambda s: decisions.batchbald(s, 31), r"batchbald: the pool \(30 inputs\) is smaller than `k` = 31"),
        (lambda s: decisions.bald(s[0]), r"bald: `sample_probs` must have shape \(S, N, K\)"),
        (lambda s: decisions.select("bald", s[0], 1), r"select: `sample_probs` must have shape \(S, N, K\)"),
        (lambda s: decisions.select("nope", s, 1), r"select: unknown `acquisition` 'nope'"),
        (lambda s: decisions.bald(s[:, :0]), r"bald: `sample_probs` is empty"),
    ],
)
def test_bad_input(samples, call, message):
    with pytest.raises(ValueError, match=message):
        call(samples)


def test_probabilities_off_the_simplex(samples):
    with pytest.raises(ValueError, match=r"max_entropy: `sample_probs` must lie on the probability simplex"):
        decisions.max_entropy(samples * 2)
    with pytest.raises(ValueError, match=r"ood_scores: `samples` must lie on the probability simplex"):
        decisions.ood_scores(samples * 2)

"""Feature-space scores: Mahalanobis against SciPy, DDU against SciPy's Gaussian density, files, layers."""

import keras
import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bayesflip import decisions
from bayesflip.layers import DenseFlipout


@pytest.fixture
def toy(rng):
    means = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 1.0], [0.0, 5.0, -2.0]])
    y = np.repeat(np.arange(3), [60, 80, 100])
    z = means[y] + rng.normal(size=(y.size, 3)) @ np.array(
        [[1.0, 0.3, 0.0], [0.0, 0.8, 0.2], [0.0, 0.0, 0.5]]
    )
    return z, y


def test_mahalanobis_against_scipy(toy, rng):
    z, y = toy
    score = decisions.MahalanobisScore(jitter=0.0).fit_features(z, y)
    means = np.stack([z[y == c].mean(0) for c in range(3)])
    centred = z - means[y]
    vi = np.linalg.inv(centred.T @ centred / len(z))
    q = rng.normal(0, 4, size=(25, 3))
    ref = [min(mahalanobis(row, m, vi) ** 2 for m in means) for row in q]
    np.testing.assert_allclose(score.score_features(q), ref, rtol=1e-9)


def test_gaussian_density_against_scipy(toy, rng):
    z, y = toy
    score = decisions.GaussianDensityScore(jitter=0.0).fit_features(z, y)
    q = rng.normal(0, 4, size=(25, 3))
    logs = [
        np.log(np.mean(y == c))
        + multivariate_normal(z[y == c].mean(0), np.cov(z[y == c].T, bias=True)).logpdf(q)
        for c in range(3)
    ]
    np.testing.assert_allclose(score.score_features(q), -logsumexp(np.stack(logs, 1), axis=1), rtol=1e-9)


@pytest.mark.parametrize("cls", [decisions.MahalanobisScore, decisions.GaussianDensityScore])
def test_save_load_round_trip(cls, toy, tmp_path):
    z, y = toy
    score = cls().fit_features(z, y)
    score.save(tmp_path / "s.npz")
    loaded = cls.load(tmp_path / "s.npz")
    assert type(loaded) is cls and loaded.jitter == score.jitter
    np.testing.assert_array_equal(loaded.score_features(z[:7]), score.score_features(z[:7]))
    assert type(decisions.load_feature_score(tmp_path / "s.npz")) is cls


def test_fit_on_a_layer_and_missing_layer(rng):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(6, activation="relu", seed=0, name="hidden"),
            DenseFlipout(3, seed=1),
        ]
    )
    x = rng.normal(size=(50, 4)).astype("float32")
    y = np.arange(50) % 3
    score = decisions.MahalanobisScore().fit(model, x, y, layer="hidden")
    feats = decisions.layer_features(model, x, "hidden", batch_size=16)
    assert feats.shape == (50, 6)
    np.testing.assert_allclose(
        score.score(model, x[:5], batch_size=2), score.score_features(feats[:5]), rtol=1e-5
    )
    with pytest.raises(
        ValueError, match=r"MahalanobisScore.fit: model '.*' has no layer named 'nope' \(`layer`\)"
    ):
        decisions.MahalanobisScore().fit(model, x, y, layer="nope")
    with pytest.raises(ValueError, match=r"layer_features: model '.*' has no layer named 'nope'"):
        decisions.layer_features(model, x, "nope")


def test_bad_features(toy):
    z, y = toy
    s = decisions.MahalanobisScore().fit_features(z, y)
    with pytest.raises(ValueError, match=r"MahalanobisScore.score_features: `features` must have 3 features"):
        s.score_features(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"MahalanobisScore.score_features: `features` is empty"):
        s.score_features(np.zeros((0, 3)))
    with pytest.raises(
        ValueError, match=r"GaussianDensityScore.fit_features: `labels` must have 240 entries"
    ):
        decisions.GaussianDensityScore().fit_features(z, y[:-1])
    with pytest.raises(ValueError, match=r"GaussianDensityScore.score_features: not fitted"):
        decisions.GaussianDensityScore().score_features(z)

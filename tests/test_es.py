"""Flipout evolution strategies: unbiasedness on a quadratic, antithetic
baseline cancellation, fitness shaping, learning."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bayesflip.es import FlipoutES, centered_ranks

D, B = 4, 64


def _quadratic():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, D)).astype("float32")
    y = rng.normal(size=B).astype("float32")
    return x, y


def sq_fitness(y, out):
    return -tf.square(out[:, 0] - y)


def _true_grad(es, x, y):
    # For a quadratic F, the Gaussian-smoothed fitness differs from F by a
    # constant in θ, so its gradient is the plain gradient of the mean fitness.
    with tf.GradientTape() as tape:
        f = tf.reduce_mean(sq_fitness(y, es.predict(x)))
    return [g.numpy() for g in tape.gradient(f, es.params)]


def _flat(gs):
    return np.concatenate([np.ravel(g) for g in gs])


def _estimates(es, x, y, calls, method="estimate_gradient"):
    out = []
    for _ in range(calls):
        g, _ = getattr(es, method)(sq_fitness, x, y)
        out.append(_flat([t.numpy() for t in g]))
    return np.array(out)


def _assert_unbiased(samples, true, max_rel_se):
    """Every component of the mean estimate within 4.5 standard errors of the
    true gradient (Bonferroni over <= 40 components at ~1e-5 each), and the
    standard errors small enough for that to be a sharp check."""
    mean = samples.mean(0)
    se = samples.std(0, ddof=1) / np.sqrt(len(samples))
    z = (mean - true) / se
    assert np.abs(z).max() < 4.5, z
    assert np.linalg.norm(se) < max_rel_se * np.linalg.norm(true), (np.linalg.norm(se), np.linalg.norm(true))
    return mean


@pytest.mark.parametrize("antithetic", [True, False])
def test_flipout_estimate_is_unbiased_on_quadratic(antithetic):
    x, y = _quadratic()
    es = FlipoutES([D, 1], sigma=0.1, antithetic=antithetic, fitness_shaping=False, seed=1)
    true = _flat(_true_grad(es, x, y))
    mean = _assert_unbiased(_estimates(es, x, y, calls=300), true, 0.15 if antithetic else 0.5)
    if antithetic:
        assert mean @ true / np.linalg.norm(mean) / np.linalg.norm(true) > 0.98


def test_flipout_and_explicit_estimators_agree_on_two_layer_net():
    x, y = _quadratic()
    x, y = x[:16], y[:16]
    es = FlipoutES([D, 5, 1], activation="tanh", sigma=0.02, fitness_shaping=False, seed=2)
    true = _flat(_true_grad(es, x, y))  # σ small: smoothed gradient ≈ gradient
    _assert_unbiased(_estimates(es, x, y, calls=400), true, 0.3)
    _assert_unbiased(_estimates(es, x, y, calls=100, method="explicit_gradient"), true, 0.5)


def _grads_with_offset(antithetic, offset, shaping=False, transform=None):
    x, y = _quadratic()
    es = FlipoutES([D, 3, 1], sigma=0.1, antithetic=antithetic, fitness_shaping=shaping, seed=3)

    def fit(yt, out):
        f = sq_fitness(yt, out) + offset
        return transform(f) if transform else f

    g, _ = es.estimate_gradient(fit, x, y)
    return _flat([t.numpy() for t in g])


def test_antithetic_pairs_cancel_a_constant_baseline():
    a = _grads_with_offset(True, 0.0)
    b = _grads_with_offset(True, 1000.0)
    np.testing.assert_allclose(a, b, atol=1e-3 * np.abs(a).max())
    # Without antithetic pairs the baseline leaks into the estimate.
    c = _grads_with_offset(False, 0.0)
    d = _grads_with_offset(False, 1000.0)
    assert np.abs(c - d).max() > 10 * np.abs(c).max()


def test_fitness_shaping_is_invariant_to_monotone_transforms():
    a = _grads_with_offset(True, 0.0, shaping=True)
    b = _grads_with_offset(True, 0.0, shaping=True, transform=lambda f: tf.exp(f / 5.0) * 3.0)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_antithetic_fitness_halves_are_mirrored_perturbations():
    # With F linear in the output, F(+ΔW_i) + F(-ΔW_i) = 2 F(θ) exactly (one layer).
    x, y = _quadratic()
    es = FlipoutES([D, 1], sigma=0.3, fitness_shaping=False, seed=4)
    lin = lambda yt, out: out[:, 0]  # noqa: E731
    _, f = es.estimate_gradient(lin, x, y)
    f = f.numpy()
    np.testing.assert_allclose(f[:B] + f[B:], 2 * es.predict(x).numpy()[:, 0], atol=1e-4)
    assert np.std(f[:B] - f[B:]) > 0.1  # the perturbations are not zero


def test_centered_ranks():
    r = centered_ranks([0.5, 2.0, -3.0, 1.0, 7.0]).numpy()
    np.testing.assert_allclose(r, [-0.25, 0.25, -0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="centered_ranks"):
        centered_ranks([1.0])


def test_es_learns_linear_regression():
    rng = np.random.default_rng(5)
    w = rng.normal(size=(D,)).astype("float32")
    x = rng.normal(size=(256, D)).astype("float32")
    y = x @ w
    es = FlipoutES([D, 1], sigma=0.05, seed=6)
    opt = keras.optimizers.Adam(0.05)
    before = float(np.mean((es.predict(x).numpy()[:, 0] - y) ** 2))
    for _ in range(150):
        es.step(sq_fitness, x, y, opt)
    after = float(np.mean((es.predict(x).numpy()[:, 0] - y) ** 2))
    assert after < 0.05 * before, (before, after)


def test_errors():
    with pytest.raises(ValueError, match="layer_sizes"):
        FlipoutES([4])
    with pytest.raises(ValueError, match="sigma"):
        FlipoutES([4, 1], sigma=0.0)
    es = FlipoutES([4, 1])
    with pytest.raises(ValueError, match=r"shape \(batch, 4\)"):
        es.estimate_gradient(sq_fitness, np.ones((3, 5), "float32"), np.ones(3, "float32"))
    with pytest.raises(ValueError, match="different batch sizes"):
        es.estimate_gradient(sq_fitness, np.ones((3, 4), "float32"), np.ones(2, "float32"))

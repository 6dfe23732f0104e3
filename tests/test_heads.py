"""Likelihood heads: NLLs against scipy/sklearn/closed forms, the MC predictive against NumPy,
mixture quantiles against root finding and a large Monte Carlo sample, mc_predict integration,
serialization with safe_mode=True, a short training check, and every bad-input message."""

from __future__ import annotations

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import optimize, stats
from sklearn.metrics import log_loss

import bayesflip
from bayesflip import heads
from bayesflip import uncertainty as unc
from bayesflip.layers import DenseFlipout

#: One instance of every head configuration (units=2 where the head has units).
HEAD_CASES = {
    "gaussian-hetero": lambda: heads.GaussianHead(units=2),
    "gaussian-homo": lambda: heads.GaussianHead(units=2, noise="homoscedastic", init_scale=0.7),
    "student-learned-df": lambda: heads.StudentTHead(units=2),
    "student-fixed-df-homo": lambda: heads.StudentTHead(units=2, noise="homoscedastic", df=4.0),
    "categorical": lambda: heads.CategoricalHead(),
    "bernoulli": lambda: heads.BernoulliHead(),
}
NUM_CLASSES = 3  # width of the logits fed to CategoricalHead / BernoulliHead (units = 3)
IN_DIM = 4


def input_width(head: heads.Head) -> int:
    if isinstance(head, (heads.CategoricalHead, heads.BernoulliHead)):
        return NUM_CLASSES
    return head.units * (2 if head.noise == "heteroscedastic" else 1)


def make_labels(head: heads.Head, n: int, rng) -> np.ndarray:
    if isinstance(head, heads.CategoricalHead):
        return rng.integers(0, NUM_CLASSES, n)
    if isinstance(head, heads.BernoulliHead):
        return rng.integers(0, 2, (n, NUM_CLASSES))
    return rng.normal(size=(n, head.units)).astype("float32")


def head_model(head: heads.Head, functional: bool = False) -> keras.Model:
    """DenseFlipout(width) → head, compiled with the head's loss and a set KL weight."""
    if functional:
        inp = keras.Input((IN_DIM,))
        model = keras.Model(inp, head(DenseFlipout(input_width(head), seed=3)(inp)))
    else:
        model = keras.Sequential([keras.Input((IN_DIM,)), DenseFlipout(input_width(head), seed=3), head])
    bayesflip.set_kl_weight(model, num_examples=64)
    model.compile(keras.optimizers.Adam(1e-2), loss=head.loss())
    return model


@pytest.fixture(params=sorted(HEAD_CASES))
def head(request) -> heads.Head:
    return HEAD_CASES[request.param]()


@pytest.fixture
def x(rng) -> np.ndarray:
    return rng.normal(size=(16, IN_DIM)).astype("float32")


def softplus(v):
    return np.logaddexp(0.0, v)


# --------------------------------------------------------------------------- forward pass
def test_heteroscedastic_output_is_loc_and_floored_softplus(rng):
    raw = rng.normal(size=(5, 6)).astype("float32")
    out = heads.GaussianHead(units=3, min_scale=0.01)(raw).numpy()
    assert out.shape == (5, 3, 2)
    np.testing.assert_allclose(out[..., 0], raw[:, :3], rtol=0, atol=0)
    np.testing.assert_allclose(out[..., 1], 0.01 + softplus(raw[:, 3:]), rtol=1e-6)


def test_homoscedastic_scale_starts_at_init_scale_and_is_one_weight_per_unit(rng):
    head = heads.GaussianHead(units=3, noise="homoscedastic", init_scale=0.25, min_scale=0.01)
    loc = rng.normal(size=(4, 3)).astype("float32")
    out = head(loc).numpy()
    np.testing.assert_array_equal(out[..., 0], loc)
    np.testing.assert_allclose(out[..., 1], 0.25, rtol=1e-6)
    assert [w.shape for w in head.trainable_weights] == [(3,)]


def test_student_t_df_learned_starts_at_5_and_fixed_df_is_constant(rng):
    raw = rng.normal(size=(4, 2)).astype("float32")
    learned = heads.StudentTHead()(raw).numpy()
    assert learned.shape == (4, 1, 3)
    np.testing.assert_allclose(learned[..., 2], 5.0, rtol=1e-5)
    fixed = heads.StudentTHead(df=1.5)
    np.testing.assert_array_equal(fixed(raw).numpy()[..., 2], 1.5)
    assert not any("df" in w.name for w in fixed.weights)


@pytest.mark.parametrize("head", [heads.CategoricalHead, heads.BernoulliHead])
def test_logits_heads_pass_logits_through(head, rng):
    head = head()
    logits = rng.normal(size=(4, NUM_CLASSES)).astype("float32")
    np.testing.assert_array_equal(head(logits).numpy(), logits)


def test_output_shape_matches_compute_output_shape(head, x):
    model = head_model(head)
    assert model.predict(x, verbose=0).shape == (len(x), *model.output_shape[1:])


# --------------------------------------------------------------------------- NLL vs references
def test_gaussian_nll_matches_scipy(rng):
    params = np.stack([rng.normal(size=(8, 2)), rng.uniform(0.2, 2.0, (8, 2))], axis=-1).astype("float32")
    y = rng.normal(size=(8, 2)).astype("float32")
    expected = -stats.norm.logpdf(y, params[..., 0], params[..., 1]).sum(axis=1).mean()
    assert float(heads.GaussianNLL()(y, params)) == pytest.approx(expected, rel=1e-5)
    # one unit: labels (batch,) and (batch, 1) agree
    one = params[:, :1]
    ref = -stats.norm.logpdf(y[:, 0], one[:, 0, 0], one[:, 0, 1]).mean()
    for labels in (y[:, 0], y[:, :1]):
        assert float(heads.GaussianNLL()(labels, one)) == pytest.approx(ref, rel=1e-5)


def test_student_t_nll_matches_scipy(rng):
    df = rng.uniform(1.0, 8.0, (8, 2))
    params = np.stack([rng.normal(size=(8, 2)), rng.uniform(0.2, 2.0, (8, 2)), df], axis=-1).astype("float32")
    y = rng.standard_t(3, size=(8, 2)).astype("float32")
    p64 = params.astype(np.float64)
    expected = -stats.t.logpdf(y, p64[..., 2], p64[..., 0], p64[..., 1]).sum(axis=1).mean()
    assert float(heads.StudentTNLL()(y, params)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("label_form", ["int", "int-column", "float"])
def test_categorical_nll_matches_sklearn_log_loss(rng, label_form):
    logits = rng.normal(size=(20, 4)).astype("float32") * 2
    y = rng.integers(0, 4, 20)
    labels = {"int": y, "int-column": y[:, None], "float": y.astype("float32")}[label_form]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    expected = log_loss(y, probs, labels=range(4))
    assert float(heads.CategoricalNLL()(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_bernoulli_nll_matches_sklearn_and_closed_form(rng):
    logits = rng.normal(size=(20, 3)).astype("float32") * 2
    y = rng.integers(0, 2, (20, 3))
    # closed form: -log σ(l) = softplus(-l), -log(1 - σ(l)) = softplus(l), summed over units
    closed = np.mean(np.sum(y * softplus(-logits) + (1 - y) * softplus(logits), axis=1))
    assert float(heads.BernoulliNLL()(y, logits)) == pytest.approx(closed, rel=1e-5)
    one = logits[:, :1]
    expected = log_loss(y[:, 0], 1 / (1 + np.exp(-one[:, 0].astype(np.float64))), labels=[0, 1])
    for labels in (y[:, 0], y[:, :1], y[:, 0].astype(bool)):
        assert float(heads.BernoulliNLL()(labels, one)) == pytest.approx(expected, rel=1e-5)


def test_distribution_log_prob_agrees_with_loss(head, x, rng):
    """head.distribution(model output) is the distribution the loss scores."""
    model = head_model(head)
    params = model.predict(x, verbose=0)
    y = make_labels(head, len(x), rng)
    dist = head.distribution(params)
    log_prob = dist.log_prob(y if not isinstance(head, heads.CategoricalHead) else y.astype("int32")).numpy()
    per_example = log_prob if log_prob.ndim == 1 else log_prob.sum(axis=-1)
    assert float(head.loss()(y, params)) == pytest.approx(-per_example.mean(), rel=1e-5)


# --------------------------------------------------------------------------- predictive
def gaussian_draws(rng, t=5, n=7, units=2):
    return np.stack([rng.normal(size=(t, n, units)), rng.uniform(0.3, 1.5, (t, n, units))], axis=-1)


def test_regression_predictive_decomposition_matches_numpy(rng):
    s = gaussian_draws(rng)
    loc, scale = s[..., 0], s[..., 1]
    p = heads.predictive(heads.GaussianHead(units=2), s)
    np.testing.assert_allclose(p.mean, loc.mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.aleatoric_variance, (scale**2).mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.epistemic_variance, ((loc - loc.mean(0)) ** 2).mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.total_variance, p.aleatoric_variance + p.epistemic_variance, rtol=1e-12)
    # agrees with uncertainty.regression_uncertainty
    ref = unc.regression_uncertainty(loc, scale)
    np.testing.assert_allclose(p.total_variance, ref.total_variance, rtol=1e-12)
    assert p.samples is s or np.array_equal(p.samples, s)


def test_student_t_predictive_variance_uses_df_over_df_minus_2(rng):
    s = gaussian_draws(rng)
    df = rng.uniform(2.5, 10.0, s.shape[:-1])
    s = np.concatenate([s, df[..., None]], axis=-1)
    p = heads.predictive(heads.StudentTHead(units=2), s)
    component_var = df / (df - 2) * s[..., 1] ** 2
    np.testing.assert_allclose(p.aleatoric_variance, component_var.mean(0), rtol=1e-12)
    np.testing.assert_allclose(p.total_variance, component_var.mean(0) + s[..., 0].var(0), rtol=1e-12)
    # a component with df <= 2 has infinite variance
    s[0, 0, 0, 2] = 2.0
    assert np.isinf(heads.predictive(heads.StudentTHead(units=2), s).total_variance[0, 0])


def mixture_cdf(value, loc, scale, df=None):
    dist = stats.norm(loc, scale) if df is None else stats.t(df, loc, scale)
    return dist.cdf(value).mean()


@pytest.mark.parametrize("family", ["gaussian", "student"])
def test_mixture_quantiles_match_root_finding(rng, family):
    s = gaussian_draws(rng, t=4, n=3, units=1)
    head = heads.GaussianHead()
    if family == "student":
        s = np.concatenate([s, rng.uniform(1.0, 6.0, s.shape[:-1] + (1,))], axis=-1)
        head = heads.StudentTHead()
    p = heads.predictive(head, s)
    qs = [0.025, 0.3, 0.5, 0.975]
    got = p.quantile(qs)
    assert got.shape == (4, 3, 1)
    for i, q in enumerate(qs):
        for j in range(3):
            comp = s[:, j, 0]
            df = comp[:, 2] if family == "student" else None
            ref = optimize.brentq(
                lambda v, comp=comp, df=df, q=q: mixture_cdf(v, comp[:, 0], comp[:, 1], df) - q,
                -1e3,
                1e3,
                xtol=1e-12,
            )
            assert got[i, j, 0] == pytest.approx(ref, abs=1e-8)
    lo, hi = p.interval(0.95)
    np.testing.assert_allclose(lo, got[0], rtol=1e-12)  # (1 - 0.95) / 2 is 0.025 only to round-off
    np.testing.assert_allclose(hi, got[3], rtol=1e-12)
    if family == "gaussian":  # the same as the existing uncertainty.prediction_interval
        ref_lo, ref_hi = unc.prediction_interval(s[..., 0], s[..., 1], level=0.95)
        np.testing.assert_allclose(lo, ref_lo, rtol=1e-12)
        np.testing.assert_allclose(hi, ref_hi, rtol=1e-12)


def test_student_t_mixture_quantiles_match_a_large_monte_carlo_sample(rng):
    """Empirical CDF of 10⁶ mixture draws at each computed quantile is q within 4 binomial sd."""
    comps = np.array([[0.0, 1.0, 1.5], [2.0, 0.5, 3.0], [-1.0, 2.0, 10.0]])  # (loc, scale, df), T=3
    p = heads.predictive(heads.StudentTHead(), comps[:, None, None, :])
    m = 1_000_000
    which = rng.integers(0, 3, m)
    draws = comps[which, 0] + comps[which, 1] * rng.standard_t(comps[which, 2])
    for q in (0.01, 0.05, 0.5, 0.9, 0.99):
        value = float(p.quantile(q)[0, 0])
        assert abs(np.mean(draws <= value) - q) < 4 * np.sqrt(q * (1 - q) / m)


def test_classification_predictive_averages_per_draw_probabilities(rng):
    logits = rng.normal(size=(6, 5, 3))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    got = heads.predictive(heads.CategoricalHead(), logits)
    np.testing.assert_allclose(got, probs.mean(0), rtol=1e-5)
    per_draw = heads.predictive(heads.CategoricalHead(), logits, return_samples=True)
    np.testing.assert_allclose(per_draw, probs, rtol=1e-5)
    np.testing.assert_allclose(
        heads.predictive(heads.BernoulliHead(), logits), (1 / (1 + np.exp(-logits))).mean(0), rtol=1e-5
    )


# --------------------------------------------------------------------------- mc_predict
@pytest.mark.parametrize("functional", [False, True], ids=["sequential", "functional"])
def test_mc_predict_returns_the_heads_predictive(head, x, functional):
    model = head_model(head, functional=functional)
    assert heads.output_head(model) is head
    out = unc.mc_predict(model, x, num_samples=6)
    if isinstance(head, (heads.CategoricalHead, heads.BernoulliHead)):
        assert out.shape == (len(x), NUM_CLASSES)
        assert np.all((out >= 0) & (out <= 1))
        if isinstance(head, heads.CategoricalHead):
            np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
        draws = unc.mc_predict(model, x, num_samples=6, return_samples=True)
        assert draws.shape == (6, len(x), NUM_CLASSES)
        return
    assert isinstance(out, heads.RegressionPredictive)
    assert out.samples.shape == (6, len(x), head.units, head._num_params)
    assert not np.allclose(out.samples[0], out.samples[1])  # independent draws differ
    again = heads.predictive(head, out.samples)  # the hook reduces the draws exactly like heads.predictive
    for a, b in zip(again[:4], out[:4]):
        np.testing.assert_array_equal(a, b)
    assert out.interval(0.9)[0].shape == (len(x), head.units)


def test_mc_predict_in_posterior_mean_mode_equals_the_link_of_the_output(x):
    model = head_model(heads.CategoricalHead())
    with bayesflip.posterior_mean(model), pytest.warns(UserWarning, match="posterior-mean mode"):
        logits = model(x).numpy()
        probs = unc.mc_predict(model, x, num_samples=3)
    np.testing.assert_allclose(probs, tf.nn.softmax(logits).numpy(), rtol=1e-5, atol=1e-7)
    model = head_model(heads.GaussianHead(units=2))
    with bayesflip.posterior_mean(model), pytest.warns(UserWarning, match="posterior-mean mode"):
        params = model(x).numpy()
        p = unc.mc_predict(model, x, num_samples=3)
    np.testing.assert_allclose(p.mean, params[..., 0], rtol=1e-6)
    np.testing.assert_allclose(p.aleatoric_variance, params[..., 1] ** 2, rtol=1e-5)
    np.testing.assert_array_equal(p.epistemic_variance, 0.0)


def test_models_without_a_single_output_head_keep_the_old_behaviour(x):
    inp = keras.Input((IN_DIM,))
    params = heads.GaussianHead()(DenseFlipout(2, seed=0)(inp))
    multi = keras.Model(inp, [params, DenseFlipout(2, seed=1)(inp)])
    assert heads.output_head(multi) is None
    out = unc.mc_predict(multi, x, num_samples=3)
    assert isinstance(out, list) and out[0].shape == (len(x), 1, 2)
    after_head = keras.Model(inp, keras.layers.Flatten()(params))  # the head is not the output layer
    assert heads.output_head(after_head) is None
    assert unc.mc_predict(after_head, x, num_samples=3).shape == (len(x), 2)


# --------------------------------------------------------------------------- serialization
def test_config_keys_are_the_constructor_arguments_and_rebuild(head):
    config = head.get_config()
    own = set(inspect.signature(type(head).__init__).parameters) - {"self", "kwargs"}
    assert own <= set(config)
    rebuilt = type(head).from_config(config)
    assert rebuilt.get_config() == config
    loss = head.loss()
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
    assert set(loss.get_config()) == set(inspect.signature(type(loss).__init__).parameters) - {"self"}


def test_keras_file_round_trip_in_safe_mode(head, x, rng, tmp_path):
    model = head_model(head)
    model.fit(x, make_labels(head, len(x), rng), epochs=1, batch_size=8, verbose=0)
    path = tmp_path / "head.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    assert type(restored.layers[-1]) is type(head)
    assert type(restored.loss) is type(head.loss())
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    # the saved RNG state makes even the sampled forward passes identical
    np.testing.assert_array_equal(model.predict(x, verbose=0), restored.predict(x, verbose=0))


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("noise", ["heteroscedastic", "homoscedastic"])
def test_gaussian_head_learns_the_true_noise_scale(rng, noise):
    """y = 2x + ε, x ~ U(-1, 1); heteroscedastic: sd(x) = 0.3 + 0.2x; homoscedastic: sd 0.3.

    20 epochs of 4,000 points (deterministic Dense layers, ~4 s on 2 cores). The
    learned scale must be within 15 % of the truth at x = ±0.5 (seeds 0–2 of this
    setup land within 9 %).
    """
    keras.utils.set_random_seed(0)
    n = 4000
    xs = rng.uniform(-1, 1, (n, 1)).astype("float32")
    true_sd = 0.3 + 0.2 * xs if noise == "heteroscedastic" else np.full_like(xs, 0.3)
    ys = (2 * xs + true_sd * rng.normal(size=xs.shape)).astype("float32")
    head = heads.GaussianHead(noise=noise)
    model = keras.Sequential(
        [
            keras.Input((1,)),
            keras.layers.Dense(32, activation="tanh"),
            keras.layers.Dense(input_width(head)),
            head,
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), loss=head.loss())
    model.fit(xs, ys, epochs=20, batch_size=100, verbose=0)
    scale = head.distribution(model.predict(np.array([[-0.5], [0.5]], "float32"), verbose=0)).scale.numpy()[
        :, 0
    ]
    expected = [0.2, 0.4] if noise == "heteroscedastic" else [0.3, 0.3]
    np.testing.assert_allclose(scale, expected, rtol=0.15)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make, error, match",
    [
        (
            lambda: heads.GaussianHead(noise="hetero"),
            ValueError,
            r"GaussianHead '.+': `noise` must be 'heteroscedastic' or 'homoscedastic', got 'hetero'",
        ),
        (
            lambda: heads.StudentTHead(units=0),
            ValueError,
            r"StudentTHead '.+': `units` must be a positive int, got 0",
        ),
        (
            lambda: heads.GaussianHead(init_scale=0.0),
            ValueError,
            r"GaussianHead '.+': `init_scale` must be a positive finite number, got 0.0",
        ),
        (
            lambda: heads.GaussianHead(min_scale=-1e-3),
            ValueError,
            r"`min_scale` must be a non-negative finite number, got -0.001",
        ),
        (
            lambda: heads.GaussianHead(init_scale=1e-4),
            ValueError,
            r"`init_scale` must be greater than `min_scale` \(0.001\), got 0.0001",
        ),
        (
            lambda: heads.StudentTHead(df=0),
            ValueError,
            r"StudentTHead '.+': `df` must be a positive finite number, got 0",
        ),
        (lambda: heads.StudentTHead(df=-3.0), ValueError, r"`df` must be a positive finite number, got -3.0"),
        (lambda: heads.StudentTHead(df="4"), TypeError, r"`df` must be a positive number, got '4'"),
    ],
    ids=["noise", "units", "init_scale", "min_scale", "init<=min", "df=0", "df<0", "df-type"],
)
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    "head, shape, match",
    [
        (
            lambda: heads.GaussianHead(units=2),
            (None, 3),
            r"GaussianHead '.+' expects inputs \(batch, \.\.\., 4\) with last dimension 2 \* units = 4 "
            r"\(loc and raw scale, noise='heteroscedastic'\), got shape \(None, 3\)",
        ),
        (
            lambda: heads.StudentTHead(units=2, noise="homoscedastic"),
            (None, 4),
            r"StudentTHead '.+' expects .* last dimension units = 2 \(loc, noise='homoscedastic'\), "
            r"got shape \(None, 4\)",
        ),
        (
            lambda: heads.CategoricalHead(),
            (None, 1),
            r"CategoricalHead '.+' expects logits .* last dimension >= 2, got shape \(None, 1\)\. "
            r"Use BernoulliHead",
        ),
    ],
    ids=["hetero-width", "homo-width", "categorical-one-logit"],
)
def test_bad_input_width(head, shape, match):
    with pytest.raises(ValueError, match=match):
        keras.Sequential([keras.Input(shape[1:]), head()])


def gaussian_params(n=4, units=2):
    return np.stack([np.zeros((n, units)), np.ones((n, units))], axis=-1).astype("float32")


@pytest.mark.parametrize(
    "loss, y_true, y_pred, error, match",
    [
        (
            heads.GaussianNLL(),
            np.zeros((4, 3)),
            gaussian_params(),
            ValueError,
            r"GaussianNLL \(loss of GaussianHead\): `y_true` must have shape \(batch, units\) = \(4, 2\), "
            r".*got shape \(4, 3\)",
        ),
        (
            heads.GaussianNLL(),
            np.zeros(4),
            gaussian_params(),
            ValueError,
            r"`y_true` must have shape .*got shape \(4,\)",
        ),
        (
            heads.GaussianNLL(),
            np.array(["a"] * 4),
            gaussian_params(units=1),
            TypeError,
            r"GaussianNLL \(loss of GaussianHead\): `y_true` must be numeric \(float or integer\), "
            r"got dtype <U1",
        ),
        (
            heads.GaussianNLL(),
            np.zeros((4, 2)),
            -gaussian_params(),
            ValueError,
            r"GaussianNLL .*every scale \(params\[\.\.\., 1\]\) must be > 0, got a minimum of -1",
        ),
        (
            heads.StudentTNLL(),
            np.zeros((4, 2)),
            gaussian_params(),
            ValueError,
            r"StudentTNLL .*expected the output of a StudentTHead, shape \(batch, \.\.\., units, 3\), "
            r"got shape \(4, 2, 2\)",
        ),
        (
            heads.CategoricalNLL(),
            np.array([0, 1, 3, -1]),
            np.zeros((4, 3), "float32"),
            ValueError,
            r"CategoricalNLL \(loss of CategoricalHead\): labels must be integer class ids in \[0, 3\) "
            r"for 3 logits; "
            r"got 2 other value\(s\): -1, 3",
        ),
        (
            heads.CategoricalNLL(),
            np.array([0.0, 1.5, 2.0, 1.0]),
            np.zeros((4, 3), "float32"),
            ValueError,
            r"labels must be integer class ids in \[0, 3\).*: 1\.5",
        ),
        (
            heads.CategoricalNLL(),
            np.eye(3)[[0, 1, 2, 0]],
            np.zeros((4, 3), "float32"),
            ValueError,
            r"one class id per example, shape \(4,\) or \(4, 1\) for logits of shape \(4, 3\); "
            r"got shape \(4, 3\) "
            r"\(one-hot labels\? pass their argmax\)",
        ),
        (
            heads.CategoricalNLL(),
            np.array([True, False, True, False]),
            np.zeros((4, 3), "float32"),
            TypeError,
            r"CategoricalNLL .*`y_true` must be integer class ids, got dtype bool",
        ),
        (
            heads.BernoulliNLL(),
            np.array([[0, 1], [2, 1], [0, 0], [1, 1]]),
            np.zeros((4, 2), "float32"),
            ValueError,
            r"BernoulliNLL \(loss of BernoulliHead\): labels must be 0 or 1; got 1 other value\(s\): 2",
        ),
        (
            heads.BernoulliNLL(),
            np.full((4, 2), 0.5),
            np.zeros((4, 2), "float32"),
            ValueError,
            r"labels must be 0 or 1; got 1 other value\(s\): 0\.5",
        ),
    ],
    ids=[
        "units-mismatch",
        "1d-for-2-units",
        "string-labels",
        "negative-scale",
        "student-needs-3-params",
        "class-out-of-range",
        "class-not-integer",
        "one-hot",
        "bool-classes",
        "bernoulli-2",
        "bernoulli-0.5",
    ],
)
def test_bad_labels_and_params(loss, y_true, y_pred, error, match):
    with pytest.raises(error, match=match):
        loss(y_true, y_pred)


def test_out_of_range_labels_fail_inside_fit_with_the_message(x):
    model = head_model(heads.CategoricalHead())
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"CategoricalNLL .*integer class ids in \[0, 3\)"
    ):
        model.fit(x, np.full(len(x), 3), epochs=1, verbose=0)


def test_bad_predictive_calls(x):
    plain = keras.Sequential([keras.Input((IN_DIM,)), DenseFlipout(2, seed=0)])
    with pytest.raises(
        ValueError, match=r"predictive: `model_or_head` must be a likelihood head .*got Sequential"
    ):
        heads.predictive(plain, np.zeros((2, 3, 2)))
    with pytest.raises(
        ValueError,
        match=r"GaussianHead '.+' predictive: expected MC draws .*\(num_samples, N, \.\.\., "
        r"units, 2\), got shape \(2, 3, 2\)",
    ):
        heads.predictive(heads.GaussianHead(), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match=r"every scale must be > 0, got a minimum of 0"):
        heads.predictive(heads.GaussianHead(), np.zeros((2, 3, 1, 2)))
    p = heads.predictive(heads.GaussianHead(), gaussian_params(units=1)[None])
    with pytest.raises(ValueError, match=r"RegressionPredictive.quantile: `q` must be in \(0, 1\).*got 1.5"):
        p.quantile(1.5)
    with pytest.raises(
        ValueError, match=r"RegressionPredictive.interval: `level` must be a number in \(0, 1\), got 95"
    ):
        p.interval(95)
    model = head_model(heads.GaussianHead())
    with pytest.raises(
        ValueError, match=r"mc_predict: `from_logits` does not apply to a model ending in GaussianHead"
    ):
        unc.mc_predict(model, x, num_samples=2, from_logits=True)


# --------------------------------------------------------------------------- API shape
def _imported_modules(path):
    import ast

    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):  # module level and inside functions alike
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_heads_and_the_predictive_core_import_nothing_above_them():
    import pathlib

    root = pathlib.Path(bayesflip.__file__).parent
    for path in [*sorted((root / "heads").glob("*.py")), root / "_predictive_core.py"]:
        above = {"bayesflip.uncertainty", "bayesflip.serving"}
        if path.name == "_predictive_core.py":
            above |= {"bayesflip.heads", "bayesflip.layers", "bayesflip.inference"}
        bad = {m for m in _imported_modules(path) if any(m == a or m.startswith(a + ".") for a in above)}
        assert not bad, (path.name, bad)


def test_facades_export_only_public_names_and_show_their_source():
    import types

    from bayesflip import serving

    for mod in (heads, unc, serving):
        assert [n for n in mod.__all__ if n.startswith("_")] == [], mod.__name__
        for name, obj in vars(mod).items():
            if name.startswith("_") and not name.startswith("__") and not isinstance(obj, types.ModuleType):
                # a private name may only be the module's own helper, never one re-exported from elsewhere
                assert getattr(obj, "__module__", mod.__name__) == mod.__name__, (mod.__name__, name)
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert name in inspect.getsource(obj)


def test_heads_describe_themselves_with_the_public_protocol():
    spec = heads.PredictiveSpec
    assert heads.GaussianHead().predictive_spec == spec("regression", None, 2)
    assert heads.StudentTHead(df=3.0).predictive_spec == spec("regression", None, 3)
    assert heads.CategoricalHead().predictive_spec == spec("classification", "softmax", None)
    assert heads.BernoulliHead().predictive_spec == spec("binary", "sigmoid", None)
    assert {s.task for s in (spec("regression"), spec("binary"), spec("classification"))} == set(heads.TASKS)

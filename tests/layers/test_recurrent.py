"""LSTMFlipout and GRUFlipout."""

import keras
import numpy as np
import pytest

import bayesflip
from bayesflip.layers import GRUFlipout, GRUFlipoutCell, LSTMFlipout, LSTMFlipoutCell
from tests.layers.helpers import check_variational_layer, random_inputs

KERAS = {LSTMFlipout: keras.layers.LSTM, GRUFlipout: keras.layers.GRU}
CELLS = {LSTMFlipout: LSTMFlipoutCell, GRUFlipout: GRUFlipoutCell}


def _np(t):
    return keras.ops.convert_to_numpy(t)


@pytest.mark.parametrize(
    "factory",
    [
        lambda **kw: LSTMFlipout(3, return_state=True, bayesian_bias=True, estimator="shared", **kw),
        lambda **kw: GRUFlipout(4, go_backwards=True, bayesian_bias=True, **kw),
        lambda **kw: GRUFlipout(3, return_sequences=True, return_state=True, unroll=True, **kw),
    ],
)
def test_shared_layer_checks(factory):
    check_variational_layer(factory, (3, 5, 2))


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUFlipout])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(return_sequences=True),
        dict(go_backwards=True, return_state=True),
        dict(unroll=True, use_bias=False),
    ],
)
def test_posterior_mean_equals_keras_layer_with_mask(cls, kwargs):
    x = random_inputs((3, 6, 4))
    mask = np.ones((3, 6), bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    layer = cls(5, seed=0, bias_initializer="random_normal", **kwargs)
    reference = KERAS[cls](5, bias_initializer="random_normal", **kwargs)
    layer.build(x.shape)
    reference.build(x.shape)
    weights = [_np(layer.kernel_posterior.loc), _np(layer.recurrent_posterior.loc)]
    if layer.use_bias:
        weights.append(_np(layer.bias))
    reference.set_weights(weights)
    layer.use_posterior_mean = True
    got, expected = layer(x, mask=mask), reference(x, mask=mask)
    got = got if isinstance(got, (list, tuple)) else [got]
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-6)
    shapes = layer.compute_output_shape(x.shape)
    shapes = shapes if isinstance(shapes, list) else [shapes]
    assert [tuple(s) for s in shapes] == [tuple(e.shape) for e in expected]
    layer.use_posterior_mean = False
    sampled = layer(x, mask=mask)
    sampled = sampled if isinstance(sampled, (list, tuple)) else [sampled]
    assert not np.allclose(_np(sampled[0]), _np(expected[0]), atol=1e-6)


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUFlipout])
@pytest.mark.parametrize("estimator", ["flipout", "shared"])
def test_each_sequence_runs_one_fixed_weight_sample_at_every_step(cls, estimator):
    """Example b of a batch equals a deterministic Keras RNN with weights
    W_b = loc + diag(S_x[b]) ΔW diag(R_x[b]) (same for U and a Bayesian bias),
    drawn once for the whole sequence: the perturbation is constant over time
    within a sequence and differs between sequences (flipout)."""
    batch, units = 4, 3
    x = random_inputs((batch, 7, 2), seed=2)
    layer = cls(
        units,
        return_sequences=True,
        bayesian_bias=True,
        init_scale=0.3,
        seed=4,
        estimator=estimator,
        bias_initializer="random_normal",
    )
    layer.build(x.shape)
    state = _np(layer.rng_state)
    y = _np(layer(x))
    layer.rng_state.assign(state)
    width = layer.gates * units
    pert = layer.draw_perturbation(batch, [2, width, units, width])
    loc_w, loc_u = _np(layer.kernel_posterior.loc), _np(layer.recurrent_posterior.loc)
    loc_b = _np(layer.bias.mean())
    dw, du, db = (_np(pert.deltas[k]) for k in ("kernel", "recurrent_kernel", "bias"))
    if estimator == "flipout":
        signs = [_np(s) for s in pert.signs]
        for s in signs:
            assert set(np.unique(s)) <= {-1.0, 1.0}
        sx, rx, sh, rh = signs
    else:
        assert pert.signs == ()
        sx, rx = np.ones((batch, 2)), np.ones((batch, layer.gates * units))
        sh, rh = np.ones((batch, units)), np.ones((batch, layer.gates * units))
    reference = KERAS[cls](units, return_sequences=True)
    reference.build(x[:1].shape)
    kernels = []
    for b in range(batch):
        w_b = loc_w + sx[b][:, None] * dw * rx[b][None, :]
        u_b = loc_u + sh[b][:, None] * du * rh[b][None, :]
        if cls is LSTMFlipout:
            b_b = loc_b + db * rx[b]
        else:  # input bias row goes with W's output signs, recurrent row with U's
            b_b = loc_b + db * np.stack([rx[b], rh[b]])
        reference.set_weights([w_b, u_b, b_b])
        np.testing.assert_allclose(y[b], _np(reference(x[b : b + 1]))[0], rtol=1e-5, atol=1e-6)
        kernels.append((w_b, u_b))
    if estimator == "flipout":
        assert not np.allclose(kernels[0][0], kernels[1][0])
        assert not np.allclose(kernels[0][1], kernels[1][1])
    else:
        np.testing.assert_array_equal(kernels[0][0], kernels[1][0])
    # the next call draws a new perturbation
    assert not np.allclose(_np(layer(x)), y)


def test_masked_padding_is_ignored_while_sampling():
    """Masked time steps do not change the output, and the draw does not depend on length."""
    x = random_inputs((3, 4, 2))
    padded = np.concatenate([x, np.zeros((3, 3, 2), "float32")], axis=1)
    mask = np.concatenate([np.ones((3, 4), bool), np.zeros((3, 3), bool)], axis=1)
    layer = LSTMFlipout(3, init_scale=0.3, seed=0)
    layer.build(padded.shape)
    state = _np(layer.rng_state)
    a = _np(layer(x))
    layer.rng_state.assign(state)
    b = _np(layer(padded, mask=mask))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_in_model_with_embedding_mask_and_initial_state():
    tokens = keras.Input((5,), dtype="int32")
    h0, c0 = keras.Input((3,)), keras.Input((3,))
    emb = keras.layers.Embedding(10, 4, mask_zero=True)(tokens)
    seq, h, c = LSTMFlipout(3, return_sequences=True, return_state=True, seed=0)(emb, initial_state=[h0, c0])
    out = GRUFlipout(2, seed=1)(seq)
    model = keras.Model([tokens, h0, c0], [out, h, c])
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    zeros = np.zeros((2, 3), "float32")
    ones = np.ones((2, 3), "float32")
    with bayesflip.posterior_mean(model):
        o1, h1, _ = model([ids, zeros, zeros])
        o2, h2, _ = model([ids, ones, ones])
    assert o1.shape == (2, 2) and h1.shape == (2, 3)
    assert not np.allclose(_np(h1), _np(h2))  # the initial state is used
    assert len(model.losses) == 2


@pytest.mark.parametrize(
    "make,err,match",
    [
        (lambda: LSTMFlipout(0), ValueError, "units"),
        (lambda: GRUFlipout(3, estimator="local"), ValueError, "estimator"),
        (lambda: LSTMFlipout(3, init_scale=-1.0), ValueError, "init_scale"),
    ],
)
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_inputs():
    layer = LSTMFlipout(3, seed=0)
    with pytest.raises(ValueError, match=layer.name):
        layer(np.ones((2, 4), "float32"))
    layer(np.ones((2, 5, 4), "float32"))
    with pytest.raises(ValueError, match=layer.name):
        layer(np.ones((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match="initial state"):
        layer(np.ones((2, 5, 4), "float32"), initial_state=[np.zeros((2, 3), "float32")])


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUFlipout])
def test_cell_in_keras_rnn_equals_the_layer(cls):
    """keras.layers.RNN(cell) draws one perturbation per call through the
    cell's dropout-mask hook, so it reproduces the layer exactly (same seed)."""
    x = random_inputs((3, 6, 4))
    mask = np.ones((3, 6), bool)
    mask[0, 3:] = False
    cell = CELLS[cls](5, seed=2, init_scale=0.3, bayesian_bias=True)
    rnn = keras.layers.RNN(cell, return_sequences=True, go_backwards=True)
    layer = cls(5, seed=2, init_scale=0.3, bayesian_bias=True, return_sequences=True, go_backwards=True)
    rnn.build(x.shape)
    layer.build(x.shape)
    layer.set_weights(cell.get_weights())
    y_rnn, y_layer = _np(rnn(x, mask=mask)), _np(layer(x, mask=mask))
    np.testing.assert_allclose(y_rnn, y_layer, rtol=1e-5, atol=1e-6)
    assert len(rnn.losses) == 1  # one KL term per call, not per step
    np.testing.assert_allclose(float(rnn.losses[0]), float(layer.losses[0]), rtol=1e-6)
    assert not np.allclose(_np(rnn(x)), _np(rnn(x)))  # a new draw per call
    # outside keras.layers.RNN, each call of the cell draws its own perturbation
    states = cell.get_initial_state(3)
    h1, _ = cell(x[:, 0], states)
    h2, _ = cell(x[:, 0], states)
    assert not np.allclose(_np(h1), _np(h2))


def test_cell_model_fits_and_loads_with_safe_mode(tmp_path):
    x = random_inputs((4, 5, 2))
    model = keras.Sequential(
        [keras.Input((5, 2)), keras.layers.RNN(LSTMFlipoutCell(3, seed=0)), keras.layers.Dense(1)]
    )
    model.compile("adam", "mse")
    assert np.isfinite(model.fit(x, np.zeros((4, 1)), verbose=0).history["loss"][0])
    assert len(bayesflip.variational_layers(model)) == 1
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert type(loaded.layers[0].cell) is LSTMFlipoutCell
    assert loaded.layers[0].cell.get_config() == model.layers[0].cell.get_config()
    with bayesflip.posterior_mean(model), bayesflip.posterior_mean(loaded):
        np.testing.assert_array_equal(_np(model(x)), _np(loaded(x)))
    with pytest.raises(ValueError, match="return_sequences"):
        LSTMFlipoutCell(3, return_sequences=True)


@pytest.mark.parametrize("cls", [LSTMFlipout, GRUFlipout])
def test_mixed_precision(cls):
    keras.mixed_precision.set_global_policy("mixed_float16")
    layer = cls(3, seed=0, bayesian_bias=True, return_state=True)
    outputs = layer(random_inputs((2, 4, 2)))
    assert all(o.dtype == "float16" for o in outputs)
    assert layer.losses[0].dtype == "float32"
    assert all(w.dtype == "float32" for w in layer.trainable_weights)

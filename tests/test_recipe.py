"""bayesflip.recipe: the KL weight, the learning-rate schedule, the warm-up, regression, temperature choice."""

import keras
import numpy as np
import pytest
from sklearn.metrics import log_loss

import bayesflip
from bayesflip import recipe
from bayesflip.heads import GaussianHead
from bayesflip.layers import DenseFlipout
from bayesflip.uncertainty import mc_predict

SCCE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(n=96, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    return x, y


def _classifier(d=4, seed=0):
    return keras.Sequential(
        [keras.Input((d,)), DenseFlipout(8, activation="relu", seed=seed), DenseFlipout(2, seed=seed + 1)]
    )


class _Recorder(keras.callbacks.Callback):
    """The KL weight at the start of every epoch, the learning rate at every step."""

    def __init__(self):
        super().__init__()
        self.kl, self.lr = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.kl.append(bayesflip.get_kl_weight(self.model))

    def on_train_batch_begin(self, batch, logs=None):
        opt = self.model.optimizer
        self.lr.append(float(opt._get_current_learning_rate()))


def test_kl_weight_warms_up_linearly_then_equals_t_over_n():
    x, y = _data(80)
    rec = _Recorder()
    history = recipe.fit_bayesian(
        _classifier(),
        x,
        y,
        loss=SCCE,
        temperature=0.3,
        kl_warmup_epochs=4,
        epochs=6,
        batch_size=16,
        callbacks=[rec],
    )
    target = 0.3 / 80
    np.testing.assert_allclose(rec.kl, [target * min(1, (e + 1) / 4) for e in range(6)], rtol=1e-6)
    np.testing.assert_allclose(history.history["kl_weight"], rec.kl, rtol=1e-6)
    assert bayesflip.get_kl_weight(rec.model) == pytest.approx(target, rel=1e-6)
    assert {"loss", "nll", "kl"} <= set(history.history)


def test_no_warmup_sets_the_full_weight_from_the_start():
    x, y = _data(50)
    model = _classifier()
    rec = _Recorder()
    recipe.fit_bayesian(model, x, y, loss=SCCE, kl_warmup_epochs=0, epochs=2, callbacks=[rec])
    assert rec.kl == pytest.approx([recipe.DEFAULT_TEMPERATURE / 50] * 2)


def test_learning_rate_follows_keras_cosine_decay():
    x, y = _data(70)
    rec = _Recorder()
    recipe.fit_bayesian(
        _classifier(), x, y, loss=SCCE, learning_rate=0.02, epochs=3, batch_size=32, callbacks=[rec]
    )
    steps = 3 * 3  # ceil(70 / 32) batches per epoch
    reference = keras.optimizers.schedules.CosineDecay(0.02, steps)
    assert len(rec.lr) == steps
    np.testing.assert_allclose(rec.lr, [float(reference(i)) for i in range(steps)], rtol=1e-5, atol=1e-9)
    assert rec.lr[-1] < 0.02 * 0.05  # decays toward 0 over the run


def test_constant_schedule_keeps_the_learning_rate():
    x, y = _data(40)
    rec = _Recorder()
    recipe.fit_bayesian(
        _classifier(), x, y, loss=SCCE, schedule="constant", epochs=2, batch_size=20, callbacks=[rec]
    )
    assert rec.lr == pytest.approx([1e-2] * 4)


def test_nll_and_kl_in_history_add_up_to_the_loss():
    x, y = _data(64)
    history = recipe.fit_bayesian(
        _classifier(), x, y, loss=SCCE, metrics=["accuracy"], epochs=2, validation_data=(x[:16], y[:16])
    ).history
    for key in ("nll", "kl", "accuracy", "val_nll", "val_kl"):
        assert key in history
    np.testing.assert_allclose(np.add(history["nll"], history["kl"]), history["loss"], rtol=1e-5)


def test_regression_with_a_gaussian_head_trains():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(128, 1)).astype("float32")
    y = (np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=128)).astype("float32")
    head = GaussianHead()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((1,)), DenseFlipout(32, activation="tanh", seed=0), DenseFlipout(2, seed=1), head]
    )
    history = recipe.fit_bayesian(
        model, x, y, loss=head.loss(), epochs=40, batch_size=32, kl_warmup_epochs=5
    ).history
    assert history["nll"][-1] < history["nll"][0] - 0.3
    # the held-out NLL of the predictive is the mixture's, below a constant predictor's
    nll = recipe.held_out_nll(model, x, y, loss=head.loss(), num_samples=16)
    constant = 0.5 * np.log(2 * np.pi * np.e * np.var(y))
    assert nll < constant - 0.2
    with pytest.raises(
        TypeError, match=r"fit_bayesian: `loss` is the method `head.loss`; pass .*`head.loss\(\)`"
    ):
        recipe.fit_bayesian(model, x, y, loss=head.loss, epochs=1)


def test_held_out_nll_is_the_log_loss_of_the_mc_predictive():
    x, y = _data(96)
    model = _classifier()
    recipe.fit_bayesian(model, x, y, loss=SCCE, epochs=5, batch_size=32)
    ours = recipe.held_out_nll(model, x, y, loss=SCCE, num_samples=256)
    probs = mc_predict(model, x, num_samples=256, from_logits=True)
    assert ours == pytest.approx(log_loss(y, probs, labels=[0, 1]), rel=0.02)


def test_held_out_nll_uses_independent_draws():
    x, y = _data(32)
    model = _classifier()
    bayesflip.set_kl_weight(model, num_examples=32)
    one = recipe.held_out_nll(model, x, y, loss=SCCE, num_samples=1)
    many = recipe.held_out_nll(model, x, y, loss=SCCE, num_samples=64)
    assert one != many  # the draws differ, so averaging changes the predictive


def test_select_temperature_picks_the_argmin_of_held_out_nll():
    x, y = _data(240, seed=3)
    x_tr, y_tr, x_val, y_val = x[:160], y[:160], x[160:], y[160:]
    sel = recipe.select_temperature(
        lambda: _classifier(),
        x_tr,
        y_tr,
        x_val,
        y_val,
        loss=SCCE,
        temperatures=(3.0, 0.1),
        epochs=12,
        batch_size=32,
        num_samples=128,
    )
    assert list(sel.held_out_nll) == [3.0, 0.1] and set(sel.models) == {3.0, 0.1}
    independent = {
        t: log_loss(y_val, mc_predict(m, x_val, num_samples=256, from_logits=True), labels=[0, 1])
        for t, m in sel.models.items()
    }
    for t in independent:
        assert sel.held_out_nll[t] == pytest.approx(independent[t], rel=0.03)
    assert sel.temperature == min(independent, key=independent.get)
    assert sel.model is sel.models[sel.temperature]
    assert bayesflip.get_kl_weight(sel.model) == pytest.approx(sel.temperature / 160)
    assert "nll" in sel.history.history


def test_tile_components_trains_a_rank1_net():
    x, y = _data(48)
    k = 3
    model = keras.Sequential(
        [
            keras.Input((4,)),
            DenseFlipout(
                8, activation="relu", posterior=bayesflip.posteriors.Rank1(num_components=k), seed=0
            ),
            DenseFlipout(2, posterior=bayesflip.posteriors.Rank1(num_components=k), seed=1),
        ]
    )
    rec = _Recorder()
    history = recipe.fit_bayesian(
        model,
        x,
        y,
        loss=SCCE,
        tile_components=k,
        epochs=2,
        batch_size=16,
        temperature=1.0,
        kl_warmup_epochs=0,
        callbacks=[rec],
    )
    assert len(rec.lr) == 2 * 3  # tiling makes batches larger, not more numerous
    assert np.isfinite(history.history["loss"]).all()
    assert bayesflip.get_kl_weight(model) == pytest.approx(1 / 48)


def test_dataset_input_needs_num_examples():
    import tensorflow as tf

    x, y = _data(40)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    with pytest.raises(ValueError, match=r"fit_bayesian: a tf.data.Dataset `x` needs `num_examples`"):
        recipe.fit_bayesian(_classifier(), ds, loss=SCCE, epochs=1)
    model = _classifier()
    recipe.fit_bayesian(model, ds, loss=SCCE, epochs=1, num_examples=40, temperature=0.5, kl_warmup_epochs=0)
    assert bayesflip.get_kl_weight(model) == pytest.approx(0.5 / 40)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(temperature=0.0),
            ValueError,
            r"fit_bayesian: `temperature` must be a positive finite number, got 0.0",
        ),
        (dict(temperature=float("nan")), ValueError, r"fit_bayesian: `temperature`"),
        (dict(epochs=0), ValueError, r"fit_bayesian: `epochs`"),
        (dict(kl_warmup_epochs=-1), ValueError, r"fit_bayesian: `kl_warmup_epochs`"),
        (dict(schedule="linear"), ValueError, r"fit_bayesian: `schedule` must be one of .*got 'linear'"),
        (
            dict(loss="sparse_categorical_crossentropy"),
            TypeError,
            r"fit_bayesian: `loss` must be a keras.losses.Loss",
        ),
        (dict(tile_components=0), ValueError, r"fit_bayesian: `tile_components`"),
        (
            dict(y=np.zeros(5)),
            ValueError,
            r"fit_bayesian: `x` has 20 examples but `y` has first dimension\(s\) \[5\]",
        ),
        (dict(y=None), ValueError, r"fit_bayesian: `y` is required"),
    ],
)
def test_fit_bayesian_rejects_bad_inputs(kwargs, error, match):
    x, y = _data(20)
    args = dict(y=y, loss=SCCE, epochs=1) | kwargs
    with pytest.raises(error, match=match):
        recipe.fit_bayesian(_classifier(), x, **args)


def test_fit_bayesian_needs_variational_layers_and_a_model():
    x, y = _data(20)
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no bayesflip variational layers"):
        recipe.fit_bayesian(plain, x, y, loss=SCCE, epochs=1)
    with pytest.raises(TypeError, match="fit_bayesian: `model` must be a keras.Model, got Dense"):
        recipe.fit_bayesian(keras.layers.Dense(2), x, y, loss=SCCE, epochs=1)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            dict(temperatures=()),
            ValueError,
            r"select_temperature: `temperatures` must be a non-empty sequence",
        ),
        (
            dict(temperatures=(1.0, -1.0)),
            ValueError,
            r"select_temperature: `temperatures` must be numbers > 0",
        ),
        (
            dict(temperatures=(1.0, 1.0)),
            ValueError,
            r"select_temperature: `temperatures` has repeated values",
        ),
        (dict(temperature=0.1), TypeError, r"select_temperature: give candidates in `temperatures`"),
        (dict(num_samples=0), ValueError, r"select_temperature: `num_samples`"),
    ],
)
def test_select_temperature_rejects_bad_inputs(kwargs, error, match):
    x, y = _data(20)
    with pytest.raises(error, match=match):
        recipe.select_temperature(_classifier, x, y, x, y, loss=SCCE, epochs=1, **kwargs)


def test_select_temperature_needs_a_builder():
    x, y = _data(20)
    with pytest.raises(
        TypeError, match="select_temperature: `build_model` must be a function returning a new model"
    ):
        recipe.select_temperature(_classifier(), x, y, x, y, loss=SCCE)


def test_make_optimizer_checks_its_arguments():
    with pytest.raises(ValueError, match="make_optimizer: the 'cosine' schedule needs `total_steps`"):
        recipe.make_optimizer(1e-2, "cosine")
    with pytest.raises(ValueError, match="make_optimizer: `learning_rate` must be a positive finite number"):
        recipe.make_optimizer(-1.0, "constant")
    with pytest.raises(ValueError, match="make_optimizer: `schedule` must be one of"):
        recipe.make_optimizer(1e-2, "step")


def test_demo_trains_with_the_recipe():
    from bayesflip import demo

    assert demo.DEFAULT_TEMPERATURE == recipe.DEFAULT_TEMPERATURE
    assert demo.DEFAULT_KL_WARMUP_EPOCHS == recipe.DEFAULT_KL_WARMUP_EPOCHS
    assert demo.DEFAULT_SCHEDULE == recipe.DEFAULT_SCHEDULE
    x, y = _data(40)
    history = demo.fit_bayesian_mlp(_classifier(), x, y, epochs=2, kl_warmup_epochs=2, temperature=0.5)
    assert {"nll", "kl", "accuracy", "kl_weight"} <= set(history.history)


class _HalfNLL(keras.losses.Loss):
    """A Loss whose config cannot rebuild it (its argument is not in the config)."""

    def __init__(self, factor):
        super().__init__(name="half_nll")
        self.factor = factor

    def call(self, y_true, y_pred):
        return self.factor * keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)


def test_a_custom_loss_is_reduced_per_example():
    x, y = _data(48)
    model = _classifier()
    history = recipe.fit_bayesian(model, x, y, loss=_HalfNLL(0.5), epochs=2, batch_size=16).history
    assert np.isfinite(history["nll"]).all() and np.all(np.asarray(history["kl"]) > 0)
    with bayesflip.posterior_mean(model):  # one deterministic "draw": the NLL is the mean loss
        ours = recipe.held_out_nll(model, x, y, loss=_HalfNLL(0.5), num_samples=1)
        logits = model.predict(x, verbose=0)
    reference = 0.5 * log_loss(y, keras.ops.convert_to_numpy(keras.ops.softmax(logits)), labels=[0, 1])
    assert ours == pytest.approx(reference, rel=1e-4)

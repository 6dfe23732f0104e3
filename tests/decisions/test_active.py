"""The active-learning loop: learning curve, resuming after an interruption, bad input."""

import json

import keras
import numpy as np
import pytest

from bayesflip import decisions
from bayesflip.layers import DenseFlipout


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int64") + (x[:, 2] > 1).astype("int64")
    return x, y


class Builder:
    """Returns one compiled model restored to its initial state (a fresh model without re-tracing)."""

    def __init__(self):
        self.model = keras.Sequential([keras.Input((4,)), DenseFlipout(3, kl_weight=0.01, seed=0)])
        self.model.compile(
            keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
        self.initial = self.model.get_weights()

    def __call__(self):
        self.model.set_weights(self.initial)
        if self.model.optimizer.built:
            for v in self.model.optimizer.variables:  # its step and moments, not the learning rate
                if not v.path.endswith("learning_rate"):
                    v.assign(np.zeros(v.shape, v.dtype))
        return self.model


@pytest.fixture
def build():
    return Builder()


def fit(model, x, y):
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)


def make_loop(data, build, fit_model=fit, **kwargs):
    x, y = data
    settings = dict(acquisition="bald", k=3, num_samples=4, seed=7, verbose=0)
    settings.update(kwargs)
    return decisions.ActiveLearningLoop(build, fit_model, x, y, [0, 1, 2, 3], x[:20], y[:20], **settings)


def test_resume_after_interruption_repeats_and_loses_nothing(data, build, tmp_path):
    full = make_loop(data, build).run(max_labels=10)  # 4 → 7 → 10: 3 rounds
    assert [r["num_labels"] for r in full] == [4, 7, 10] and full[-1]["acquired"] == []

    calls = []

    def interrupted_fit(model, x, y):
        calls.append(len(x))
        if len(calls) == 2:  # training of round 1 is interrupted
            raise KeyboardInterrupt
        fit(model, x, y)

    state = tmp_path / "al.json"
    with pytest.raises(KeyboardInterrupt):
        make_loop(data, build, interrupted_fit, state_path=state).run(max_labels=10)
    saved = json.loads(state.read_text())
    assert len(saved["rounds"]) == 1 and len(saved["labelled"]) == 7  # round 0's acquisition kept
    resumed_loop = make_loop(data, build, state_path=state)
    resumed = resumed_loop.run(max_labels=10)
    assert [r["acquired"] for r in resumed] == [r["acquired"] for r in full]
    assert [r["accuracy"] for r in resumed] == pytest.approx([r["accuracy"] for r in full])
    assert resumed_loop.labelled == [0, 1, 2, 3] + sum((r["acquired"] for r in full), [])
    # a finished run does nothing more
    assert len(make_loop(data, build, state_path=state).run(max_labels=10)) == 3


def test_learning_curve_and_warm_start(data, build, tmp_path):
    loop = make_loop(data, build, acquisition="batchbald", retrain="warm", state_path=tmp_path / "w.json")
    rounds = loop.run(max_labels=7)
    assert [r["num_labels"] for r in rounds] == [4, 7]
    assert (tmp_path / "w.json.weights.npz").exists()
    assert all(0 <= r["accuracy"] <= 1 and r["nll"] > 0 and 0 <= r["ece"] <= 1 for r in rounds)
    acquired = sum((r["acquired"] for r in rounds), [])
    assert len(set(acquired)) == 3 and not set(acquired) & {0, 1, 2, 3}
    with pytest.raises(ValueError, match=r"ActiveLearningLoop: the state file .* another configuration"):
        make_loop(data, build, acquisition="random", state_path=tmp_path / "w.json")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(k=0), r"ActiveLearningLoop: `k` must be a positive int, got 0"),
        (dict(k=2.5), r"ActiveLearningLoop: `k` must be a positive int, got 2.5"),
        (dict(k=45), r"ActiveLearningLoop: the pool \(44 unlabelled inputs\) is smaller than `k` = 45"),
        (dict(acquisition="nope"), r"ActiveLearningLoop: unknown `acquisition` 'nope'"),
        (dict(retrain="sometimes"), r"ActiveLearningLoop: `retrain` must be 'scratch' or 'warm'"),
    ],
)
def test_bad_arguments(data, build, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_loop(data, build, **kwargs)


def test_bad_sets(data, build):
    x, y = data
    with pytest.raises(ValueError, match=r"ActiveLearningLoop: the pool set is empty"):
        decisions.ActiveLearningLoop(build, fit, x[:0], y[:0], [0], x, y)
    with pytest.raises(ValueError, match=r"ActiveLearningLoop: the test set is empty"):
        decisions.ActiveLearningLoop(build, fit, x, y, [0], x[:0], y[:0])
    with pytest.raises(ValueError, match=r"ActiveLearningLoop: `y_test` must have one label per input"):
        decisions.ActiveLearningLoop(build, fit, x, y, [0], x, y[:3])
    with pytest.raises(ValueError, match=r"ActiveLearningLoop: `initial_indices` must be distinct indices"):
        decisions.ActiveLearningLoop(build, fit, x, y, [0, 0], x, y)

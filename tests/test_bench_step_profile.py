"""benchmarks/bench_step_profile.py: op grouping, the Box–Muller reference, the profile parse, the quick run."""

import json

import numpy as np
import pytest
import tensorflow as tf

from bayesflip import random as rnd
from benchmarks import _meta
from tests.conftest import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_step_profile")


@pytest.mark.parametrize(
    "name, group",
    [
        ("sequential/dense_flipout/StatelessRandomNormalV2:StatelessRandomNormalV2", "epsilon draw"),
        ("gradient_tape/sequential/dense_flipout/MatMul/MatMul:_MklMatMul", "matmul"),
        ("sequential/dense/Relu:_MklNativeFusedMatMul", "matmul"),
        ("sequential/dense_flipout/LeftShift_1:LeftShift", "seeds, sign rows"),
        ("gradient_tape/sequential/dense_flipout/Sigmoid:Sigmoid", "softplus, sigmoid"),
        ("adam/Sqrt_1:Sqrt", "optimizer"),
        ("adam_3/Sub_2:Sub", "optimizer"),  # a later optimizer instance's scope
        ("sequential/adamant/Sub:Sub", "other"),
        ("adam/MatMul:MatMul", "optimizer"),  # the optimizer's scope wins over the op type
        ("sequential/dense_flipout/Log:Log", "other"),
    ],
)
def test_ops_are_grouped_by_scope_and_type(bench, name, group):
    assert bench.group_of(name) == group


@pytest.mark.parametrize("shape", [(64, 32), (7, 3)])
def test_box_muller_of_the_philox_words_is_tensorflows_normal(bench, shape):
    seed = tf.constant([11, 3], tf.int64)
    size = int(np.prod(shape))
    words = rnd._full_int(tf.constant([size + size % 2], tf.int32), seed, tf.uint32)
    if size % 2:  # the benchmark's shapes are even; an odd one needs the pair's spare word dropped
        ours = tf.reshape(tf.reshape(bench.box_muller(words, [-1]), [-1])[:size], shape)
    else:
        ours = bench.box_muller(words, shape)
    np.testing.assert_allclose(ours.numpy(), rnd.standard_normal(shape, seed).numpy(), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_the_profile_attributes_a_normal_draw_and_a_matmul(bench):
    @tf.function
    def step(x, seed):  # the seed an input: a constant one would let grappler fold the draw away
        return tf.reduce_sum(tf.matmul(x, rnd.standard_normal((256, 256), seed)))

    seed = tf.constant([1, 2], tf.int64)
    step(tf.ones((8, 256)), seed).numpy()
    groups = bench.profile(step, tf.ones((8, 256)), seed, steps=3)
    assert groups["epsilon draw"] > 0 and groups["matmul"] > 0
    assert "optimizer" not in groups and "softplus, sigmoid" not in groups


@pytest.mark.slow
def test_quick_mode_writes_the_profile_of_both_steps(bench, tmp_path, monkeypatch):
    monkeypatch.setattr(_meta, "SCRATCH", str(tmp_path / "scratch"))
    bench.main(["--quick"])
    with open(tmp_path / "scratch" / "step_profile.json") as f:
        report = json.load(f)
    assert report["meta"]["arguments"]["quick"]
    (step,) = report["steps"]
    assert step["batch_size"] == 8
    assert step["wall_ratio"] == pytest.approx(
        step["wall_ms"]["bayesflip_flipout"] / step["wall_ms"]["keras_dense"]
    )
    flipout = step["op_cpu_ms"]["bayesflip_flipout"]
    assert (
        flipout["epsilon draw"] > 0 and flipout["seeds, sign rows"] > 0 and flipout["softplus, sigmoid"] > 0
    )
    assert "epsilon draw" not in step["op_cpu_ms"]["keras_dense"]
    # flipout's RNG advance is an XLA computation; Dense runs none
    assert flipout["XLA computations"] > 0 and "XLA computations" not in step["op_cpu_ms"]["keras_dense"]
    for name, groups in step["op_cpu_ms"].items():
        assert groups["optimizer"] > 0 and groups["matmul"] > 0, name
        assert step["op_cpu_total_ms"][name] == pytest.approx(sum(groups.values()))
    normal = report["normal_draw"]
    assert set(normal["median_ms"]) == {
        "tf_stateless_normal",
        "philox_words_only",
        "box_muller_tf_ops",
        "box_muller_xla",
        "empty_call",
    }
    assert max(normal["max_abs_difference_to_tf"].values()) < 1e-4

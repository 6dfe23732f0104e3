"""Sign and noise draws, seeds and RNG-state behaviour."""

import numpy as np
import pytest
import tensorflow as tf

from bayesflip import random as rnd


@pytest.mark.parametrize("shape", [[1], [31, 3], [256, 512], [7, 5, 3]])
def test_rademacher_is_exactly_plus_minus_one(shape):
    s = rnd.rademacher(shape, tf.constant([3, 4], tf.int64)).numpy()
    assert s.shape == tuple(shape)
    assert set(np.unique(s).tolist()) <= {-1.0, 1.0}
    if s.size > 1000:
        assert set(np.unique(s).tolist()) == {-1.0, 1.0}
        # balanced: binomial(n, 1/2), 5 standard deviations
        assert abs(s.mean()) < 5 / np.sqrt(s.size)


def test_rademacher_bits_are_independent():
    s = rnd.rademacher([200_000], tf.constant([9, 1], tf.int64)).numpy()
    # neighbouring signs come from neighbouring bits of one word: uncorrelated
    for lag in (1, 8, 31, 32, 33):
        assert abs(np.mean(s[:-lag] * s[lag:])) < 5 / np.sqrt(s.size)


def test_rademacher_dtype_and_determinism():
    seed = tf.constant([1, 2], tf.int64)
    a = rnd.rademacher([10, 10], seed, "float16")
    assert a.dtype == tf.float16
    np.testing.assert_array_equal(a.numpy(), rnd.rademacher([10, 10], seed, "float16").numpy())
    assert not np.array_equal(
        a.numpy(), rnd.rademacher([10, 10], tf.constant([1, 3], tf.int64), "float16").numpy()
    )


def test_standard_normal_moments():
    z = rnd.standard_normal([100_000], tf.constant([5, 6], tf.int64)).numpy()
    assert abs(z.mean()) < 5 / np.sqrt(z.size)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / z.size)


def test_split_seed_gives_distinct_seeds():
    seeds = [s.numpy().tolist() for s in rnd.split_seed(tf.constant([1, 2], tf.int64), 4)]
    assert len({tuple(s) for s in seeds}) == 4


def test_resolve_seed_validation():
    assert rnd.resolve_seed(5) == 5
    assert 0 <= rnd.resolve_seed(None) < 2**31
    with pytest.raises(ValueError, match="non-negative"):
        rnd.resolve_seed(-1)
    with pytest.raises(TypeError, match="resolve_seed: `seed` must be an int"):
        rnd.resolve_seed("3")
    with pytest.raises(ValueError, match=r"^FlipoutES: `seed` must be a non-negative int, got -2\.$"):
        rnd.resolve_seed(-2, caller="FlipoutES")


def test_softplus_inverse_round_trip():
    for v in (1e-6, 0.01, 1.0, 30.0):
        assert np.isclose(float(tf.nn.softplus(rnd.softplus_inverse(v))), v, rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        rnd.softplus_inverse(0.0)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_rademacher_rows_shapes_values_and_independence(dtype):
    seed = tf.constant([3, 8], tf.int64)
    rows = rnd.rademacher_rows(512, [5, 64, 100], seed, dtype)
    assert [tuple(r.shape) for r in rows] == [(512, 5), (512, 64), (512, 100)]
    for r in rows:
        assert r.dtype == tf.as_dtype(dtype)
        values = r.numpy().astype("float32")
        assert set(np.unique(values).tolist()) == {-1.0, 1.0}
        assert abs(values.mean()) < 5 / np.sqrt(values.size)
    a, b = (r.numpy().astype("float32") for r in rows[1:])
    # different outputs and different examples are uncorrelated
    assert abs(np.mean(a[:, :64] * b[:, :64])) < 5 / np.sqrt(a.size)
    assert abs(np.mean(a[:-1] * a[1:])) < 5 / np.sqrt(a.size)
    np.testing.assert_array_equal(
        rows[1].numpy(), rnd.rademacher_rows(512, [5, 64, 100], seed, dtype)[1].numpy()
    )


@pytest.mark.parametrize("jit_compile", [False, True])
def test_draws_are_bit_identical_to_tf_random_philox(jit_compile):
    """The raw-op draws (one op per seed) equal ``tf.random``'s ``alg="philox"`` functions exactly."""
    seeds = tf.constant(np.random.default_rng(0).integers(-(2**62), 2**62, size=(6, 2)), tf.int64)

    def ours(seed):
        return (
            rnd.standard_normal([4, 3], seed),
            rnd.standard_normal([5], seed, "float16"),
            tf.stack(rnd.split_seed(seed, 3)),
            rnd._full_int([7], seed, tf.int32),
        )

    def reference(seed):
        return (
            tf.random.stateless_normal([4, 3], seed=seed, alg="philox"),
            tf.random.stateless_normal([5], seed=seed, dtype="float16", alg="philox"),
            tf.random.experimental.stateless_split(seed, num=3, alg="philox"),
            tf.random.stateless_uniform(
                [7], seed=seed, minval=None, maxval=None, dtype=tf.int32, alg="philox"
            ),
        )

    ours_fn = tf.function(ours, jit_compile=jit_compile)
    reference_fn = tf.function(reference, jit_compile=jit_compile)
    for seed in tf.unstack(seeds):
        for a, b in zip(ours_fn(seed), reference_fn(seed), strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("jit_compile", [False, True])
def test_rademacher_rows_equal_eagerly_and_traced(jit_compile):
    """The traced draws (constants shared through the graph) equal the eager ones bit for bit."""
    seed = tf.constant([11, -4], tf.int64)
    widths = [5, 32, 37]
    eager = rnd.rademacher_rows(6, widths, seed)
    traced = tf.function(lambda s: rnd.rademacher_rows(6, widths, s), jit_compile=jit_compile)(seed)
    for a, b in zip(eager, traced, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_draw_constants_are_built_once_per_graph_without_control_inputs():
    seeds = [tf.constant([i, 1], tf.int64) for i in range(4)]

    def draws():
        gate = tf.constant(0.0)
        with tf.control_dependencies([gate]):  # a constant first built here must not keep this input
            first = rnd.standard_normal([3, 2], seeds[0])
        return [first] + [rnd.standard_normal([3, 2], s) for s in seeds[1:]]

    graph = tf.function(draws).get_concrete_function().graph
    consts = [op for op in graph.get_operations() if op.type == "Const"]
    keys = [
        (op.get_attr("dtype"), tuple(np.ravel(tf.make_ndarray(op.get_attr("value"))).tolist()))
        for op in consts
    ]
    # the scramble key, the algorithm id, the [3, 2] shape …: each once, not once per draw
    assert len(keys) == len(set(keys)), keys
    (shape_op,) = [op for op, key in zip(consts, keys) if key == (tf.int32, (3, 2))]
    assert not shape_op.control_inputs
    # another graph builds its own constants
    other = tf.function(draws).get_concrete_function().graph
    assert rnd._GRAPH_CONSTANTS[other] is not rnd._GRAPH_CONSTANTS[graph]


def _numpy_signs(words: np.ndarray, width: int) -> np.ndarray:
    """Sign ``k`` of a word is its bit ``31 - k`` (set: -1), decoded in NumPy."""
    bits = (words.astype(np.uint32)[..., None] >> (31 - np.arange(32, dtype=np.uint32))) & 1
    return np.where(bits, -1.0, 1.0).reshape(*words.shape[:-1], -1)[..., :width]


@pytest.mark.parametrize("width", [1, 32, 40, 64, 100])
def test_signs_are_the_bits_of_the_philox_words(width):
    """rademacher and rademacher_rows share one word → sign expansion; both match a NumPy decoding."""
    words = -(-width // 32)
    seed = tf.constant([3, 4], tf.int64)
    raw = tf.random.stateless_uniform([words], seed, minval=None, maxval=None, dtype=tf.int32, alg="philox")
    np.testing.assert_array_equal(rnd.rademacher([width], seed), _numpy_signs(raw.numpy(), width))
    (row_seed,) = rnd.split_seed(seed, 1)
    raw = tf.random.stateless_uniform(
        [3, words], row_seed, minval=None, maxval=None, dtype=tf.int32, alg="philox"
    )
    (rows,) = rnd.rademacher_rows(3, [width], seed)
    np.testing.assert_array_equal(rows, _numpy_signs(raw.numpy(), width))
    traced = tf.function(lambda b: rnd.rademacher_rows(b, [width], seed)[0])(tf.constant(3))
    np.testing.assert_array_equal(traced, rows)


def test_softplus_inverse_takes_arrays():
    x = np.array([1e-8, 0.3, 2.0, 40.0])
    np.testing.assert_allclose(rnd.softplus_inverse(x), np.log(np.expm1(x)), rtol=1e-12)
    assert isinstance(rnd.softplus_inverse(0.3), float)
    with pytest.raises(ValueError, match="positive"):
        rnd.softplus_inverse(np.array([1.0, -1.0]))

"""bayesflip.convert.from_tfp: tf_keras + tfp.layers models -> Keras 3 bayesflip models."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras

import bayesflip
from bayesflip.convert import from_tfp

tfd = tfp.distributions


def _mean_fn(d):
    return d.mean()


def _mlp(tensor_fn=None):
    kw = {} if tensor_fn is None else {"kernel_posterior_tensor_fn": tensor_fn}
    return tf_keras.Sequential(
        [
            tf_keras.Input((8,)),
            tfp.layers.DenseFlipout(16, activation="relu", seed=1, **kw),
            tfp.layers.DenseReparameterization(16, activation="tanh", **kw),
            tf_keras.layers.Dropout(0.1),
            tfp.layers.DenseLocalReparameterization(3, activation="softmax", **kw),
        ]
    )


def _cnn(tensor_fn=None):
    kw = {} if tensor_fn is None else {"kernel_posterior_tensor_fn": tensor_fn}
    inp = tf_keras.Input((8, 8, 1))
    h = tfp.layers.Convolution2DFlipout(4, 3, padding="same", activation="relu", **kw)(inp)
    h = tf_keras.layers.MaxPooling2D()(h)
    h = tfp.layers.Convolution2DReparameterization(4, 3, activation="relu", **kw)(h)
    h = tf_keras.layers.Flatten()(h)
    h = tf_keras.layers.Dense(8, activation="relu")(h)
    out = tfp.layers.DenseFlipout(3, **kw)(h)
    return tf_keras.Model(inp, out)


def _data(shape, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype("float32")
    y = ((x.reshape(n, -1)[:, 0] > 0).astype("int32") + (x.reshape(n, -1)[:, 1] > 0)).astype("int32")
    return x, y


@pytest.mark.parametrize("build, shape", [(_mlp, (8,)), (_cnn, (8, 8, 1))], ids=["mlp", "cnn"])
def test_posterior_mean_equals_tfp_with_mean_substituted(build, shape, tmp_path):
    x, y = _data(shape, 128)
    trained = build()
    trained.compile(
        tf_keras.optimizers.Adam(1e-2),
        tf_keras.losses.SparseCategoricalCrossentropy(from_logits=build is _cnn),
    )
    trained.fit(x, y, epochs=2, batch_size=32, verbose=0)
    reference = build(_mean_fn)  # same TFP layers, kernel = posterior mean
    reference.set_weights(trained.get_weights())
    expected = reference.predict(x, verbose=0)

    model = from_tfp(trained)
    assert isinstance(model, keras.Model)
    with bayesflip.posterior_mean(model):
        got = model.predict(x, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)

    # the posterior scale itself: TFP's eps + softplus(untransformed_scale)
    tfp_layer = next(l for l in trained.layers if "Flipout" in type(l).__name__)
    ours = next(l for l in model.layers if l.name == tfp_layer.name)
    np.testing.assert_allclose(
        ours.kernel_posterior.scale().numpy(),
        tfp_layer.kernel_posterior.distribution.stddev().numpy(),
        rtol=1e-6,
    )
    # converted model trains, saves and reloads
    bayesflip.set_kl_weight(model, num_examples=len(x))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=build is _cnn))
    history = model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    with bayesflip.posterior_mean(model), bayesflip.posterior_mean(restored):
        np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_normal_prior_seed_and_kl_weight_mapping():
    prior_fn = lambda dtype, shape, name, trainable, add_variable_fn: tfd.Independent(  # noqa: E731
        tfd.Normal(loc=tf.zeros(shape, dtype), scale=0.5 * tf.ones(shape, dtype)),
        reinterpreted_batch_ndims=len(shape),
    )
    n = 100
    tfp_model = tf_keras.Sequential(
        [
            tf_keras.Input((4,)),
            tfp.layers.DenseFlipout(
                3,
                seed=7,
                kernel_prior_fn=prior_fn,
                kernel_divergence_fn=lambda q, p, _: tfd.kl_divergence(q, p) / n,
            ),
        ]
    )
    with pytest.raises(ValueError, match=r"custom `kernel_divergence_fn`.*kl_weight=1 / N"):
        from_tfp(tfp_model)
    layer = from_tfp(tfp_model, kl_weight=1 / n).layers[0]
    assert layer.prior.get_config() == bayesflip.priors.Normal(0.0, 0.5).get_config()
    assert layer.seed == 7 and layer.kl_weight == pytest.approx(1 / n)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="has no tfp.layers variational layer"):
        from_tfp(tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="already a Keras 3 model"):
        from_tfp(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="must be a tf_keras model"):
        from_tfp("model")
    laplace = lambda dtype, shape, name, trainable, add_variable_fn: tfd.Independent(  # noqa: E731
        tfd.Laplace(tf.zeros(shape, dtype), tf.ones(shape, dtype)), reinterpreted_batch_ndims=len(shape)
    )
    bad_prior = tf_keras.Sequential(
        [
            tf_keras.Input((4,)),
            tfp.layers.DenseFlipout(2, kernel_prior_fn=laplace, kernel_divergence_fn=None, name="lap"),
        ]
    )
    with pytest.raises(ValueError, match=r"DenseFlipout 'lap': `kernel_prior_fn` builds a Laplace prior"):
        from_tfp(bad_prior)
    posterior = tfp.layers.default_mean_field_normal_fn()

    def custom_posterior(*args):
        return posterior(*args)

    bad_post = tf_keras.Sequential(
        [tf_keras.Input((4,)), tfp.layers.DenseFlipout(2, kernel_posterior_fn=custom_posterior, name="cp")]
    )
    with pytest.raises(ValueError, match=r"DenseFlipout 'cp': a custom `kernel_posterior_fn`"):
        from_tfp(bad_post)
    unsupported = tf_keras.Sequential(
        [
            tf_keras.Input((3, 4)),
            tfp.layers.Convolution1DFlipout(2, 2),
            tf_keras.layers.Flatten(),
            tfp.layers.DenseVariational(
                2, make_posterior_fn=_mf_posterior, make_prior_fn=_mf_prior, name="dv"
            ),
        ]
    )
    with pytest.raises(
        ValueError, match=r"DenseVariational 'dv' is a TFP layer without a bayesflip counterpart"
    ):
        from_tfp(unsupported)


def _mf_posterior(kernel_size, bias_size=0, dtype=None):
    n = kernel_size + bias_size
    return tf_keras.Sequential(
        [
            tfp.layers.VariableLayer(2 * n, dtype=dtype),
            tfp.layers.DistributionLambda(
                lambda t: tfd.Independent(tfd.Normal(t[..., :n], 1e-3 + tf.nn.softplus(t[..., n:])), 1)
            ),
        ]
    )


def _mf_prior(kernel_size, bias_size=0, dtype=None):
    n = kernel_size + bias_size
    return tf_keras.Sequential(
        [
            tfp.layers.VariableLayer(n, dtype=dtype),
            tfp.layers.DistributionLambda(lambda t: tfd.Independent(tfd.Normal(t, 1.0), 1)),
        ]
    )

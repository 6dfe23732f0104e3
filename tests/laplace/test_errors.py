"""Bad input to fit_laplace and LaplaceApproximation: each error names the function and the argument."""

import keras
import numpy as np
import pytest

from bayesflip.laplace import _fit, fit_laplace


def test_last_layer_that_is_not_dense(rng):
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3, name="conv"), keras.layers.Flatten()]
    )
    x = rng.normal(size=(4, 6, 6, 1)).astype("float32")
    with pytest.raises(ValueError, match=r"fit_laplace: .*must be a Dense layer .*got Conv2D 'conv'"):
        fit_laplace(model, x, np.zeros(4), likelihood="regression", verbose=0)


def test_last_activation_that_does_not_match_the_likelihood(rng):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="relu", name="out")])
    x = rng.normal(size=(4, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"fit_laplace: the last Dense layer 'out' has activation 'relu'"):
        fit_laplace(model, x, np.zeros((4, 1)), likelihood="regression", verbose=0)


def test_unsupported_layer_in_subset_all(rng):
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2)]
    )
    x = rng.normal(size=(4, 3)).astype("float32")
    with pytest.raises(ValueError, match=r"subset_of_weights='all' covers Dense .*BatchNormalization 'bn'"):
        fit_laplace(
            model, x, np.zeros(4, "int64"), likelihood="categorical", subset_of_weights="all", verbose=0
        )
    no_bias = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, use_bias=False, name="nb")])
    labels = np.zeros(4, "int64")
    with pytest.raises(
        ValueError, match=r"'kron' with subset_of_weights='all' covers Dense layers with a bias"
    ):
        fit_laplace(no_bias, x, labels, likelihood="categorical", subset_of_weights="all", verbose=0)
    with pytest.raises(ValueError, match=r"'full' is available for subset_of_weights='last_layer'"):
        fit_laplace(
            no_bias,
            x,
            labels,
            likelihood="categorical",
            subset_of_weights="all",
            hessian_structure="full",
            verbose=0,
        )


def test_labels_that_do_not_match_the_likelihood(softmax_linear):
    model, x, y = softmax_linear
    with pytest.raises(ValueError, match=r"fit_laplace: categorical labels `y` must be integers in \[0, 4\)"):
        fit_laplace(model, x, y + 4, verbose=0)
    with pytest.raises(ValueError, match=r"fit_laplace: regression labels `y` must have shape \(N, 4\)"):
        fit_laplace(model, x, y.astype("float32"), likelihood="regression", verbose=0)
    with pytest.raises(ValueError, match=r"fit_laplace: bernoulli labels `y` must be 0 or 1"):
        fit_laplace(model, x, np.full((40, 4), 2.0), likelihood="bernoulli", verbose=0)
    with pytest.raises(ValueError, match=r"fit_laplace: `x` and `y` must have the same length"):
        fit_laplace(model, x, y[:3], verbose=0)


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), [1.0, 2.0], "big"])
def test_non_positive_prior_precision(softmax_linear, value):
    model, x, y = softmax_linear
    with pytest.raises(ValueError, match=r"fit_laplace: `prior_precision` must be"):
        fit_laplace(model, x, y, prior_precision=value, verbose=0)
    la = fit_laplace(model, x, y, verbose=0)
    with pytest.raises(ValueError, match=r"log_marginal_likelihood: `prior_precision` must be"):
        la.log_marginal_likelihood(prior_precision=value)


def test_data_set_too_small_for_the_structure(softmax_linear, monkeypatch):
    model, x, y = softmax_linear
    with pytest.raises(ValueError, match=r"fit_laplace: the data set `x` is empty"):
        fit_laplace(model, x[:0], y[:0], verbose=0)
    monkeypatch.setattr(_fit, "MAX_FULL_PARAMETERS", 10)
    with pytest.raises(ValueError, match=r"hessian_structure='full' needs a 16 x 16 matrix .*limit 10"):
        fit_laplace(model, x, y, hessian_structure="full", verbose=0)
    la = fit_laplace(model, x, y, verbose=0)
    with pytest.raises(ValueError, match=r"method='val_nll' needs non-empty validation data"):
        la.optimize_prior_precision(method="val_nll", x_val=x[:0], y_val=y[:0])


def test_other_arguments(softmax_linear):
    model, x, y = softmax_linear
    with pytest.raises(ValueError, match=r"fit_laplace: unknown `likelihood` 'poisson'"):
        fit_laplace(model, x, y, likelihood="poisson", verbose=0)
    with pytest.raises(ValueError, match=r"`sigma_noise` applies to likelihood='regression' only"):
        fit_laplace(model, x, y, sigma_noise=1.0, verbose=0)
    with pytest.raises(ValueError, match=r"`hessian_structure` must be one of"):
        fit_laplace(model, x, y, hessian_structure="lowrank", verbose=0)
    la = fit_laplace(model, x, y, hessian_structure="full", verbose=0)
    with pytest.raises(
        ValueError, match=r"to_bayesian_model: structure='full' has no layer posterior family"
    ):
        la.to_bayesian_model()
    with pytest.raises(ValueError, match=r"predict: return_samples=True needs link_approx='mc'"):
        la.predict(x, return_samples=True)

"""bayesflip: Bayesian neural networks for Keras 3 with flipout.

Example:
>>> import keras, bayesflip
>>> model = keras.Sequential([keras.Input((4,)), bayesflip.layers.DenseFlipout(3, seed=0)])
>>> bayesflip.set_kl_weight(model, num_examples=100)
0.01
"""

import os as _os

_os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from bayesflip._startup import quiet_stderr as _quiet_stderr  # noqa: E402
from bayesflip._startup import started_as_cli as _started_as_cli

if _started_as_cli():
    # the command line starts without TensorFlow's C++ start-up lines (see bayesflip/_startup.py)
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet_stderr():
        import tensorflow as _tf

        _tf.config.list_physical_devices()  # the CUDA probe logs on first use, not on import
    del _tf
del _quiet_stderr, _started_as_cli

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":  # pragma: no cover - checked at import
    raise ImportError(
        f"bayesflip needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
        f"{_keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow."
    )

from bayesflip import (  # noqa: E402
    calibration,
    conformal,  # noqa: E402
    convert,  # noqa: E402
    datasets,
    decisions,
    diagnostics,
    elbo,
    es,
    heads,  # noqa: E402
    laplace,
    layers,
    posteriors,
    priors,
    random,
    recipe,
    uncertainty,
)
from bayesflip._version import __version__  # noqa: E402  (also the package metadata's version)
from bayesflip.convert import to_bayesian  # noqa: E402
from bayesflip.elbo import (  # noqa: E402
    ELBOTerms,
    KLAnnealing,
    get_kl_weight,
    kl_divergence,
    set_kl_weight,
)
from bayesflip.inference import posterior_mean, set_posterior_mean, variational_layers  # noqa: E402
from bayesflip.serving import export  # noqa: E402

__all__ = [
    "calibration",
    "datasets",
    "decisions",
    "diagnostics",
    "elbo",
    "es",
    "uncertainty",
    "heads",
    "conformal",
    "laplace",
    "layers",
    "convert",
    "to_bayesian",
    "export",
    "priors",
    "posteriors",
    "random",
    "recipe",
    "posterior_mean",
    "set_posterior_mean",
    "variational_layers",
    "ELBOTerms",
    "KLAnnealing",
    "get_kl_weight",
    "kl_divergence",
    "set_kl_weight",
    "__version__",
]

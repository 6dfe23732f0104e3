"""Predictive uncertainty: Monte Carlo predictive samples and their summaries.

- :func:`mc_predict` draws ``num_samples`` **independent** posterior samples of a
  model's output for every input. Each sample is its own forward pass (so each
  has its own weight perturbation ``ΔW``); the passes run inside one compiled
  ``tf.while_loop`` per input batch instead of a Python loop of ``predict``
  calls. (Tiling an input ``T`` times inside one flipout batch would *not* do:
  the copies share ``ΔW`` and differ only by random signs.)
- Classification: :func:`predictive_entropy` (total), :func:`expected_entropy`
  (aleatoric) and :func:`mutual_information` (epistemic) with
  ``H[E_s p_s] = E_s H[p_s] + I``.
- Regression with mean and scale heads: :func:`regression_uncertainty`
  (total = aleatoric + epistemic variance), :func:`predictive_cdf` and
  :func:`prediction_interval` of the equal-weight Gaussian mixture.
- Out-of-distribution detection with any score: :func:`ood_auroc`,
  :func:`ood_aupr`.

Entropies are in nats. Functions given a ``tf.Tensor`` return a ``tf.Tensor``
(usable inside ``tf.function``); given array-likes they return NumPy arrays.

Regression summaries are one type, :class:`RegressionPredictive` (also
:class:`bayesflip.heads.RegressionPredictive`); ``RegressionUncertainty`` is a
deprecated alias of it.

Layout: a package whose public names are imported here from private modules:
the sampler (``_sampling``) apart from the pure summaries (``_classification``,
``_regression``, ``_ood``), which share their formulas with
:mod:`bayesflip.heads` and :mod:`bayesflip.serving` through
``bayesflip._predictive_core``. Only the names in ``__all__`` are public.
"""

import warnings as _warnings

from bayesflip._predictive_core import RegressionPredictive
from bayesflip.uncertainty._classification import expected_entropy, mutual_information, predictive_entropy
from bayesflip.uncertainty._ood import ood_aupr, ood_auroc
from bayesflip.uncertainty._regression import prediction_interval, predictive_cdf, regression_uncertainty
from bayesflip.uncertainty._sampling import mc_predict

__all__ = [
    "mc_predict",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "RegressionPredictive",
    "regression_uncertainty",
    "predictive_cdf",
    "prediction_interval",
    "ood_auroc",
    "ood_aupr",
]

#: Public names that went away: old name -> the name of the object that replaces it.
_DEPRECATED = {"RegressionUncertainty": "RegressionPredictive"}


def __getattr__(name: str):
    if name in _DEPRECATED:
        new = _DEPRECATED[name]
        _warnings.warn(
            f"bayesflip.uncertainty.{name} is deprecated and will be removed in a future release; "
            f"use bayesflip.uncertainty.{new} (regression_uncertainty returns one).",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[new]
    raise AttributeError(f"module 'bayesflip.uncertainty' has no attribute {name!r}")

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

Layout: a package whose private modules are re-exported here (import every
name from ``bayesflip.uncertainty``): the sampler (``_sampling``) apart from
the pure summaries (``_classification``, ``_regression``, ``_ood``).
"""

from bayesflip.uncertainty._classification import (  # noqa: F401 - re-exported
    _as_float_tensor,
    _entropy,
    _on_simplex,
    _out,
    _probs_and_logp,
    expected_entropy,
    mutual_information,
    predictive_entropy,
)
from bayesflip.uncertainty._ood import _ood_scores, ood_aupr, ood_auroc  # noqa: F401 - re-exported
from bayesflip.uncertainty._regression import (  # noqa: F401 - re-exported
    RegressionUncertainty,
    _mixture_quantile,
    _regression_inputs,
    prediction_interval,
    predictive_cdf,
    regression_uncertainty,
)
from bayesflip.uncertainty._sampling import (  # noqa: F401 - re-exported
    _LINKS,
    _SAMPLERS,
    _build_sampler,
    _graph_key,
    _mode_key,
    mc_predict,
)

__all__ = [
    "mc_predict",
    "predictive_entropy",
    "expected_entropy",
    "mutual_information",
    "RegressionUncertainty",
    "regression_uncertainty",
    "predictive_cdf",
    "prediction_interval",
    "ood_auroc",
    "ood_aupr",
]

"""Likelihood output heads and their negative log-likelihood losses.

A head is the last layer of a model. It turns the previous layer's output into
the parameters of a ``tfp.distributions`` distribution; its loss
(:meth:`Head.loss`) is the negative log-likelihood of the targets under that
distribution, computed with the distribution's ``log_prob`` (no hand-written
densities). ``model.predict`` returns the parameters, and
:meth:`Head.distribution` turns them into the distribution.

Output tensors (what the head returns, what ``model.predict`` gives):

=============================  ===============================  ==============================
head                           input                            output
=============================  ===============================  ==============================
``GaussianHead`` (hetero.)     ``(..., 2·units)``: loc | raw    ``(..., units, 2)``: [loc, scale]
``GaussianHead`` (homosc.)     ``(..., units)``: loc            ``(..., units, 2)``: [loc, scale]
``StudentTHead``               as ``GaussianHead``              ``(..., units, 3)``: [loc, scale, df]
``CategoricalHead``            ``(..., K)`` logits              the logits, unchanged
``BernoulliHead``              ``(..., units)`` logits          the logits, unchanged
=============================  ===============================  ==============================

Heteroscedastic heads map the raw half to ``scale = min_scale + softplus(raw)``;
homoscedastic heads learn one scale per unit (a saved weight). The losses sum
the NLL over the ``units`` of one example (the log-likelihood of the whole
target vector) and average it over the batch, like Keras' own losses; with the
layers' KL terms (:func:`bayesflip.set_kl_weight`) ``model.fit`` then minimises
the per-example negative ELBO.

Predictives: :func:`predictive` (and :func:`bayesflip.uncertainty.mc_predict`
on a model whose output layer is a head) reduce ``T`` Monte Carlo draws of the
head's output: regression heads give a :class:`RegressionPredictive` (mixture
mean, variance decomposition, mixture quantiles), classification heads the
MC-averaged probabilities.

The sampling protocol: every head states its :class:`PredictiveSpec` (task
``"classification"``/``"binary"``/``"regression"``, per-draw inverse link,
parameters per unit) in :attr:`Head.predictive_spec` and reduces draws with
:meth:`Head.predictive`; :func:`~bayesflip.uncertainty.mc_predict` and
:func:`bayesflip.export` use nothing else. A new head implements both.

Label and parameter checks raise a ``ValueError``/``TypeError`` in eager mode
and a ``tf.errors.InvalidArgumentError`` with the same message inside a graph
(``model.fit``); under XLA (``jit_compile=True``) value checks are skipped.

Layout: a package whose public names are imported here from private modules:
the losses (``_losses``), the head layers and their protocol (``_heads``),
:func:`output_head` and :func:`predictive` (``_predictive``), shared helpers
(``_common``); the predictive math and :class:`RegressionPredictive` live in
``bayesflip._predictive_core``, below heads and :mod:`bayesflip.uncertainty`.
Only the names in ``__all__`` are public.
"""

from bayesflip._predictive_core import RegressionPredictive
from bayesflip.heads._heads import (
    TASKS,
    BernoulliHead,
    CategoricalHead,
    GaussianHead,
    Head,
    PredictiveSpec,
    StudentTHead,
)
from bayesflip.heads._losses import BernoulliNLL, CategoricalNLL, GaussianNLL, StudentTNLL
from bayesflip.heads._predictive import output_head, predictive

__all__ = [
    "Head",
    "GaussianHead",
    "StudentTHead",
    "CategoricalHead",
    "BernoulliHead",
    "GaussianNLL",
    "StudentTNLL",
    "CategoricalNLL",
    "BernoulliNLL",
    "PredictiveSpec",
    "TASKS",
    "RegressionPredictive",
    "predictive",
    "output_head",
]

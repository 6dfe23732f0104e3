"""Split conformal prediction on top of the Bayesian predictive.

Split conformal prediction turns any predictive into intervals (regression) or
sets (classification) with a finite-sample **marginal** guarantee: if the
calibration examples and the test example are exchangeable, then

    ``1 − α ≤ P(y_test ∈ C(x_test)) ≤ 1 − α + 1/(n + 1)``

(the upper bound for continuous, tie-free scores), whatever the model. Recipe:
compute a *nonconformity score* ``s_i`` on ``n`` held-out calibration examples,
take the conformal quantile

    ``q̂ = s_(k)``,  the ``k``-th smallest score, ``k = ⌈(n + 1)(1 − α)⌉``

(the empirical quantile at level ``⌈(n+1)(1−α)⌉/n``, :func:`conformal_quantile`),
and predict every candidate whose score is ``≤ q̂``. The BNN's own uncertainty
enters through the score, which makes the sets *adaptive*:

===========================  ==========================================  ===========================
score                        ``s(x, y)``                                  prediction
===========================  ==========================================  ===========================
``"absolute"``               ``|y − μ(x)|``                               ``μ ± q̂``
``"normalized"``             ``|y − μ(x)| / σ(x)`` (predictive sd)        ``μ ± q̂ σ``
``"cqr"`` (Romano 2019)      ``max(l(x) − y, y − u(x))``, ``l, u`` the     ``[l − q̂, u + q̂]``
                             ``α/2``, ``1 − α/2`` predictive quantiles
``"lac"`` (Sadinle 2019)     ``1 − π_y(x)``                               ``{k : 1 − π_k ≤ q̂}``
``"aps"`` (Romano 2020)      ``ρ_y(x) + u · π_y(x)``                      ``{k : s(x, k) ≤ q̂}``
``"raps"`` (Angelopoulos     APS ``+ λ (o_y(x) − k_reg)⁺``                 ``{k : s(x, k) ≤ q̂}``
2021)
===========================  ==========================================  ===========================

``π(x)`` are the MC predictive probabilities, ``ρ_y`` the total probability of
the classes ranked strictly above ``y``, ``o_y`` the rank of ``y`` (1 = most
probable), ``u ~ U(0, 1)`` one draw per example for the randomised scores
(``u = 1`` for the non-randomised ones).

Pieces: pure functions (scores, :func:`conformal_quantile`, intervals and sets,
coverage metrics), and two calibrate-then-predict wrappers,
:class:`ConformalRegressor` and :class:`ConformalClassifier`, that call
:func:`bayesflip.uncertainty.mc_predict` on any model (``fit(x_cal, y_cal)``,
then ``predict(x, alpha)``; ``alpha`` is chosen at predict time).

The guarantee is marginal (on average over test points), not conditional: the
coverage within a region, class or uncertainty decile can be lower; use
:func:`coverage_by_group` to see it. It also needs exchangeability: test
inputs from elsewhere than the calibration data (a gap, an extrapolation
region, a shift) carry no guarantee.

Layout: a package whose private modules define the names exported here (import every
name from ``bayesflip.conformal``): the quantile, checks and coverage metrics
(``_core``), regression (``_regression``) and classification
(``_classification``).
"""

from bayesflip.conformal._classification import (
    CLASSIFICATION_SCORES,
    ConformalClassifier,
    class_scores,
    label_scores,
    prediction_sets,
)
from bayesflip.conformal._core import (
    GroupCoverage,
    check_alpha,
    conformal_quantile,
    coverage_by_group,
    interval_covered,
    mean_set_size,
    mean_width,
    min_calibration_size,
    quantile_groups,
    set_covered,
)
from bayesflip.conformal._regression import (
    REGRESSION_SCORES,
    ConformalRegressor,
    absolute_residual_interval,
    absolute_residual_score,
    cqr_interval,
    cqr_score,
    normalized_interval,
    normalized_residual_score,
)

__all__ = [
    "REGRESSION_SCORES",
    "CLASSIFICATION_SCORES",
    "check_alpha",
    "conformal_quantile",
    "min_calibration_size",
    "absolute_residual_score",
    "normalized_residual_score",
    "cqr_score",
    "absolute_residual_interval",
    "normalized_interval",
    "cqr_interval",
    "class_scores",
    "label_scores",
    "prediction_sets",
    "interval_covered",
    "set_covered",
    "mean_width",
    "mean_set_size",
    "coverage_by_group",
    "quantile_groups",
    "GroupCoverage",
    "ConformalRegressor",
    "ConformalClassifier",
]

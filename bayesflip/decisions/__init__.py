"""Decisions with a BNN's uncertainty: out-of-distribution flags, selective prediction, active learning.

- :mod:`~bayesflip.decisions.ood`: predictive OOD scores (max softmax
  probability, max logit, energy, predictive entropy, mutual information,
  variation ratio) and their evaluation (AUROC, AUPR-In/Out, FPR at 95 % TPR;
  one table for every score, histograms).
- :mod:`~bayesflip.decisions.features`: feature-space scores fitted on a
  layer's training activations (Mahalanobis, DDU's Gaussian density), saved as ``.npz``.
- :mod:`~bayesflip.decisions.selective`: risk–coverage curves, AURC, E-AURC,
  accuracy at a coverage, coverage at a target risk.
- :mod:`~bayesflip.decisions.acquisition`: BALD, maximum entropy, variation
  ratios, mean standard deviation, random, BatchBALD.
- :mod:`~bayesflip.decisions.active`: the active-learning loop (resumable).

Example:
>>> from bayesflip import decisions
>>> decisions.evaluate_ood({"entropy": [0.1, 0.2]}, {"entropy": [0.5, 0.7]})["entropy"]["auroc"]
1.0
"""

from bayesflip.decisions.acquisition import (
    ACQUISITIONS,
    bald,
    batchbald,
    max_entropy,
    mean_std,
    select,
    variation_ratios,
)
from bayesflip.decisions.active import ActiveLearningLoop
from bayesflip.decisions.features import (
    GaussianDensityScore,
    MahalanobisScore,
    layer_features,
    load_feature_score,
)
from bayesflip.decisions.ood import (
    SCORE_NAMES,
    OODTable,
    energy,
    evaluate_ood,
    false_positive_rate_at_tpr,
    max_logit,
    max_softmax_probability,
    ood_histograms,
    ood_metrics,
    ood_scores,
    variation_ratio,
)
from bayesflip.decisions.selective import (
    RiskCoverage,
    accuracy_at_coverage,
    aurc,
    coverage_at_risk,
    excess_aurc,
    risk_coverage_curve,
    risk_coverage_plot,
)

__all__ = [
    "SCORE_NAMES",
    "OODTable",
    "max_softmax_probability",
    "max_logit",
    "energy",
    "variation_ratio",
    "ood_scores",
    "false_positive_rate_at_tpr",
    "ood_metrics",
    "evaluate_ood",
    "ood_histograms",
    "layer_features",
    "MahalanobisScore",
    "GaussianDensityScore",
    "load_feature_score",
    "RiskCoverage",
    "risk_coverage_curve",
    "aurc",
    "excess_aurc",
    "accuracy_at_coverage",
    "coverage_at_risk",
    "risk_coverage_plot",
    "ACQUISITIONS",
    "bald",
    "max_entropy",
    "variation_ratios",
    "mean_std",
    "batchbald",
    "select",
    "ActiveLearningLoop",
]

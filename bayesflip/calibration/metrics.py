"""Calibration metrics as small pure functions.

Classification metrics take integer ``labels`` of shape ``(N,)`` (``(N, 1)`` and
one-hot ``(N, K)`` are accepted too) and ``probs`` of shape ``(N, K)`` on the
probability simplex, or logits with ``from_logits=True``. Every function
validates its input and returns a Python ``float`` (or a small named tuple).

The binned statistics (:func:`calibration_bins`) and their reduction
(:func:`calibration_error_from_bins`) are TensorFlow ops shared with the
streaming Keras metrics in :mod:`bayesflip.calibration.streaming`, so a metric
accumulated over batches equals the function on the whole data set.

Conventions:

- **Top-label ECE** (Guo et al. 2017): confidence ``c_i = max_k p_ik``, correct
  ``a_i = [argmax_k p_ik == y_i]``. Bins ``b`` partition the confidences;
  ``gap_b = |mean_{i∈b} a_i − mean_{i∈b} c_i|`` and ``w_b = n_b / N``.
  ``norm="l1"``: ``Σ_b w_b gap_b`` (ECE); ``"l2"``: ``sqrt(Σ_b w_b gap_b²)``;
  ``"max"``: ``max_{b: n_b>0} gap_b`` (MCE).
- Equal-width bins are ``(0, 1/B], (1/B, 2/B], …`` (a confidence of exactly 0
  falls in the first bin). Equal-mass bins sort the confidences (stable) and give
  bin ``b`` the examples of rank ``r`` with ``floor(r B / N) = b``, so bin counts
  differ by at most one.
- **Classwise ECE** (Kull et al. 2019): the same binned gap for each class ``k``
  with confidence ``p_ik`` and outcome ``[y_i == k]``, averaged over classes.
- **Brier score**: ``mean_i Σ_k (p_ik − [y_i == k])²`` (the original multiclass
  score of Brier 1950, in ``[0, 2]``). scikit-learn's binary
  ``brier_score_loss(y, p1)`` is ``mean_i (p_i1 − y_i)²``, i.e. *half* of this
  score for ``K = 2``.
- **NLL**: ``mean_i −log p_{i,y_i}`` (natural log); probabilities are clipped
  below at ``1e-12``.

Layout: the functions live in four private modules and are exported here (import them
from this module or from :mod:`bayesflip.calibration`): input validation
(``_inputs``), binned statistics and the ECE family (``_binned``), proper scores
and the Brier decomposition (``_scores``), regression calibration (``_regression``).
"""

from __future__ import annotations

from bayesflip.calibration._binned import (
    CalibrationBins,
    calibration_bins,
    calibration_error_from_bins,
    classwise_calibration_error,
    expected_calibration_error,
)
from bayesflip.calibration._regression import (
    interval_coverage,
    quantile_calibration_curve,
    quantile_calibration_error,
)
from bayesflip.calibration._scores import (
    BrierDecomposition,
    brier_decomposition,
    brier_score,
    negative_log_likelihood,
)

__all__ = [
    "expected_calibration_error",
    "classwise_calibration_error",
    "calibration_bins",
    "calibration_error_from_bins",
    "CalibrationBins",
    "brier_score",
    "brier_decomposition",
    "BrierDecomposition",
    "negative_log_likelihood",
    "quantile_calibration_error",
    "quantile_calibration_curve",
    "interval_coverage",
]

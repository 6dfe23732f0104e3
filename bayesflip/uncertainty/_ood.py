"""Out-of-distribution detection scores: AUROC and AUPR of any uncertainty score."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bayesflip._typing import ArrayLike


def _ood_scores(fn, scores_in, scores_out):
    a = np.asarray(scores_in.numpy() if tf.is_tensor(scores_in) else scores_in, dtype=np.float64).reshape(-1)
    b = np.asarray(scores_out.numpy() if tf.is_tensor(scores_out) else scores_out, dtype=np.float64).reshape(
        -1
    )
    if a.size == 0 or b.size == 0:
        raise ValueError(
            f"{fn}: needs at least one in- and one out-of-distribution score, got {a.size} and {b.size}."
        )
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"{fn}: scores contain NaN or infinite values.")
    return a, b


def ood_auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Area under the ROC curve for telling out- from in-distribution inputs by a score.

    Higher scores must mean "more likely out of distribution" (entropy, mutual
    information, variance …; negate a confidence). Equals the probability that a
    random OOD input scores higher than a random in-distribution one, ties
    counting one half (Mann–Whitney U with mid-ranks).

    Args:
        scores_in: scores of in-distribution inputs (any shape, flattened).
        scores_out: scores of out-of-distribution inputs.

    Returns:
        AUROC in ``[0, 1]`` (0.5 = no separation).

    Example:
    >>> ood_auroc([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333334
    """
    a, b = _ood_scores("ood_auroc", scores_in, scores_out)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([a, b]))  # mid-ranks for ties
    u = ranks[a.size :].sum() - b.size * (b.size + 1) / 2
    return float(u / (a.size * b.size))


def ood_aupr(scores_in: ArrayLike, scores_out: ArrayLike, positive: str = "out") -> float:
    """Area under the precision–recall curve (average precision) of OOD detection by a score.

    ``AP = Σ_n (R_n − R_{n−1}) P_n`` over the distinct score thresholds in
    decreasing order (no interpolation; the same definition as scikit-learn's
    ``average_precision_score``).

    Args:
        scores_in: scores of in-distribution inputs (higher = more likely OOD).
        scores_out: scores of out-of-distribution inputs.
        positive: ``"out"`` (AUPR-Out: OOD inputs are the positives) or ``"in"``
            (AUPR-In: in-distribution inputs are the positives, scores negated).

    Returns:
        Average precision in ``[0, 1]``.

    Example:
    >>> ood_aupr([0.1, 0.2, 0.3], [0.25, 0.9])
    0.8333333333333333
    """
    fn = "ood_aupr"
    if positive not in ("out", "in"):
        raise ValueError(f"{fn}: `positive` must be 'out' or 'in', got {positive!r}.")
    a, b = _ood_scores(fn, scores_in, scores_out)
    if positive == "in":
        a, b = -b, -a
    scores = np.concatenate([a, b])
    truth = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    order = np.argsort(-scores, kind="stable")
    scores, truth = scores[order], truth[order]
    last_of_threshold = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tp = np.cumsum(truth)[last_of_threshold]
    predicted = last_of_threshold + 1
    precision = tp / predicted
    recall = tp / b.size
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))

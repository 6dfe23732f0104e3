"""Shared data generators and NumPy reference implementations for the calibration tests.

The references are written independently of ``bayesflip.calibration`` (plain
loops over bins), so the tests compare two implementations.
"""

from __future__ import annotations

import numpy as np


def random_probs(rng: np.random.Generator, n: int, k: int, sharpness: float = 2.0) -> np.ndarray:
    """Softmax of scaled Gaussian logits, float64 ``(n, k)``."""
    z = sharpness * rng.normal(size=(n, k))
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def calibrated_sample(rng: np.random.Generator, n: int, k: int = 4):
    """Labels drawn from the predicted distribution itself: a perfectly calibrated predictor."""
    p = random_probs(rng, n, k)
    u = rng.random(n)
    y = (u[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return np.minimum(y, k - 1), p


def reference_ece(labels, probs, num_bins, binning="equal_width", norm="l1"):
    """Loop-based top-label calibration error."""
    labels = np.asarray(labels)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(float)
    n = len(conf)
    if binning == "equal_width":
        members = []
        for b in range(num_bins):
            lo, hi = b / num_bins, (b + 1) / num_bins
            mask = (conf > lo) & (conf <= hi)
            if b == 0:
                mask |= conf == 0
            members.append(np.nonzero(mask)[0])
    else:
        order = np.argsort(conf, kind="stable")
        members = [
            order[int(np.ceil(b * n / num_bins)) : int(np.ceil((b + 1) * n / num_bins))]
            for b in range(num_bins)
        ]
    gaps, weights = [], []
    for idx in members:
        if len(idx) == 0:
            continue
        gaps.append(abs(correct[idx].mean() - conf[idx].mean()))
        weights.append(len(idx) / n)
    gaps, weights = np.array(gaps), np.array(weights)
    if norm == "l1":
        return float(np.sum(weights * gaps))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps**2)))
    return float(gaps.max())


def reference_classwise_ece(labels, probs, num_bins, norm="l1"):
    """Mean over classes of the binned calibration error of ``p_k`` against ``[y == k]``."""
    k = probs.shape[1]
    errors = []
    for c in range(k):
        conf = probs[:, c]
        outcome = (np.asarray(labels) == c).astype(float)
        gaps, weights = [], []
        for b in range(num_bins):
            lo, hi = b / num_bins, (b + 1) / num_bins
            mask = (conf > lo) & (conf <= hi)
            if b == 0:
                mask |= conf == 0
            if mask.any():
                gaps.append(abs(outcome[mask].mean() - conf[mask].mean()))
                weights.append(mask.mean())
        gaps, weights = np.array(gaps), np.array(weights)
        if norm == "l1":
            errors.append(np.sum(weights * gaps))
        elif norm == "l2":
            errors.append(np.sqrt(np.sum(weights * gaps**2)))
        else:
            errors.append(gaps.max())
    return float(np.mean(errors))

"""The Laplace log marginal likelihood and its maximisation over prior precision and observation noise.

With the MAP ``θ*``, a zero-mean Gaussian prior of precision ``δ_g`` per group
``g`` (one global group, or one per layer) and the curvature's eigenvalues
``λ`` (at ``σ = 1``):

``log p(D) ≈ log p(D | θ*) − ½ Σ_g [Σ_i log(c λ_gi + δ_g) − P_g log δ_g + δ_g ‖θ*_g‖²]``

(Immer et al. 2021, eq. 4; MacKay 1992): the log-likelihood, minus half the log
determinant ratio of the posterior and prior precisions and the prior's
scatter term. ``c`` is ``1/σ²`` for a regression GGN (``1/σ⁴`` for its
empirical Fisher) and 1 otherwise; ``log p(D | θ*)`` depends on ``σ`` in
regression only. For a linear-Gaussian model it is the exact evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from bayesflip.laplace._likelihood import regression_loglik

_LOG_BOUNDS = (-18.0, 18.0)


@dataclass
class EvidenceTerms:
    """What the evidence needs from a fit: eigenvalues per group, ``‖θ*_g‖²``, the data term."""

    eigen_groups: list
    theta_sq: np.ndarray
    num_params: np.ndarray
    loglik: float  #: classification: ``log p(D | θ*)``; regression: unused
    sum_sq: float  #: regression: residual sum of squares at the MAP
    num_targets: int  #: regression: number of target values ``N · K``
    regression: bool
    noise_power: int  #: 2 for a GGN, 4 for an empirical Fisher (``c = σ^(−power)``)


def log_marginal_likelihood(terms: EvidenceTerms, delta: np.ndarray, sigma: float = 1.0) -> float:
    """The formula of the module docstring; ``delta`` has one entry per group."""
    c = sigma ** (-terms.noise_power) if terms.regression else 1.0
    if terms.regression:
        loglik = regression_loglik(terms.num_targets, terms.sum_sq, sigma)
    else:
        loglik = terms.loglik
    penalty = 0.0
    for g, lam in enumerate(terms.eigen_groups):
        d = float(delta[g])
        penalty += np.sum(np.log(c * lam + d)) - terms.num_params[g] * math.log(d) + d * terms.theta_sq[g]
    return float(loglik - 0.5 * penalty)


def maximise(
    terms: EvidenceTerms, delta0: np.ndarray, sigma0: float, per_layer: bool, fit_sigma: bool
) -> tuple[np.ndarray, float]:
    """Maximise the evidence over ``log δ`` (global or per group) and, when ``fit_sigma``, ``log σ``."""
    groups = len(terms.eigen_groups)
    n_delta = groups if per_layer else 1
    start = np.log(np.full(n_delta, float(np.mean(delta0)))) if not per_layer else np.log(delta0)
    if fit_sigma:
        start = np.append(start, math.log(sigma0))

    def unpack(z):
        delta = np.exp(z[:n_delta]) if per_layer else np.full(groups, math.exp(z[0]))
        sigma = math.exp(z[n_delta]) if fit_sigma else sigma0
        return delta, sigma

    def objective(z):
        delta, sigma = unpack(z)
        return -log_marginal_likelihood(terms, delta, sigma)

    result = optimize.minimize(objective, start, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * len(start))
    return unpack(result.x)

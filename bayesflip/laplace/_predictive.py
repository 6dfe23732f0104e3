"""Predictives of a Laplace approximation: the linearised (GLM) one and the NN one (sampled weights).

GLM: the network linearised at the MAP, ``f(x; θ) ≈ f(x; θ*) + J(x)(θ − θ*)``,
makes the output Gaussian, ``f ~ N(f*, J Σ Jᵀ)`` (Immer, Korzepa & Bauer 2021;
Foong et al. 2019). Regression is then closed form (``N(f*, J Σ Jᵀ + σ²)``);
classification uses the probit approximation ``softmax(f* / √(1 + π/8 ·
diag J Σ Jᵀ))`` (MacKay 1992; sigmoid alike) or Monte Carlo over the Gaussian
logits. NN: Monte Carlo over posterior weight draws, the network itself (not
linearised), run by :func:`bayesflip.uncertainty.mc_predict` on the model
:meth:`~bayesflip.laplace.LaplaceApproximation.to_bayesian_model` builds.

Outputs have the types of :func:`~bayesflip.uncertainty.mc_predict`:
probabilities ``(N, K)`` (or draws ``(T, N, K)``) for classification, a
:class:`bayesflip.heads.RegressionPredictive` for regression.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from bayesflip.heads import RegressionPredictive

LINK_APPROX = ("probit", "mc")
PRED_TYPES = ("glm", "nn")


def gaussian_draws(mean: np.ndarray, cov: np.ndarray, num_samples: int, seed: int) -> np.ndarray:
    """``num_samples`` draws of ``N(mean_n, cov_n)`` per example, ``(T, B, K)``."""
    rng = np.random.default_rng(seed)
    k = mean.shape[-1]
    chol = np.linalg.cholesky(cov + 1e-10 * np.eye(k))
    eps = rng.standard_normal((num_samples, *mean.shape))
    return mean[None] + np.einsum("nkl,tnl->tnk", chol, eps)


def _softmax(f: np.ndarray) -> np.ndarray:
    z = f - f.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def _sigmoid(f: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * f))


def classification(
    likelihood: str,
    mean: np.ndarray,
    cov: np.ndarray,
    link_approx: str,
    num_samples: int,
    return_samples: bool,
    seed: int,
) -> np.ndarray:
    """GLM predictive probabilities (probit or MC), float32."""
    link = _softmax if likelihood == "categorical" else _sigmoid
    if link_approx == "probit":
        var = np.diagonal(cov, axis1=1, axis2=2)
        return link(mean / np.sqrt(1.0 + math.pi / 8.0 * var)).astype("float32")
    probs = link(gaussian_draws(mean, cov, num_samples, seed))
    return (probs if return_samples else probs.mean(0)).astype("float32")


def regression(
    mean: np.ndarray, cov: np.ndarray, sigma: float, num_samples: int, seed: int
) -> RegressionPredictive:
    """Closed-form ``N(f*, diag J Σ Jᵀ + σ²)``; ``samples`` are ``num_samples`` GLM draws ``[loc, σ]``."""
    epistemic = np.diagonal(cov, axis1=1, axis2=2).astype(np.float64)
    aleatoric = np.full_like(epistemic, sigma**2)
    loc = gaussian_draws(mean, cov, num_samples, seed)
    samples = np.stack([loc, np.full_like(loc, sigma)], axis=-1).astype("float32")
    return RegressionPredictive(mean.astype(np.float64), aleatoric + epistemic, aleatoric, epistemic, samples)


def heteroscedastic(head, tail, mean: np.ndarray, cov: np.ndarray, num_samples: int, seed: int):
    """MC over the linearised ``[loc | raw]`` through ``tail`` (ending in ``head``): the head's predictive."""
    from bayesflip.heads import predictive

    draws = gaussian_draws(mean, cov, num_samples, seed).astype("float32")
    params = np.stack([np.asarray(tail(tf.constant(d))) for d in draws])
    return predictive(head, params)

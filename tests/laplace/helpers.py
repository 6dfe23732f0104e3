"""NumPy references for the Laplace tests: Jacobians, GGNs, evidences and predictives in closed form."""

import numpy as np


def softmax(f):
    e = np.exp(f - f.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def last_layer_jacobian(phi, k):
    """``J_n = [φ_nᵀ ⊗ I_K, I_K]`` for row-major ``vec W`` then ``b``: ``(N, K, d·K + K)``."""
    n, d = phi.shape
    eye = np.eye(k)
    jw = np.einsum("ni,kl->nkil", phi, eye).reshape(n, k, d * k)
    return np.concatenate([jw, np.broadcast_to(eye, (n, k, k))], axis=2)


def softmax_hessians(f):
    p = softmax(f)
    return np.einsum("nk,kl->nkl", p, np.eye(f.shape[1])) - np.einsum("nk,nl->nkl", p, p)


def ggn(phi, lam):
    j = last_layer_jacobian(phi, lam.shape[1])
    return np.einsum("nkp,nkl,nlq->pq", j, lam, j)


def laplace_evidence(loglik, h, delta, theta):
    """``log p(D|θ*) − ½ [log det(H + δI) − P log δ + δ‖θ‖²]``."""
    p = len(theta)
    logdet = np.linalg.slogdet(h + delta * np.eye(p))[1]
    return loglik - 0.5 * (logdet - p * np.log(delta) + delta * theta @ theta)

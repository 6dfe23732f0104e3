"""Likelihoods in the output space ``f`` (the last Dense layer's pre-activation): Hessians, log-likelihoods, labels.

For each likelihood and a batch of outputs ``f`` (``(B, K)``) it gives the
log-likelihood of the labels, the gradient ``e = ∂(−log p)/∂f`` (the empirical
Fisher's factor) and a square-root factor ``L`` of the Hessian of ``−log p``
with respect to ``f`` (``Λ = L Lᵀ``, the generalised Gauss–Newton's middle term):

==================  ==============================  ====================================
likelihood          ``Λ`` (per example)             ``L``
==================  ==============================  ====================================
``categorical``     ``diag(p) − p pᵀ``, ``p = softmax f``   ``diag(√p) − p √pᵀ``
``bernoulli``       ``diag(p (1 − p))``, ``p = σ(f)``     ``diag(√(p (1 − p)))``
``regression``      ``I / σ²`` (``σ`` the noise)    ``I / σ`` (computed at ``σ = 1``)
``heteroscedastic`` Fisher of ``N(loc, s²)`` in     ``diag(1/s, √2 s′/s)``
                    ``f = [loc | raw]``
==================  ==============================  ====================================
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

LIKELIHOODS = ("categorical", "bernoulli", "regression", "heteroscedastic")
_ALIASES = {"classification": "categorical", "binary": "bernoulli", "gaussian": "regression"}


def resolve(fn: str, likelihood: str | None, model: keras.Model, last_layer, head) -> str:
    """The likelihood of ``model``: given, or read from its head, last activation or compiled loss."""
    from bayesflip import heads

    if likelihood is not None:
        name = _ALIASES.get(likelihood, likelihood) if isinstance(likelihood, str) else likelihood
        if name not in LIKELIHOODS:
            raise ValueError(
                f"{fn}: unknown `likelihood` {likelihood!r}; expected one of "
                f"{['categorical', 'bernoulli', 'regression']} (or None to read it from the model)."
            )
        if name == "heteroscedastic" and not (
            isinstance(head, heads.GaussianHead) and head.noise == "heteroscedastic"
        ):
            raise ValueError(f"{fn}: likelihood='heteroscedastic' needs a heteroscedastic GaussianHead.")
        return name
    if head is not None:
        if isinstance(head, heads.CategoricalHead):
            return "categorical"
        if isinstance(head, heads.BernoulliHead):
            return "bernoulli"
        if isinstance(head, heads.GaussianHead):
            return "regression" if head.noise == "homoscedastic" else "heteroscedastic"
        raise ValueError(
            f"{fn}: the output head {type(head).__name__} '{head.name}' has no Laplace likelihood; "
            "supported: CategoricalHead, BernoulliHead, GaussianHead."
        )
    activation = getattr(getattr(last_layer, "activation", None), "__name__", "linear")
    if activation == "softmax":
        return "categorical"
    if activation == "sigmoid":
        return "bernoulli"
    loss = getattr(model, "loss", None)
    loss_name = (loss if isinstance(loss, str) else type(loss).__name__).lower() if loss is not None else ""
    if "categorical" in loss_name:
        return "categorical"
    if "binary" in loss_name:
        return "bernoulli"
    if "mean_squared" in loss_name or "meansquared" in loss_name or loss_name == "mse":
        return "regression"
    raise ValueError(
        f"{fn}: cannot tell the likelihood of model '{model.name}' (no bayesflip head, a linear last layer "
        f"and compiled loss {loss!r}); pass likelihood='categorical', 'bernoulli' or 'regression'."
    )


def check_labels(fn: str, likelihood: str, y: np.ndarray, num_outputs: int, units: int) -> np.ndarray:
    """Labels as float32 in the output space's form: class ids ``(B,)``, 0/1 ``(B, K)``, targets ``(B, units)``."""
    y = np.asarray(y)
    if likelihood == "categorical":
        if y.ndim == 2 and y.shape[1] == num_outputs and y.shape[1] > 1:  # one-hot
            if not np.all((y == 0) | (y == 1)) or not np.all(y.sum(1) == 1):
                raise ValueError(f"{fn}: one-hot labels `y` must have exactly one 1 per row.")
            y = y.argmax(1)
        y = y.reshape(len(y), -1) if y.ndim > 1 else y
        if y.ndim != 1 and y.shape[1] != 1:
            raise ValueError(
                f"{fn}: categorical labels `y` must be class ids (N,) or one-hot (N, {num_outputs}), "
                f"got shape {y.shape}."
            )
        y = y.reshape(-1)
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)) or np.any((y < 0) | (y >= num_outputs)):
            raise ValueError(
                f"{fn}: categorical labels `y` must be integers in [0, {num_outputs}), got values in "
                f"[{y.min()}, {y.max()}]."
            )
        return y.astype("int64")
    y = y.astype("float32").reshape(len(y), -1) if y.ndim != 2 else y.astype("float32")
    if y.shape[1] != units:
        raise ValueError(
            f"{fn}: {likelihood} labels `y` must have shape (N, {units}) to match the model's output, "
            f"got shape {y.shape}."
        )
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{fn}: labels `y` contain NaN or infinite values.")
    if likelihood == "bernoulli" and not np.all((y == 0) | (y == 1)):
        raise ValueError(f"{fn}: bernoulli labels `y` must be 0 or 1, got values in [{y.min()}, {y.max()}].")
    return y


def hetero_scale(f: tf.Tensor, units: int, min_scale: float) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``loc``, ``s = min_scale + softplus(raw)`` and ``s′ = σ(raw)`` of a heteroscedastic Gaussian head."""
    loc, raw = f[:, :units], f[:, units:]
    return loc, min_scale + tf.nn.softplus(raw), tf.sigmoid(raw)


def batch_terms(
    likelihood: str, f: tf.Tensor, y: tf.Tensor, units: int, min_scale: float, curvature: str
) -> tuple[tf.Tensor, tf.Tensor]:
    """Per batch: the log-likelihood terms ``(B,)`` (regression: ``−½ r²`` at ``σ = 1``) and the factor ``L`` ``(B, K, C)``.

    ``curvature="ggn"`` gives the Hessian factor of the table; ``"ef"`` the
    gradient ``e`` as a single column (``Λ = e eᵀ``, the empirical Fisher).
    """
    f = tf.cast(f, tf.float64)
    k = f.shape[-1]
    if likelihood == "categorical":
        logp = tf.nn.log_softmax(f, axis=-1)
        loglik = tf.gather(logp, tf.cast(y, tf.int32), batch_dims=1)
        p = tf.exp(logp)
        if curvature == "ef":
            e = p - tf.one_hot(tf.cast(y, tf.int32), k, dtype=tf.float64)
            return loglik, e[:, :, None]
        sq = tf.sqrt(p)
        return loglik, tf.linalg.diag(sq) - p[:, :, None] * sq[:, None, :]
    y = tf.cast(y, tf.float64)
    if likelihood == "bernoulli":
        loglik = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(y, f), axis=-1)
        p = tf.sigmoid(f)
        if curvature == "ef":
            return loglik, (p - y)[:, :, None]
        return loglik, tf.linalg.diag(tf.sqrt(p * (1.0 - p)))
    if likelihood == "regression":
        r = y - f
        loglik = -0.5 * tf.reduce_sum(tf.square(r), axis=-1)
        if curvature == "ef":
            return loglik, (-r)[:, :, None]
        return loglik, tf.broadcast_to(tf.eye(k, dtype=tf.float64), [tf.shape(f)[0], k, k])
    loc, s, ds = hetero_scale(f, units, min_scale)
    z = (y - loc) / s
    loglik = tf.reduce_sum(-0.5 * tf.square(z) - tf.math.log(s) - 0.5 * math.log(2 * math.pi), axis=-1)
    if curvature == "ef":
        e = tf.concat([-z / s, (1.0 - tf.square(z)) * ds / s], axis=-1)
        return loglik, e[:, :, None]
    return loglik, tf.linalg.diag(tf.concat([1.0 / s, math.sqrt(2.0) * ds / s], axis=-1))


def regression_loglik(num_targets: int, sum_sq: float, sigma: float) -> float:
    """``Σ log N(y | f, σ²)`` from the residual sum of squares over ``num_targets`` target values."""
    return -0.5 * num_targets * math.log(2 * math.pi * sigma**2) - 0.5 * sum_sq / sigma**2

"""Entropy-based uncertainty of classification predictives (pure functions).

:func:`predictive_entropy` (total), :func:`expected_entropy` (aleatoric) and
:func:`mutual_information` (epistemic), with ``H[E_s p_s] = E_s H[p_s] + I``;
entropies in nats. Given a ``tf.Tensor`` they return a ``tf.Tensor`` (usable
inside ``tf.function``); given array-likes, NumPy arrays.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bayesflip._checks import (
    PROBS_ATOL,
    check_on_simplex,
    warn_probabilities_as_logits,
)
from bayesflip._predictive_core import entropy, entropy_decomposition
from bayesflip._typing import ArrayLike


# --------------------------------------------------------------------------- helpers
def _as_float_tensor(fn: str, arg: str, value, min_rank: int) -> tuple[tf.Tensor, bool]:
    """Convert to a float tensor; check rank, emptiness and finiteness (eagerly)."""
    is_tensor = tf.is_tensor(value)
    if not is_tensor:
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{fn}: `{arg}` must be numeric, got dtype {arr.dtype}.")
        value = tf.convert_to_tensor(arr.astype(np.float64) if arr.dtype != np.float32 else arr)
    t = value if value.dtype.is_floating else tf.cast(value, tf.float32)
    rank = t.shape.rank
    if rank is not None and rank < min_rank:
        raise ValueError(f"{fn}: `{arg}` must have rank >= {min_rank}, got shape {tuple(t.shape)}.")
    if rank is not None and any(d == 0 for d in t.shape):
        raise ValueError(f"{fn}: got an empty input (`{arg}` has shape {tuple(t.shape)}).")
    if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(t))):
        raise ValueError(f"{fn}: `{arg}` contains NaN or infinite values.")
    return t, is_tensor


def _probs_and_logp(fn: str, arg: str, value, from_logits: bool, min_rank: int):
    t, is_tensor = _as_float_tensor(fn, arg + (" (logits)" if from_logits else ""), value, min_rank)
    if from_logits:
        if tf.executing_eagerly() and bool(_on_simplex(t)):
            warn_probabilities_as_logits(fn, f"the `{arg}` passed as logits", stacklevel=4)
        logp = tf.nn.log_softmax(t, axis=-1)
        return tf.exp(logp), logp, is_tensor
    if tf.executing_eagerly():
        check_on_simplex(fn, arg, t)
    p = tf.clip_by_value(t, 0.0, 1.0)
    return p, None, is_tensor


def _out(t: tf.Tensor, is_tensor: bool):
    return t if is_tensor else t.numpy()


def _on_simplex(t: tf.Tensor) -> tf.Tensor:
    """Scalar bool: every row of ``t`` (last axis, >= 2 entries) lies on the probability simplex."""
    if t.shape.rank is None or t.shape.rank < 1 or t.shape[-1] is None or t.shape[-1] < 2:
        return tf.constant(False)
    inside = tf.logical_and(tf.reduce_all(t >= -PROBS_ATOL), tf.reduce_all(t <= 1.0 + PROBS_ATOL))
    sums = tf.reduce_all(tf.abs(tf.reduce_sum(t, axis=-1) - 1.0) <= PROBS_ATOL)
    return tf.logical_and(inside, sums)


# --------------------------------------------------------------------------- entropies
def predictive_entropy(probs: ArrayLike, from_logits: bool = False) -> np.ndarray | tf.Tensor:
    """Entropy ``H[p] = −Σ_k p_k log p_k`` over the last axis (total uncertainty of a predictive).

    Args:
        probs: probabilities ``(..., K)`` (e.g. the MC-averaged predictive of
            :func:`mc_predict`), or logits with ``from_logits=True``.
        from_logits: whether ``probs`` holds logits.

    Returns:
        Entropies in nats, shape ``probs.shape[:-1]``.

    Example:
    >>> predictive_entropy([[0.5, 0.5], [1.0, 0.0]]).round(4).tolist()
    [0.6931, 0.0]
    """
    p, logp, is_tensor = _probs_and_logp("predictive_entropy", "probs", probs, from_logits, 1)
    return _out(entropy(p, logp), is_tensor)


def expected_entropy(sample_probs: ArrayLike, from_logits: bool = False) -> np.ndarray | tf.Tensor:
    """Expected entropy ``E_s H[p_s]`` over posterior samples (aleatoric uncertainty).

    Args:
        sample_probs: per-sample probabilities ``(S, N, K)`` (sample axis first,
            as returned by ``mc_predict(..., return_samples=True)``), or logits
            with ``from_logits=True``.
        from_logits: whether ``sample_probs`` holds logits.

    Returns:
        Shape ``(N,)`` (generally ``sample_probs.shape[1:-1]``), in nats.

    Example:
    >>> expected_entropy([[[0.5, 0.5]], [[1.0, 0.0]]]).round(4).tolist()
    [0.3466]
    """
    p, logp, is_tensor = _probs_and_logp("expected_entropy", "sample_probs", sample_probs, from_logits, 2)
    return _out(tf.reduce_mean(entropy(p, logp), axis=0), is_tensor)


def mutual_information(sample_probs: ArrayLike, from_logits: bool = False) -> np.ndarray | tf.Tensor:
    """Mutual information ``I = H[E_s p_s] − E_s H[p_s]`` (epistemic uncertainty, BALD).

    The decomposition ``predictive_entropy(mean) = expected_entropy + mutual_information``
    holds exactly; tiny negative round-off is clipped to 0.

    Args:
        sample_probs: per-sample probabilities ``(S, N, K)``, or logits with
            ``from_logits=True``.
        from_logits: whether ``sample_probs`` holds logits.

    Returns:
        Shape ``(N,)``, in nats, ``>= 0``.

    Example:
    >>> mutual_information([[[1.0, 0.0]], [[0.0, 1.0]]]).round(4).tolist()
    [0.6931]
    """
    p, logp, is_tensor = _probs_and_logp("mutual_information", "sample_probs", sample_probs, from_logits, 2)
    _, _, mi = entropy_decomposition(p, logp)
    return _out(mi, is_tensor)

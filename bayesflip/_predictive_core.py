"""The predictive math, written once: inverse links, entropies, mixture moments and quantiles.

Monte Carlo predictives are equal-weight mixtures of ``T`` posterior draws. This
private module holds every formula that summarises them, for all of
:mod:`bayesflip.uncertainty` (the public functions), :mod:`bayesflip.heads`
(the heads' predictives) and :mod:`bayesflip.serving` (the exported graphs). It
imports neither: it sits below both heads and uncertainty.

- :data:`LINKS`: the inverse links applied to each draw (``"softmax"``, ``"sigmoid"``).
- :func:`entropy`, :func:`entropy_decomposition`: ``H[E_s p_s] = E_s H[p_s] + I`` in nats.
- :func:`component_variance`, :func:`mixture_moments`: the law of total variance of a
  Gaussian or Student-t mixture.
- :func:`mixture_quantile`: quantiles of such a mixture by bisection.
- :class:`RegressionPredictive`: the one regression summary type.

The tensor functions take and return ``tf.Tensor`` (usable inside ``tf.function``
and exported graphs); NumPy callers convert their float64 arrays once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf
from scipy import special, stats

from bayesflip._checks import check_real
from bayesflip._typing import ArrayLike

#: Inverse links applied to each Monte Carlo draw of a model's output (``from_logits``, the heads).
LINKS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "softmax": lambda t: tf.nn.softmax(t, axis=-1),
    "sigmoid": tf.sigmoid,
}


def apply_link(link: str | None, t: tf.Tensor) -> tf.Tensor:
    """``LINKS[link](t)``, or ``t`` unchanged for ``link=None``."""
    return t if link is None else LINKS[link](t)


# --------------------------------------------------------------------------- classification
def entropy(p: tf.Tensor, logp: tf.Tensor | None = None) -> tf.Tensor:
    """``H[p] = −Σ_k p_k log p_k`` over the last axis, in nats, ``>= 0``.

    ``logp`` (``log p``, e.g. a ``log_softmax``) is used when given (exact for
    logits); otherwise ``xlogy(p, p)`` (``0 log 0 = 0``).
    """
    if logp is None:
        h = -tf.reduce_sum(tf.math.xlogy(p, p), axis=-1)
    else:
        h = -tf.reduce_sum(p * logp, axis=-1)
    return tf.maximum(h, 0.0) + 0.0  # entropy >= 0; "+ 0.0" turns -0.0 into 0.0


def bernoulli_as_categorical(p: tf.Tensor) -> tf.Tensor:
    """Per-unit Bernoulli probabilities ``(..., units)`` as two-class rows ``(..., units, 2)``."""
    return tf.stack([1.0 - p, p], axis=-1)


def entropy_decomposition(
    sample_probs: tf.Tensor, sample_logp: tf.Tensor | None = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(predictive entropy, expected entropy, mutual information)`` of draws ``(T, N, ..., K)``.

    ``H[E_s p_s]`` (total), ``E_s H[p_s]`` (aleatoric) and ``I = H[E_s p_s] − E_s H[p_s]``
    (epistemic, BALD; round-off below 0 clipped to 0), each of shape ``(N, ...)``.
    """
    total = entropy(tf.reduce_mean(sample_probs, axis=0))
    expected = tf.reduce_mean(entropy(sample_probs, sample_logp), axis=0)
    return total, expected, tf.maximum(total - expected, 0.0)


# --------------------------------------------------------------------------- regression
def component_variance(scale: tf.Tensor, df: tf.Tensor | None = None) -> tf.Tensor:
    """Variance of each mixture component: ``σ²`` (Gaussian) or ``ν/(ν − 2) · σ²`` (Student-t, ∞ for ``ν ≤ 2``)."""
    var = tf.square(scale)
    if df is None:
        return var
    inf = tf.constant(np.inf, scale.dtype)
    return var * tf.where(df > 2.0, df / tf.maximum(df - 2.0, tf.constant(1e-30, df.dtype)), inf)


def mixture_moments(loc: tf.Tensor, variance: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(mean, total, aleatoric, epistemic)`` of the equal-weight mixture over axis 0.

    Law of total variance: ``mean = E_s μ_s``, ``aleatoric = E_s Var_s``,
    ``epistemic = Var_s μ_s`` (population variance over the draws), ``total =
    aleatoric + epistemic``; components ``(μ_s, Var_s)`` of shape ``(T, N, ...)``.
    """
    mean = tf.reduce_mean(loc, axis=0)
    aleatoric = tf.reduce_mean(variance, axis=0)
    epistemic = tf.reduce_mean(tf.square(loc - mean), axis=0)
    return mean, aleatoric + epistemic, aleatoric, epistemic


def mixture_quantile(mu: np.ndarray, sd: np.ndarray, q: float, df: np.ndarray | None = None) -> np.ndarray:
    """``q``-quantile of the equal-weight mixture (over axis 0) of Gaussian or Student-t (``df``) components.

    Bisection on the mixture CDF to 1e-10 relative width, bracketed by the
    components' own quantiles.
    """
    if df is None:
        z, cdf = special.ndtri(q), special.ndtr
    else:
        z, cdf = special.stdtrit(df, q), lambda t: special.stdtr(df, t)
    lo = np.min(mu + z * sd, axis=0)  # each component's quantile brackets the mixture's
    hi = np.max(mu + z * sd, axis=0)
    lo = lo - 1e-12 * (1 + np.abs(lo))
    hi = hi + 1e-12 * (1 + np.abs(hi))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = np.mean(cdf((mid[None] - mu) / sd), axis=0) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
        if np.all(hi - lo <= 1e-10 * (1 + np.abs(mid))):
            break
    return 0.5 * (lo + hi)


class RegressionPredictive(NamedTuple):
    """Monte Carlo regression predictive: the equal-weight mixture of ``T`` Gaussian or Student-t draws.

    With draws ``(μ_s, σ_s[, ν_s])`` the predictive is ``(1/T) Σ_s p_s`` and its
    variance splits (law of total variance) into ``E_s Var_s`` (aleatoric) and
    ``Var_s μ_s`` (epistemic, population variance over the draws). A component's
    variance is ``σ_s²`` (Gaussian) or ``ν_s/(ν_s − 2) · σ_s²`` (Student-t;
    infinite for ``ν_s ≤ 2``). Arrays are float64 of shape ``(N, ...)``
    (``(N, ..., units)`` for a head). Returned by
    :func:`bayesflip.uncertainty.mc_predict` on a model ending in a Gaussian or
    Student-t head, :func:`bayesflip.heads.predictive` and
    :func:`bayesflip.uncertainty.regression_uncertainty`.
    """

    mean: np.ndarray  #: ``E_s μ_s`` (for Student-t components the mean needs ``ν > 1``)
    total_variance: np.ndarray  #: ``aleatoric + epistemic``
    aleatoric_variance: np.ndarray  #: ``E_s Var[p_s]``
    epistemic_variance: np.ndarray  #: ``Var_s μ_s``
    samples: np.ndarray  #: the draws ``(T, N, ..., 2 | 3)``: ``[μ_s, σ_s(, ν_s)]`` on the last axis

    @classmethod
    def from_draws(cls, samples: np.ndarray) -> RegressionPredictive:
        """The summary of draws ``(T, N, ..., 2 | 3)`` (``[loc, scale(, df)]``; inputs checked by the caller)."""
        s = tf.constant(np.asarray(samples, dtype=np.float64))
        df = s[..., 2] if s.shape[-1] == 3 else None
        moments = mixture_moments(s[..., 0], component_variance(s[..., 1], df))
        mean, total, aleatoric, epistemic = (m.numpy() for m in moments)
        return cls(mean, total, aleatoric, epistemic, samples)

    def _components(self):
        s = np.asarray(self.samples, dtype=np.float64)
        return s[..., 0], s[..., 1], (s[..., 2] if s.shape[-1] == 3 else None)

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Quantile(s) of the mixture predictive (bisection on its CDF to 1e-10 relative width).

        Args:
            q: a probability in ``(0, 1)``, or a sequence of them.

        Returns:
            ``(N, ...)`` for one ``q``; ``(len(q), N, ...)`` for a sequence.
        """
        qs = np.asarray(q, dtype=np.float64)
        if qs.ndim > 1 or qs.size == 0 or not np.all((qs > 0) & (qs < 1)):
            raise ValueError(
                f"RegressionPredictive.quantile: `q` must be in (0, 1) (or a list of such), got {q!r}."
            )
        mu, sd, df = self._components()
        if np.any(sd <= 0):
            raise ValueError(
                f"RegressionPredictive.quantile: every scale must be > 0, got a minimum of {sd.min():.4g}."
            )
        out = [mixture_quantile(mu, sd, float(p), df) for p in np.atleast_1d(qs)]
        return out[0] if qs.ndim == 0 else np.stack(out)

    def log_prob(self, y: ArrayLike) -> np.ndarray:
        """Log density of the mixture predictive at ``y``: ``log (1/T) Σ_s p_s(y)`` per element.

        ``p_s`` is ``N(y | μ_s, σ_s²)`` (Student-t ``t_ν_s(y | μ_s, σ_s)`` for
        Student-t draws). Computed as a log-sum-exp over the draws in float64,
        so it stays finite where every ``p_s(y)`` underflows (a target tens of
        scales from every draw). ``-log_prob(y).mean()`` is the test negative
        log-likelihood of the Monte Carlo predictive.

        Args:
            y: targets of the shape of :attr:`mean`, ``(N, ...)`` (``(N, ..., units)``
                for a head: ``y[:, None]`` for ``units=1``).

        Returns:
            float64 array of the shape of ``y``, in nats.

        Example:
        >>> p = RegressionPredictive.from_draws([[[0.0, 1.0]], [[2.0, 1.0]]])  # two draws, one target
        >>> p.log_prob([1.0]).round(4).tolist()  # log N(1 | 0, 1) = log N(1 | 2, 1)
        [-1.4189]
        >>> p.log_prob([40.0]).round(1).tolist()  # finite where each density underflows
        [-723.6]
        """
        fn = "RegressionPredictive.log_prob"
        yv = np.asarray(y.numpy() if tf.is_tensor(y) else y, dtype=np.float64)
        mu, sd, df = self._components()
        if yv.shape != mu.shape[1:]:
            raise ValueError(
                f"{fn}: `y` must have the shape of `mean` {mu.shape[1:]}, got {yv.shape} "
                "(for a head with units=1 pass `y[:, None]`)."
            )
        if np.any(sd <= 0):
            raise ValueError(f"{fn}: every scale must be > 0, got a minimum of {sd.min():.4g}.")
        if df is None:
            logp = stats.norm.logpdf(yv[None], mu, sd)
        else:
            logp = stats.t.logpdf(yv[None], df, mu, sd)
        return special.logsumexp(logp, axis=0) - np.log(mu.shape[0])

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central prediction interval: the ``(1 − level)/2`` and ``(1 + level)/2`` mixture quantiles.

        Args:
            level: coverage probability in ``(0, 1)``.

        Returns:
            ``(lower, upper)``, each ``(N, ...)``.
        """
        level = check_real("RegressionPredictive.interval", "level", level, low=0, high=1)
        lo, hi = self.quantile([(1 - level) / 2, (1 + level) / 2])
        return lo, hi

"""Monte Carlo predictive summaries: :class:`RegressionPredictive` and :func:`predictive`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from bayesflip._checks import check_real
from bayesflip._typing import ArrayLike
from bayesflip.heads._heads import Head
from bayesflip.uncertainty._regression import _mixture_quantile


class RegressionPredictive(NamedTuple):
    """Monte Carlo predictive of a Gaussian or Student-t head: the equal-weight mixture of ``T`` draws.

    With draws ``(μ_s, σ_s[, ν_s])`` the predictive is ``(1/T) Σ_s p_s`` and its
    variance splits (law of total variance) into ``E_s Var_s`` (aleatoric) and
    ``Var_s μ_s`` (epistemic, population variance over the draws). A component's
    variance is ``σ_s²`` (Gaussian) or ``ν_s/(ν_s − 2) · σ_s²`` (Student-t;
    infinite for ``ν_s ≤ 2``). Arrays are float64 of shape ``(N, ..., units)``.
    """

    mean: np.ndarray  #: ``E_s μ_s`` (for Student-t components the mean needs ``ν > 1``)
    total_variance: np.ndarray  #: ``aleatoric + epistemic``
    aleatoric_variance: np.ndarray  #: ``E_s Var[p_s]``
    epistemic_variance: np.ndarray  #: ``Var_s μ_s``
    samples: np.ndarray  #: the raw head outputs, ``(T, N, ..., units, 2 | 3)``

    def _components(self):
        s = np.asarray(self.samples, dtype=np.float64)
        return s[..., 0], s[..., 1], (s[..., 2] if s.shape[-1] == 3 else None)

    def quantile(self, q: float | Sequence[float]) -> np.ndarray:
        """Quantile(s) of the mixture predictive (bisection on its CDF to 1e-10 relative width).

        Args:
            q: a probability in ``(0, 1)``, or a sequence of them.

        Returns:
            ``(N, ..., units)`` for one ``q``; ``(len(q), N, ..., units)`` for a sequence.
        """
        qs = np.asarray(q, dtype=np.float64)
        if qs.ndim > 1 or qs.size == 0 or not np.all((qs > 0) & (qs < 1)):
            raise ValueError(
                f"RegressionPredictive.quantile: `q` must be in (0, 1) (or a list of such), got {q!r}."
            )
        mu, sd, df = self._components()
        out = [_mixture_quantile(mu, sd, float(p), df) for p in np.atleast_1d(qs)]
        return out[0] if qs.ndim == 0 else np.stack(out)

    def interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central prediction interval: the ``(1 − level)/2`` and ``(1 + level)/2`` mixture quantiles.

        Args:
            level: coverage probability in ``(0, 1)``.

        Returns:
            ``(lower, upper)``, each ``(N, ..., units)``.
        """
        level = check_real("RegressionPredictive.interval", "level", level, low=0, high=1)
        lo, hi = self.quantile([(1 - level) / 2, (1 + level) / 2])
        return lo, hi


def _regression_predictive(owner: str, samples, num_params: int) -> RegressionPredictive:
    s = np.asarray(samples.numpy() if tf.is_tensor(samples) else samples)
    if s.ndim < 4 or s.shape[-1] != num_params:
        raise ValueError(
            f"{owner}: expected MC draws of the head's output with shape "
            f"(num_samples, N, ..., units, {num_params}), "
            f"got shape {s.shape}."
        )
    s64 = s.astype(np.float64)
    if not np.all(np.isfinite(s64)):
        raise ValueError(f"{owner}: the draws contain NaN or infinite values.")
    loc, scale = s64[..., 0], s64[..., 1]
    if np.any(scale <= 0):
        raise ValueError(f"{owner}: every scale must be > 0, got a minimum of {scale.min():.4g}.")
    var = scale**2
    if num_params == 3:
        df = s64[..., 2]
        factor = np.full_like(df, np.inf)
        np.divide(df, df - 2.0, out=factor, where=df > 2.0)
        var = var * factor
    aleatoric = var.mean(axis=0)
    epistemic = loc.var(axis=0)
    return RegressionPredictive(loc.mean(axis=0), aleatoric + epistemic, aleatoric, epistemic, s)


# --------------------------------------------------------------------------- functions
def output_head(model: keras.layers.Layer) -> Head | None:
    """The head that produces ``model``'s single output, or ``None``.

    A head itself, the last layer of a ``Sequential`` (recursively), or the
    layer producing the one output of a functional model. Multi-output and
    subclassed models give ``None``.

    Args:
        model: a Keras layer or model.

    Returns:
        The :class:`Head`, or ``None``.

    Example:
    >>> import keras
    >>> from bayesflip.heads import GaussianHead
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), GaussianHead()])
    >>> type(output_head(model)).__name__
    'GaussianHead'
    """
    if isinstance(model, Head):
        return model
    if isinstance(model, keras.Sequential):
        return output_head(model.layers[-1]) if model.layers else None
    if isinstance(model, keras.Model):
        try:
            outputs = model.outputs
        except (AttributeError, ValueError):
            return None
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 1:
            return None
        history = getattr(outputs[0], "_keras_history", None)
        layer = getattr(history, "operation", None) if history is not None else None
        if isinstance(layer, keras.layers.Layer) and layer is not model:
            return output_head(layer)
    return None


def predictive(
    model_or_head: keras.layers.Layer, sample_params: ArrayLike, return_samples: bool = False
) -> RegressionPredictive | np.ndarray:
    """Reduce Monte Carlo draws of a head's output to its predictive.

    Args:
        model_or_head: a :class:`Head`, or a model whose output layer is one
            (see :func:`output_head`).
        sample_params: ``T`` draws of the head's output, sample axis first:
            ``(T, N, ..., units, 2 | 3)`` for Gaussian/Student-t heads, logits
            ``(T, N, ..., K)`` for categorical/Bernoulli heads (e.g.
            ``mc_predict(model, x, return_samples=True)`` of a model without the
            head reduction, or a stack of ``model(x)`` calls).
        return_samples: classification heads only: return the per-draw
            probabilities ``(T, N, ...)`` instead of their mean.

    Returns:
        Gaussian/Student-t: :class:`RegressionPredictive`. Categorical/Bernoulli:
        float32 probabilities ``(N, ..., K)``, the mean over draws of the
        per-draw softmax/sigmoid (``(T, N, ..., K)`` with ``return_samples``).

    Example:
    >>> import numpy as np
    >>> from bayesflip.heads import CategoricalHead, GaussianHead
    >>> draws = np.array([[[[0.0, 1.0]]], [[[2.0, 1.0]]]])   # T=2, N=1, units=1: (loc, scale)
    >>> p = predictive(GaussianHead(), draws)
    >>> p.mean.tolist(), p.aleatoric_variance.tolist(), p.epistemic_variance.tolist()
    ([[1.0]], [[1.0]], [[1.0]])
    >>> predictive(CategoricalHead(), np.zeros((4, 1, 2))).tolist()
    [[0.5, 0.5]]
    """
    head = output_head(model_or_head) if isinstance(model_or_head, keras.layers.Layer) else None
    if head is None:
        what = (
            f"{type(model_or_head).__name__} '{model_or_head.name}'"
            if isinstance(model_or_head, keras.layers.Layer)
            else repr(type(model_or_head).__name__)
        )
        raise ValueError(
            f"predictive: `model_or_head` must be a likelihood head or a model whose single output "
            f"layer is one, "
            f"got {what}."
        )
    return head._predictive(sample_params, bool(return_samples))

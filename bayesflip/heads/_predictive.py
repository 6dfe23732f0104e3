"""The head of a model (:func:`output_head`) and the reduction of its draws (:func:`predictive`).

The regression summary type, :class:`~bayesflip.heads.RegressionPredictive`, and its math live in
the shared predictive core (``bayesflip._predictive_core``), below heads and uncertainty.
"""

from __future__ import annotations

import keras
import numpy as np

from bayesflip import _keras_compat
from bayesflip._predictive_core import RegressionPredictive
from bayesflip._typing import ArrayLike
from bayesflip.heads._heads import Head


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
        layer = _keras_compat.keras_history_operation(outputs[0])
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
    return head.predictive(sample_params, bool(return_samples))

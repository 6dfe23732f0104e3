"""Checks of a variational layer's arguments, and the warning for an unset KL weight."""

from __future__ import annotations

import warnings
import weakref
from typing import TYPE_CHECKING

import tensorflow as tf

from bayesflip._checks import is_real

if TYPE_CHECKING:
    from bayesflip.layers._variational import VariationalLayer

__all__ = ["check_kl_weight"]


def _check_estimator(owner: str, estimator: str, supported: tuple[str, ...]) -> str:
    if not isinstance(estimator, str) or estimator not in supported:
        raise ValueError(f"{owner}: unknown estimator {estimator!r}; expected one of {list(supported)}.")
    return estimator


def _check_scale(owner: str, init_scale, min_scale) -> tuple[float, float]:
    for name, v in (("init_scale", init_scale), ("min_scale", min_scale)):
        if not is_real(v):
            raise TypeError(f"{owner}: `{name}` must be a number, got {v!r}.")
    if not min_scale >= 0:
        raise ValueError(f"{owner}: `min_scale` must be >= 0, got {min_scale!r}.")
    if not init_scale > min_scale or init_scale == float("inf"):
        raise ValueError(
            f"{owner}: `init_scale` must be finite and greater than `min_scale`={min_scale}, "
            f"got {init_scale!r}."
        )
    return float(init_scale), float(min_scale)


def check_kl_weight(owner: str, kl_weight) -> float:
    if not is_real(kl_weight):
        try:
            kl_weight = float(kl_weight)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: `kl_weight` must be a number, got {kl_weight!r}.") from None
    if not (kl_weight >= 0 and kl_weight != float("inf")):
        raise ValueError(f"{owner}: `kl_weight` must be a finite number >= 0, got {kl_weight!r}.")
    return float(kl_weight)


# One warning per traced training function (all layers of a model share the
# trace); a layer seen once stays quiet (a retrace, e.g. for the last partial
# batch, warns no more).
_WARNED_GRAPHS: weakref.WeakSet = weakref.WeakSet()
_WARNED_LAYERS: weakref.WeakSet = weakref.WeakSet()


def _warn_when_differentiated(kl: tf.Tensor, layer: VariationalLayer) -> tf.Tensor:
    """``kl`` unchanged, but the first gradient taken through it warns that its weight is unset.

    The backward function runs when a gradient of the loss is built — at the
    first training step of ``model.fit`` (traced once) or of any custom loop —
    and never in prediction, so the warning appears exactly when an unset KL
    weight starts to shape the posterior.
    """

    @tf.custom_gradient
    def identity(t):
        def grad(upstream):
            graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
            quiet = layer in _WARNED_LAYERS or graph in _WARNED_GRAPHS
            _WARNED_LAYERS.add(layer)
            if graph is not None:
                _WARNED_GRAPHS.add(graph)
            if not quiet:
                warnings.warn(
                    f"{layer._owner}: training with an unset KL weight, so the KL term is weighted 1.0 as if the "
                    "data set had one example; the posterior is then pulled to the prior and the model "
                    "can train to chance. Call `bayesflip.set_kl_weight(model, num_examples=len(x_train))` "
                    "before `fit` (the per-example negative ELBO), or pass `kl_weight=` to the layer "
                    "(`kl_weight=1.0` to keep the unscaled KL without this warning).",
                    UserWarning,
                    stacklevel=2,
                )
            return upstream

        return tf.identity(t), grad

    return identity(kl)

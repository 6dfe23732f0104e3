"""Variational Keras layers.

Every layer computes something linear in its weights and draws a posterior sample of
them in each forward pass (the family is chosen with ``posterior=``, see
:mod:`bayesflip.posteriors`); :class:`VariationalLayer` is their base class, for
writing a new variational layer.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from bayesflip.layers._variational import VariationalLayer
from bayesflip.layers.conv import Conv1DFlipout, Conv2DFlipout, Conv3DFlipout
from bayesflip.layers.conv_depthwise import (
    DepthwiseConv1DFlipout,
    DepthwiseConv2DFlipout,
    SeparableConv1DFlipout,
    SeparableConv2DFlipout,
)
from bayesflip.layers.conv_transpose import (
    Conv1DTransposeFlipout,
    Conv2DTransposeFlipout,
    Conv3DTransposeFlipout,
)
from bayesflip.layers.dense import DenseFlipout, DenseLocalReparameterization, DenseReparameterization
from bayesflip.layers.embedding import EmbeddingFlipout
from bayesflip.layers.recurrent import GRUFlipout, LSTMFlipout
from bayesflip.layers.recurrent_cells import GRUFlipoutCell, LSTMFlipoutCell

__all__ = [
    "VariationalLayer",
    "DenseFlipout",
    "DenseReparameterization",
    "DenseLocalReparameterization",
    "Conv1DFlipout",
    "Conv2DFlipout",
    "Conv3DFlipout",
    "Conv1DTransposeFlipout",
    "Conv2DTransposeFlipout",
    "Conv3DTransposeFlipout",
    "DepthwiseConv1DFlipout",
    "DepthwiseConv2DFlipout",
    "SeparableConv1DFlipout",
    "SeparableConv2DFlipout",
    "LSTMFlipout",
    "GRUFlipout",
    "LSTMFlipoutCell",
    "GRUFlipoutCell",
    "EmbeddingFlipout",
]

# Names this module used to export: (module that holds them now, what to do instead).
_MOVED = {
    "GaussianPosterior": ("bayesflip.posteriors", "import it from bayesflip.posteriors"),
    "ESTIMATORS": (
        "bayesflip.layers._estimators",
        "the estimators are 'flipout', 'shared' and 'local' (a layer's `estimator=`)",
    ),
    "LinearSample": ("bayesflip.layers._estimators", "it is an internal of the variational core"),
    "Perturbation": ("bayesflip.layers._estimators", "it is an internal of the variational core"),
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        module, advice = _MOVED[name]
        warnings.warn(
            f"bayesflip.layers.{name} is deprecated and will be removed: {advice}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

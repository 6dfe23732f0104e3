"""Variational Keras layers."""

from bayesflip.layers._variational import (
    ESTIMATORS,
    GaussianPosterior,
    LinearSample,
    Perturbation,
    VariationalLayer,
)
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
    "ESTIMATORS",
    "GaussianPosterior",
    "LinearSample",
    "Perturbation",
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

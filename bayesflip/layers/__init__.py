"""Variational Keras layers."""

from bayesflip.layers._variational import ESTIMATORS, GaussianPosterior, VariationalLayer
from bayesflip.layers.dense import DenseFlipout, DenseLocalReparameterization, DenseReparameterization

__all__ = [
    "ESTIMATORS",
    "GaussianPosterior",
    "VariationalLayer",
    "DenseFlipout",
    "DenseReparameterization",
    "DenseLocalReparameterization",
]

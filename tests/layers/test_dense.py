"""DenseFlipout / DenseReparameterization / DenseLocalReparameterization."""

import numpy as np
import pytest

from bayesflip.layers import DenseFlipout, DenseLocalReparameterization, DenseReparameterization
from tests.layers.helpers import check_variational_layer


@pytest.mark.parametrize("cls", [DenseFlipout, DenseReparameterization, DenseLocalReparameterization])
@pytest.mark.parametrize("bayesian_bias", [False, True])
def test_shared_layer_checks(cls, bayesian_bias):
    check_variational_layer(
        lambda **kw: cls(4, activation="relu", bayesian_bias=bayesian_bias, **kw), (6, 3)
    )


def test_rank3_inputs():
    check_variational_layer(lambda **kw: DenseFlipout(5, **kw), (4, 7, 3))

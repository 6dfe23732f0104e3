"""The base class of the priors (exported by ``bayesflip.priors``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from bayesflip._tfp import tfd

_PACKAGE = "bayesflip"


class Prior:
    """Base class: a factory of a weight's prior distribution.

    Subclasses implement :meth:`distribution` and ``get_config``, and are
    registered with ``keras.saving.register_keras_serializable`` so that models
    holding them load with ``safe_mode=True``.
    """

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        """Return a distribution whose ``batch_shape`` is ``shape``."""
        raise NotImplementedError

    def build(self, layer: keras.layers.Layer, shape: Sequence[int], name: str) -> Prior | None:
        """Create any variables of the prior on ``layer`` (learnable priors).

        Called once per Bayesian weight ``name`` of ``layer``. A prior with
        per-weight state returns a prior bound to that state, which the
        weight's posterior then uses; stateless priors return ``None``.
        """
        return None

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:  # pragma: no cover - priors are small value objects
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

"""Variational embedding layer.

An embedding lookup is the linear op ``one_hot(ids) @ W``. Its flipout
perturbation for example ``b`` is ``ΔW[id] ∘ R_b`` with one random-sign vector
``R_b`` over the embedding dimension per example (shared by all positions of
the example): the input-side signs of flipout would only flip whole rows of
``ΔW`` and add nothing for one-hot inputs, so they are not drawn. Each
example's perturbation is marginally ``N(0, scale²)`` per row, and two examples
of a batch are uncorrelated (``E[R_b R_b'] = 0``); a token repeated inside one
example sees the same weight row, as it should.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bayesflip._checks import check_positive_int
from bayesflip.layers._variational import VariationalLayer
from bayesflip.posteriors import PosteriorFamily
from bayesflip.priors import Prior

__all__ = ["EmbeddingFlipout"]


def _lookup(ids: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
    """The embedding lookup as a linear op in the table: ``one_hot(ids) @ table``."""
    return tf.gather(table, ids)


@keras.saving.register_keras_serializable(package="bayesflip")
class EmbeddingFlipout(VariationalLayer):
    """Embedding with a posterior over its table.

    Maps integer ids ``(batch, ...)`` to vectors ``(batch, ..., output_dim)``, looked up in
    a table drawn from the layer's posterior (:mod:`bayesflip.posteriors`; default the
    mean-field Gaussian) in every forward pass (see the module docstring for the flipout
    form); :func:`bayesflip.posterior_mean` gives the lookup in the posterior mean, equal
    to ``keras.layers.Embedding`` with the same table.

    Args:
        input_dim: vocabulary size (ids lie in ``[0, input_dim)``).
        output_dim: embedding dimension.
        embeddings_initializer: initializer of the table's posterior mean.
        mask_zero: whether id 0 is padding (the layer then returns a mask, as
            ``keras.layers.Embedding`` does).
        estimator: ``"flipout"`` (default: every example its own pseudo-independent
            perturbation) or ``"shared"`` (one weight draw for the whole batch).
        posterior: the posterior family of the table (:mod:`bayesflip.posteriors`):
            ``None`` or ``"gaussian"`` (default, mean-field Gaussian ``N(θ, σ²)``),
            ``GaussianDropConnect(rate=p)``, ``"variational_dropout"``, any
            :class:`~bayesflip.posteriors.PosteriorFamily` or its config.
        prior: prior of the table (a :mod:`bayesflip.priors` object, its name or its
            config; default ``Normal(0, 1)``). Gaussian family only.
        init_scale: posterior standard deviation at initialisation (Gaussian family).
        min_scale: floor of the posterior standard deviation (Gaussian family).
        kl_weight: factor of the KL term the layer adds with ``add_loss``, usually
            ``1 / num_training_examples`` (:func:`bayesflip.set_kl_weight`); ``None``
            leaves it unset (weight 1.0, with a warning at the first training step).
        seed: seed of the layer's random stream (saved with the model); ``None`` draws one.
        **kwargs: base ``keras.layers.Layer`` arguments (``name``, ``dtype``, ``trainable``).

    Input shape:
        Integer ids ``(batch_size, ...)``, typically ``(batch_size, sequence_length)``.

    Output shape:
        ``(batch_size, ..., output_dim)``.

    Call arguments:
        inputs: the ids (integers; floats are cast); every call draws a new posterior sample.

    Example:
    >>> import numpy as np
    >>> layer = EmbeddingFlipout(10, 3, mask_zero=True, seed=0)
    >>> layer(np.array([[1, 2, 0]])).shape
    TensorShape([1, 3, 3])
    """

    supported_estimators = ("flipout", "shared")
    accepts_per_example_posteriors = False  # a lookup table, not one linear op per call
    weight_slots = ("embeddings",)

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: str | keras.initializers.Initializer = "uniform",
        mask_zero: bool = False,
        estimator: str = "flipout",
        posterior: PosteriorFamily | str | dict | None = None,
        prior: Prior | str | dict | None = None,
        init_scale: float = 1e-2,
        min_scale: float = 1e-6,
        kl_weight: float | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(
            estimator=estimator,
            posterior=posterior,
            prior=prior,
            init_scale=init_scale,
            min_scale=min_scale,
            kl_weight=kl_weight,
            seed=seed,
            **kwargs,
        )
        self.input_dim = check_positive_int(self._owner, "input_dim", input_dim)
        self.output_dim = check_positive_int(self._owner, "output_dim", output_dim)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero

    def build(self, input_shape: tuple | None = None) -> None:
        self.embeddings_posterior = self.add_posterior(
            "embeddings", (self.input_dim, self.output_dim), self.embeddings_initializer
        )
        self.build_variational_state()

    def _ids(self, inputs) -> tf.Tensor:
        ids = inputs if tf.is_tensor(inputs) else tf.convert_to_tensor(inputs)
        dtype = tf.as_dtype(ids.dtype)
        if dtype.is_floating:
            ids = tf.cast(ids, tf.int32)
        elif not dtype.is_integer:
            raise TypeError(f"{self._owner} expects integer ids, got dtype {dtype.name}.")
        if ids.shape.rank is not None and ids.shape.rank < 1:
            raise ValueError(f"{self._owner} expects ids of shape (batch, ...), got a scalar.")
        return ids

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        ids = self._ids(inputs)
        pert = self.begin_forward(tf.shape(ids)[0], [self.output_dim])
        table = self.linear_sample(pert, self.embeddings_posterior, signs=(None, 0))
        return table(_lookup, ids)

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor | None:
        if not self.mask_zero:
            return None
        return keras.ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
                "mask_zero": self.mask_zero,
            }
        )
        return config

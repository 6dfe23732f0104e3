"""Rank-1 factors with a mixture posterior (Dusenberry et al., ICML 2020).

A weight is ``W ∘ (s rᵀ)``: one shared point-estimate weight ``W`` and, per
mixture component ``k``, two vectors with factorised Gaussian posteriors, ``s_k``
over the input channels and ``r_k`` over the output channels. Since the weight
is linear in ``W``, ``op(x, W ∘ (s rᵀ)) = op(x ∘ s, W) ∘ r``: a draw is two
element-wise products around the deterministic op, so every example gets its own
exact, independent draw of ``(s, r)`` at the cost of one op (no flipout signs
are needed, and none are drawn).

The component an example goes through is ``(position in the batch + the call's
counter) mod K``. Every layer of a forward pass reads the same counter (each
advances its RNG state once per call), so one example goes through the same
component ``k`` in every layer — the ``k``-th member of an implicit ensemble —
and ``K`` consecutive calls (``mc_predict``'s draws) visit every component once
per example. Component ``k`` of two layers belong together as long as the layers
are called equally often; a layer called alone (say, once to inspect it) only
relabels which of its components pairs with which elsewhere, once and for good.
"""

from __future__ import annotations

import random as python_random
from typing import Any

import keras
import tensorflow as tf

from bayesflip import random as rnd
from bayesflip._checks import check_positive_int, check_real
from bayesflip.posteriors._gaussian import ExampleFactors, WeightPosterior
from bayesflip.priors import Normal

_PACKAGE = "bayesflip"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RandomSignInitializer(keras.initializers.Initializer):
    """Means of rank-1 factors: ``±1`` at random, or ``N(1, σ²)`` (Edward2's ``random_sign_init``).

    Args:
        random_sign_init: ``p > 0``: each entry is ``+1`` with probability ``p``,
            else ``−1`` (``0.5``: balanced signs); ``p < 0``: ``N(1, p²)``;
            ``0``: all ones.
        seed: seed of the draw (``None``: one drawn from Python's ``random`` at
            construction, as Keras' random initializers do, so that
            ``keras.utils.set_random_seed`` makes it reproducible).

    Example:
    >>> import numpy as np
    >>> v = RandomSignInitializer(0.5, seed=0)((4, 1000)).numpy()
    >>> sorted(np.unique(v).tolist())
    [-1.0, 1.0]
    """

    def __init__(self, random_sign_init: float = 0.5, seed: int | None = None):
        self.random_sign_init = _check_random_sign_init("RandomSignInitializer", random_sign_init)
        self.seed = seed
        self._draw_seed = seed if seed is not None else python_random.randint(1, int(1e9))

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dtype = dtype or "float32"
        p = self.random_sign_init
        seed = self._draw_seed
        if p > 0:
            u = keras.random.uniform(shape, dtype=dtype, seed=seed)
            return keras.ops.where(u < p, 1.0, -1.0)
        if p < 0:
            return keras.random.normal(shape, mean=1.0, stddev=-p, dtype=dtype, seed=seed)
        return keras.ops.ones(shape, dtype=dtype)

    def get_config(self) -> dict:
        return {"random_sign_init": self.random_sign_init, "seed": self.seed}


class Rank1Posterior(WeightPosterior):
    """Rank-1 mixture posterior of one kernel: ``W ∘ (s rᵀ)``, ``(s, r) ~ (1/K) Σ_k N(·) N(·)``.

    Holds (as variables of ``layer``) the point estimate ``W`` (``{name}``,
    the kernel's shape), per component the factor means and pre-softplus scales
    ``{name}_s_loc``/``{name}_s_rho`` ``(K, in)`` and ``{name}_r_loc``/``{name}_r_rho``
    ``(K, out)``, and optionally a bias per component ``{name}_component_bias``
    ``(K, out)`` (an offset on the layer's own bias).

    The KL is ``(1/K) Σ_k KL(q_k ‖ p)`` over the factors (an upper bound on the
    mixture's KL, by convexity, so the ELBO stays a bound); ``W`` has no prior.
    """

    per_example = True
    kl_needs_sample = False

    def __init__(
        self,
        layer,
        name: str,
        shape,
        loc_initializer,
        output_axis: int,
        num_components: int,
        prior: Normal,
        random_sign_init: float,
        component_bias: bool,
        init_scale: float,
        min_scale: float,
    ):
        owner = getattr(layer, "_owner", type(layer).__name__)
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"{owner}: the rank-1 posterior applies to kernels (rank >= 2), not to '{name}' of shape "
                f"{shape}; use bayesian_bias=False (each component has its own bias already)."
            )
        output_axis = output_axis % len(shape)
        if output_axis not in (len(shape) - 1, len(shape) - 2):
            raise ValueError(
                f"{owner}: output_axis must be one of the kernel's last two axes, got {output_axis}."
            )
        self.name = name
        self.shape = shape
        self.min_scale = float(min_scale)
        self.num_components = int(num_components)
        self.output_axis = output_axis
        self.input_axis = len(shape) - 1 if output_axis == len(shape) - 2 else len(shape) - 2
        self.prior = prior
        k = self.num_components
        in_dim, out_dim = shape[self.input_axis], shape[output_axis]
        rho_init = keras.initializers.Constant(rnd.softplus_inverse(init_scale - min_scale))

        def add(suffix, shape_, initializer):
            return layer.add_weight(
                name=f"{name}{suffix}", shape=shape_, initializer=initializer, trainable=True, autocast=False
            )

        self.loc = add("", shape, loc_initializer)
        self.s_loc = add("_s_loc", (k, in_dim), RandomSignInitializer(random_sign_init))
        self.s_rho = add("_s_rho", (k, in_dim), rho_init)
        self.r_loc = add("_r_loc", (k, out_dim), RandomSignInitializer(random_sign_init))
        self.r_rho = add("_r_rho", (k, out_dim), rho_init)
        self.component_bias = add("_component_bias", (k, out_dim), "zeros") if component_bias else None

    # ----------------------------------------------------------------- parts
    def _read(self, variable) -> tf.Tensor:
        return tf.convert_to_tensor(variable.value, tf.float32)

    def factor_scales(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Posterior standard deviations of ``s`` ``(K, in)`` and ``r`` ``(K, out)``, float32."""
        return (
            self.min_scale + tf.nn.softplus(self._read(self.s_rho)),
            self.min_scale + tf.nn.softplus(self._read(self.r_rho)),
        )

    def _as_kernel(self, matrix: tf.Tensor) -> tf.Tensor:
        """An ``(in, out)`` matrix laid out along the kernel's input/output axes (broadcastable)."""
        if self.output_axis < self.input_axis:
            matrix = tf.transpose(matrix)
        return matrix

    # ------------------------------------------------- the core's questions
    def mean(self) -> tf.Tensor:
        """``E[W ∘ (s rᵀ)] = W ∘ (1/K) Σ_k s̄_k r̄_kᵀ``, float32 (also the posterior-mean weight)."""
        s_loc, r_loc = self._read(self.s_loc), self._read(self.r_loc)
        modulation = tf.matmul(s_loc, r_loc, transpose_a=True) / float(self.num_components)
        return self._read(self.loc) * self._as_kernel(modulation)

    def mean_output_offset(self) -> tf.Tensor | None:
        if self.component_bias is None:
            return None
        return tf.reduce_mean(self._read(self.component_bias), axis=0)

    def components(self, batch_size: Any, counter: tf.Tensor) -> tf.Tensor:
        """Component of each example of a call: ``(position + counter) mod K``, int32 ``(batch,)``."""
        positions = tf.range(tf.cast(batch_size, tf.int64), dtype=tf.int64)
        return tf.cast(
            tf.math.floormod(positions + tf.cast(counter, tf.int64), self.num_components), tf.int32
        )

    def sample_factors(
        self, batch_size: Any, seed: tf.Tensor, counter: tf.Tensor, independent: bool
    ) -> ExampleFactors:
        comp = self.components(batch_size, counter)
        s_seed, r_seed = rnd.split_seed(seed, 2)
        s_scale, r_scale = self.factor_scales()
        s_loc, r_loc = self._read(self.s_loc), self._read(self.r_loc)
        if independent:  # a fresh draw per example
            n = tf.cast(batch_size, tf.int32)
            s = tf.gather(s_loc, comp) + tf.gather(s_scale, comp) * rnd.standard_normal(
                tf.stack([n, s_loc.shape[1]]), s_seed
            )
            r = tf.gather(r_loc, comp) + tf.gather(r_scale, comp) * rnd.standard_normal(
                tf.stack([n, r_loc.shape[1]]), r_seed
            )
        else:  # one draw per component, shared by its examples
            s = tf.gather(s_loc + s_scale * rnd.standard_normal(s_loc.shape, s_seed), comp)
            r = tf.gather(r_loc + r_scale * rnd.standard_normal(r_loc.shape, r_seed), comp)
        bias = None if self.component_bias is None else tf.gather(self._read(self.component_bias), comp)
        return ExampleFactors(weight=self._read(self.loc), inputs=s, outputs=r, bias=bias)

    def noise_scale(self) -> tf.Tensor:
        raise NotImplementedError(
            "Rank1Posterior draws per-example factors; it has no per-weight noise scale (see factor_scales)."
        )

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``(1/K) Σ_k [KL(q(s_k) ‖ p) + KL(q(r_k) ‖ p)]``, float32, analytic."""
        s_scale, r_scale = self.factor_scales()
        total = self.prior.kl_from_normal(self._read(self.s_loc), s_scale) + self.prior.kl_from_normal(
            self._read(self.r_loc), r_scale
        )
        return total / float(self.num_components)


def _check_random_sign_init(who: str, value: Any) -> float:
    return check_real(
        who,
        "random_sign_init",
        value,
        high=1.0 + 1e-12,
        what="a number <= 1 (> 0: the probability of +1; < 0: minus the init standard deviation)",
    )


def tile_for_components(dataset: tf.data.Dataset, num_components: int) -> tf.data.Dataset:
    """Repeat every example of each batch ``num_components`` times in a row: the rank-1 training recipe.

    A rank-1 layer sends the example at position ``i`` of a batch through
    component ``(i + counter) mod K``; ``K`` consecutive copies of an example
    therefore go through every component once, so every component is trained on
    every example (Dusenberry et al. 2020 tile the batch ``K`` times for this).
    Without it each example trains one component per step. Every tensor of the
    batch (inputs, labels, sample weights) is repeated alike; batch after
    ``dataset.batch`` (and shuffle before it).

    Args:
        dataset: a batched ``tf.data.Dataset``.
        num_components: ``K`` of the layers' :class:`~bayesflip.posteriors.Rank1` family.

    Returns:
        The dataset with batches ``K`` times as large.

    Example:
    >>> ds = tf.data.Dataset.from_tensor_slices(([1.0, 2.0], [0, 1])).batch(2)
    >>> x, y = next(iter(tile_for_components(ds, 3)))
    >>> x.numpy().tolist(), y.numpy().tolist()
    ([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], [0, 0, 0, 1, 1, 1])
    """
    k = check_positive_int("tile_for_components", "num_components", num_components)
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(
            f"tile_for_components: `dataset` must be a batched tf.data.Dataset, got {type(dataset).__name__}."
        )

    def repeat(*batch):
        tiled = tf.nest.map_structure(lambda t: tf.repeat(t, k, axis=0), batch)
        return tiled[0] if len(tiled) == 1 else tiled

    return dataset.map(repeat)

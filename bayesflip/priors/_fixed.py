"""Priors with fixed parameters: ``Normal`` (with its closed-form KL), ``ScaleMixtureNormal``,
``TFPPrior`` and its ``Laplace`` and ``StudentT`` (re-exported by ``bayesflip.priors``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from bayesflip._checks import check_real
from bayesflip._tfp import tfd
from bayesflip.priors._base import _PACKAGE, Prior


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Normal(Prior):
    """Fully factorized Gaussian prior ``N(loc, scale²)`` on every weight.

    KL against the Gaussian posterior is analytic.

    Args:
        loc: prior mean.
        scale: prior standard deviation (> 0).

    Example:
    >>> Normal(0.0, 1.0).distribution([2, 3]).batch_shape
    TensorShape([2, 3])
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        self.loc = check_real("Normal prior", "loc", loc)
        self.scale = check_real("Normal prior", "scale", scale, low=0)

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        loc = tf.fill(shape, tf.constant(self.loc, dtype))
        return tfd.Normal(loc=loc, scale=tf.constant(self.scale, dtype))

    def kl_from_normal(self, loc: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
        """``sum KL(N(loc, scale²) ‖ self)`` over all elements.

        The closed form of ``tfd.kl_divergence`` for this pair (tested against
        it, values and gradients), with a hand-written gradient: it runs on every
        training step, and this keeps the op count low and no weight-sized
        temporaries alive until the backward pass.
        """
        return _normal_kl_sum(loc, scale, self.loc, self.scale)

    def kl_from_normal_gradient(
        self, loc: tf.Tensor, scale: tf.Tensor, upstream: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """``upstream`` times the gradient of :meth:`kl_from_normal` w.r.t. ``loc`` and ``scale``.

        The formula of its hand-written gradient, for a caller that fuses the
        KL with its own op and recomputes ``scale`` in the backward pass
        (:class:`~bayesflip.posteriors.GaussianPosterior`).
        """
        return _normal_kl_gradient(loc, scale, upstream, self.loc, self.scale)

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "scale": self.scale}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaleMixtureNormal(Prior):
    """Scale mixture of two zero-mean Gaussians (Blundell et al., 2015).

    ``p(w) = pi · N(0, scale_1²) + (1 - pi) · N(0, scale_2²)``; typically
    ``scale_1 > scale_2`` gives a heavy-tailed prior with a spike at zero. No
    analytic KL exists against a Gaussian posterior, so the KL term is a
    (unbiased) Monte Carlo estimate.

    Args:
        pi: mixture weight of the first component, in (0, 1).
        scale_1: standard deviation of the first component (> 0).
        scale_2: standard deviation of the second component (> 0).

    Example:
    >>> p = ScaleMixtureNormal(0.5, 1.0, 0.0025)
    >>> float(p.distribution([1]).log_prob([0.0])[0]) > 0
    True
    """

    def __init__(self, pi: float = 0.5, scale_1: float = 1.0, scale_2: float = 0.0025):
        pi = check_real("ScaleMixtureNormal prior", "pi", pi)
        if not 0.0 < pi < 1.0:
            raise ValueError(f"ScaleMixtureNormal prior: `pi` must lie in (0, 1), got {pi!r}.")
        self.pi = pi
        self.scale_1 = check_real("ScaleMixtureNormal prior", "scale_1", scale_1, low=0)
        self.scale_2 = check_real("ScaleMixtureNormal prior", "scale_2", scale_2, low=0)

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        shape = list(shape)
        probs = tf.constant([self.pi, 1.0 - self.pi], dtype)
        scales = tf.constant([self.scale_1, self.scale_2], dtype)
        return tfd.MixtureSameFamily(
            mixture_distribution=tfd.Categorical(probs=tf.broadcast_to(probs, shape + [2])),
            components_distribution=tfd.Normal(
                loc=tf.zeros(shape + [2], dtype), scale=tf.broadcast_to(scales, shape + [2])
            ),
        )

    def get_config(self) -> dict[str, Any]:
        return {"pi": self.pi, "scale_1": self.scale_1, "scale_2": self.scale_2}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TFPPrior(Prior):
    """Any univariate ``tfp.distributions`` family as a serializable prior.

    ``TFPPrior("Laplace", loc=0.0, scale=0.1)`` puts an independent
    ``tfd.Laplace(0, 0.1)`` on every weight. The distribution is named by its
    class name in ``tfp.distributions`` and its parameters are plain numbers,
    so the config is JSON and a ``.keras`` file holding it loads with
    ``safe_mode=True``. The KL term is analytic when TFP knows
    ``KL(Normal ‖ family)`` and a single-sample Monte Carlo estimate otherwise.

    Args:
        distribution: class name in ``tfp.distributions`` (``"Laplace"``,
            ``"StudentT"``, ``"Cauchy"``, ``"Normal"`` …) of a univariate
            distribution over the real line.
        **parameters: its numeric constructor arguments.

    Example:
    >>> p = TFPPrior("Laplace", loc=0.0, scale=0.5)
    >>> p.distribution([2, 3]).batch_shape
    TensorShape([2, 3])
    >>> round(float(p.distribution([]).log_prob(0.0)), 4)  # log(1 / (2 * 0.5))
    0.0
    """

    def __init__(self, distribution: str, **parameters: float):
        owner = "TFPPrior"
        if not isinstance(distribution, str):
            raise TypeError(
                f"{owner}: `distribution` must be a tfp.distributions class name, got {distribution!r}."
            )
        family = getattr(tfd, distribution, None)
        if not (isinstance(family, type) and issubclass(family, tfd.Distribution)):
            raise ValueError(
                f"{owner}: `distribution` must name a class of tfp.distributions, got {distribution!r}."
            )
        self.distribution_name = distribution
        self.parameters = {k: check_real(owner, k, v) for k, v in parameters.items()}
        try:
            probe = family(**self.parameters, validate_args=True)
            log_p = float(probe.log_prob(0.0))
        except Exception as err:  # noqa: BLE001 - TFP raises many kinds of errors
            raise ValueError(
                f"{owner}: cannot build tfp.distributions.{distribution}(**{self.parameters}): {err}"
            ) from None
        if probe.event_shape.rank != 0 or probe.batch_shape.rank != 0:
            raise ValueError(
                f"{owner}: {distribution} with {self.parameters} is not a scalar univariate distribution "
                f"(event shape {probe.event_shape}, batch shape {probe.batch_shape})."
            )
        if not math.isfinite(log_p):
            raise ValueError(
                f"{owner}: {distribution} with {self.parameters} has no finite density at 0; a prior over "
                "weights must support the whole real line."
            )
        self._family = family

    def distribution(self, shape: Sequence[int], dtype: str | tf.DType = "float32") -> tfd.Distribution:
        params = {k: tf.fill(shape, tf.constant(v, dtype)) for k, v in self.parameters.items()}
        if not params:
            return tfd.BatchBroadcast(self._family(), shape)
        return self._family(**params)

    def get_config(self) -> dict[str, Any]:
        return {"distribution": self.distribution_name, **self.parameters}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        config = dict(config)
        return cls(config.pop("distribution"), **config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Laplace(TFPPrior):
    """Laplace prior ``p(w) ∝ exp(-|w - loc| / scale)`` (sparsity-promoting; Monte Carlo KL).

    Args:
        loc: location.
        scale: scale (> 0).

    Example:
    >>> Laplace(0.0, 0.1)
    Laplace(loc=0.0, scale=0.1)
    """

    def __init__(self, loc: float = 0.0, scale: float = 1.0):
        loc = check_real("Laplace prior", "loc", loc)
        scale = check_real("Laplace prior", "scale", scale, low=0)
        super().__init__("Laplace", loc=loc, scale=scale)
        self.loc, self.scale = loc, scale

    def get_config(self) -> dict[str, Any]:
        return {"loc": self.loc, "scale": self.scale}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class StudentT(TFPPrior):
    """Heavy-tailed Student-t prior (``df=1`` is the Cauchy; Monte Carlo KL).

    Args:
        df: degrees of freedom (> 0).
        loc: location.
        scale: scale (> 0).

    Example:
    >>> StudentT(3.0).distribution([4]).batch_shape
    TensorShape([4])
    """

    def __init__(self, df: float = 3.0, loc: float = 0.0, scale: float = 1.0):
        df = check_real("StudentT prior", "df", df, low=0)
        loc = check_real("StudentT prior", "loc", loc)
        scale = check_real("StudentT prior", "scale", scale, low=0)
        super().__init__("StudentT", df=df, loc=loc, scale=scale)
        self.df, self.loc, self.scale = df, loc, scale

    def get_config(self) -> dict[str, Any]:
        return {"df": self.df, "loc": self.loc, "scale": self.scale}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Prior:
        return cls(**config)


def _normal_kl_sum(loc, scale, prior_loc: float, prior_scale: float) -> tf.Tensor:
    inv_var = 1.0 / prior_scale**2
    const = math.log(prior_scale) - 0.5

    @tf.custom_gradient
    def kl(loc, scale):
        centred = loc - prior_loc if prior_loc else loc
        n = tf.cast(tf.size(loc), loc.dtype)
        value = (
            0.5 * inv_var * (tf.reduce_sum(tf.square(scale)) + tf.reduce_sum(tf.square(centred)))
            - tf.reduce_sum(tf.math.log(scale))
            + n * const
        )

        def grad(upstream):
            return _normal_kl_gradient(loc, scale, upstream, prior_loc, prior_scale)

        return value, grad

    return kl(loc, scale)


def _normal_kl_gradient(
    loc, scale, upstream, prior_loc: float, prior_scale: float
) -> tuple[tf.Tensor, tf.Tensor]:
    """``upstream ·`` the gradient of ``sum KL(N(loc, scale²) ‖ N(prior_loc, prior_scale²))``: ``(d_loc, d_scale)``."""
    inv_var = 1.0 / prior_scale**2
    d_loc = (upstream * inv_var) * (loc - prior_loc if prior_loc else loc)
    d_scale = upstream * (inv_var * scale - tf.math.reciprocal(scale))
    return d_loc, d_scale

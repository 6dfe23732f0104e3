"""Posterior families: how a variational layer perturbs its weights.

Every bayesflip layer takes ``posterior=`` (default ``"gaussian"``). The family
decides the noise ``ΔW`` of one draw and the KL term; the estimators
(``flipout``, ``shared``, ``local``) and the layers are the same for all of them,
because flipout needs only that ``ΔW`` is symmetric and shared by the batch:

=============================  ==============================  =======================  ============
family                         weight ``W``                    learned                  KL
=============================  ==============================  =======================  ============
:class:`MeanFieldGaussian`     ``θ + σ ∘ ε`` (additive)        ``θ``, ``σ``             vs the prior
:class:`GaussianDropConnect`   ``θ ∘ (1 + √α ε)``, fixed α     ``θ``                    none
:class:`VariationalDropout`    ``θ ∘ (1 + √α ε)``              ``θ``, ``α`` (per        log-uniform
                                                               weight or unit)
=============================  ==============================  =======================  ============

The multiplicative families are the perturbations of the flipout paper's
speed-up and LSTM experiments (Wen et al. 2018, §4.2–4.3): Gaussian DropConnect with
drop rate ``p`` is ``α = p / (1 − p)`` (Wang & Manning 2013; Srivastava et al.
2014), and with a learned ``α`` and the log-uniform prior it is variational
dropout (Kingma, Salimans & Welling 2015) in the sparse form of Molchanov,
Ashukha & Vetrov (2017): ``log α`` clipped to ``[-8, 8]``, the additive
reparameterisation ``σ² = α θ²`` for per-weight ``α``, and weights with
``log α > 3`` pruned in posterior-mean predictions (:func:`sparsity` reports
the fraction).

Example:
>>> import numpy as np
>>> from bayesflip.layers import DenseFlipout
>>> layer = DenseFlipout(3, posterior=GaussianDropConnect(rate=0.5), seed=0)
>>> layer(np.ones((2, 4), "float32")).shape
TensorShape([2, 3])
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bayesflip import priors as priors_lib
from bayesflip import random as rnd
from bayesflip._checks import check_real, resolve_registered
from bayesflip._keras_compat import flatten_layers
from bayesflip._tfp import tfd

__all__ = [
    "PosteriorFamily",
    "MeanFieldGaussian",
    "GaussianDropConnect",
    "VariationalDropout",
    "WeightPosterior",
    "GaussianPosterior",
    "MultiplicativePosterior",
    "SparsityReport",
    "analytic_kl_available",
    "log_uniform_kl",
    "sparsity",
    "get",
]

_PACKAGE = "bayesflip"

#: Published constants of the log-uniform KL approximation (Molchanov et al. 2017, eq. 14).
MOLCHANOV_K1, MOLCHANOV_K2, MOLCHANOV_K3 = 0.63576, 1.87320, 1.48695
#: ``log α`` range of variational dropout (as Molchanov et al.'s code clips it).
LOG_ALPHA_RANGE = (-8.0, 8.0)
_EPS = 1e-8

# ---------------------------------------------------------------------------
# Analytic KL availability (Gaussian posterior vs a prior)
# ---------------------------------------------------------------------------
# Weak keys: an entry lives as long as its prior. Priors bound to one layer's
# variables (``LearnableNormal``, ``CenteredNormal``) hash by identity, so a
# plain dict kept every such layer's prior — and its variables — alive forever.
_ANALYTIC_KL_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@tf.autograph.experimental.do_not_convert
def analytic_kl_available(prior: priors_lib.Prior | None) -> bool:
    """Whether TFP's KL registry has ``KL(Normal ‖ prior.distribution)`` (``False`` for no prior)."""
    if prior is None:
        return False
    # Keyed by the prior's value (priors hash by type and config): one class
    # such as ``TFPPrior`` may build families with and without an analytic KL.
    try:
        available = _ANALYTIC_KL_CACHE.get(prior)
    except TypeError:  # a prior that cannot be weakly referenced: not cached
        return _probe_analytic_kl(prior)
    if available is None:
        available = _probe_analytic_kl(prior)
        _ANALYTIC_KL_CACHE[prior] = available
    return available


@tf.autograph.experimental.do_not_convert
def _probe_analytic_kl(prior: priors_lib.Prior) -> bool:
    try:
        tfd.kl_divergence(tfd.Normal(0.0, 1.0), prior.distribution([], "float32"))
        return True
    except NotImplementedError:
        return False


def log_uniform_kl(log_alpha: tf.Tensor) -> tf.Tensor:
    """Elementwise ``KL(N(θ, αθ²) ‖ log-uniform)``, Molchanov et al.'s approximation (eq. 14).

    ``KL ≈ k1 − k1 σ(k2 + k3 log α) + ½ log(1 + 1/α)``, with ``k1, k2, k3 =
    0.63576, 1.87320, 1.48695``; it tends to 0 as ``α → ∞`` and its error
    against the exact (improper-prior) KL is below 0.01 nats up to a constant.

    Args:
        log_alpha: ``log α`` (any shape, float32).

    Returns:
        The KL of each entry, same shape.

    Example:
    >>> log_uniform_kl(tf.constant([-8.0, 0.0, 8.0])).numpy().round(3)
    array([4.636, 0.431, 0.   ], dtype=float32)
    """
    log_alpha = tf.convert_to_tensor(log_alpha, tf.float32)
    neg_kl = (
        MOLCHANOV_K1 * tf.sigmoid(MOLCHANOV_K2 + MOLCHANOV_K3 * log_alpha)
        - 0.5 * tf.math.softplus(-log_alpha)
        - MOLCHANOV_K1
    )
    return -neg_kl


# ---------------------------------------------------------------------------
# Per-weight posteriors
# ---------------------------------------------------------------------------
class WeightPosterior:
    """The posterior of one weight tensor of a layer (built by a :class:`PosteriorFamily`).

    What the core needs of it: the mean ``θ`` (``loc``), the signed noise scale
    ``s`` of one draw ``ΔW = s ∘ ε`` (``|s|`` is the standard deviation), the
    KL term, and the point estimate used in posterior-mean mode.

    Attributes:
        name: weight name (``"kernel"``, ``"bias"`` …).
        shape: weight shape.
        loc: the Keras variable holding ``θ``.
        has_kl: whether :meth:`kl_divergence` can be non-zero.
        kl_needs_sample: whether the KL is a Monte Carlo estimate at a posterior draw.
    """

    name: str
    shape: tuple
    loc: Any
    has_kl: bool = True
    kl_needs_sample: bool = False

    def mean(self) -> tf.Tensor:
        """Posterior mean ``θ``, float32."""
        return tf.convert_to_tensor(self.loc.value, tf.float32)

    def noise_scale(self) -> tf.Tensor:
        """Signed scale ``s`` of ``ΔW = s ∘ ε``, float32."""
        raise NotImplementedError

    def point_estimate(self) -> tf.Tensor:
        """The weight used in posterior-mean mode, float32 (``θ`` unless pruned)."""
        return self.mean()

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``KL(q ‖ p)`` summed over the weight, float32."""
        raise NotImplementedError


class GaussianPosterior(WeightPosterior):
    """Mean-field Gaussian posterior over one weight tensor of a layer.

    Holds two trainable variables of ``layer``: ``loc`` and ``rho``, with
    ``scale = min_scale + softplus(rho)``; ``rho`` is initialised so that the
    initial scale equals ``init_scale``.

    Args:
        layer: the owning Keras layer (variables are created with ``add_weight``).
        name: weight name, e.g. ``"kernel"``; variables are ``kernel_loc``/``kernel_rho``.
        shape: weight shape.
        loc_initializer: Keras initializer of the posterior mean.
        init_scale: posterior standard deviation at initialisation (> min_scale).
        min_scale: floor of the posterior standard deviation (>= 0).
        prior: a :class:`bayesflip.priors.Prior`.
    """

    def __init__(self, layer, name: str, shape, loc_initializer, init_scale: float, min_scale: float, prior):
        self.name = name
        self.shape = tuple(shape)
        self.min_scale = float(min_scale)
        self.loc = layer.add_weight(
            name=f"{name}_loc", shape=shape, initializer=loc_initializer, trainable=True, autocast=False
        )
        self.rho = layer.add_weight(
            name=f"{name}_rho",
            shape=shape,
            initializer=keras.initializers.Constant(rnd.softplus_inverse(init_scale - min_scale)),
            trainable=True,
            # read in float32 even inside the autocast scope Keras opens for a
            # top-level call of a mixed-policy layer (it ignores autocast=False there)
            autocast=False,
        )
        # A prior with per-weight state (e.g. LearnableNormal) returns a prior
        # bound to the variables it created for this weight.
        self.prior = prior.build(layer, shape, name) or prior
        self.kl_needs_sample = not analytic_kl_available(self.prior)

    def scale(self) -> tf.Tensor:
        """Posterior standard deviation, float32."""
        return self.min_scale + tf.nn.softplus(tf.convert_to_tensor(self.rho.value, tf.float32))

    def noise_scale(self) -> tf.Tensor:
        return self.scale()

    def distribution(self) -> tfd.Normal:
        return tfd.Normal(loc=self.mean(), scale=self.scale())

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """``KL(q ‖ prior)`` summed over the weight, computed in float32.

        Analytic when the prior has a closed form (``kl_from_normal``) or TFP's
        KL registry knows the pair; otherwise the unbiased single-sample
        estimate ``log q(w) - log p(w)`` at ``sample`` (a posterior draw, e.g.
        the one used in the forward pass) or at a fresh draw from ``seed``.
        ``scale`` may pass the already computed :meth:`scale` of this call.
        """
        closed_form = getattr(self.prior, "kl_from_normal", None)
        if closed_form is not None:
            return closed_form(self.mean(), self.scale() if scale is None else scale)
        q = self.distribution()
        p = self.prior.distribution(self.shape, "float32")
        if analytic_kl_available(self.prior):
            return tf.reduce_sum(tfd.kl_divergence(q, p))
        if sample is None:
            if seed is None:
                raise ValueError(f"Monte Carlo KL of '{self.name}' needs a posterior sample or a seed.")
            sample = q.loc + q.scale * rnd.standard_normal(self.shape, seed)
        sample = tf.cast(sample, tf.float32)
        return tf.reduce_sum(q.log_prob(sample) - p.log_prob(sample))


class MultiplicativePosterior(WeightPosterior):
    """``W = θ ∘ (1 + √α ε)``: Gaussian DropConnect (fixed ``α``) or variational dropout (learned).

    Variables on ``layer``: ``<name>_loc`` (``θ``) and, when ``α`` is learned,
    ``<name>_log_sigma2`` (per weight: ``log α = log σ² − log θ²``, the
    additive reparameterisation of Molchanov et al. 2017, whose gradient
    w.r.t. ``θ`` carries no noise) or ``<name>_log_alpha`` (per unit, one per
    slice along ``output_axis``, Kingma et al. 2015). ``log α`` is clipped to
    ``[-8, 8]`` wherever it is used.

    Args:
        layer: the owning Keras layer.
        name: weight name.
        shape: weight shape.
        loc_initializer: Keras initializer of ``θ``.
        family: the :class:`GaussianDropConnect` or :class:`VariationalDropout` that built it.
        output_axis: axis of the output units (per-unit ``α``).
    """

    def __init__(
        self,
        layer,
        name: str,
        shape,
        loc_initializer,
        family: "GaussianDropConnect | VariationalDropout",
        output_axis: int = -1,
    ):
        self.name = name
        self.shape = tuple(shape)
        self.family = family
        self.loc = layer.add_weight(
            name=f"{name}_loc", shape=shape, initializer=loc_initializer, trainable=True, autocast=False
        )
        #: The fixed ``α`` of Gaussian DropConnect, ``None`` when ``α`` is learned.
        self.fixed_alpha: float | None = family.alpha if isinstance(family, GaussianDropConnect) else None
        #: Variational dropout's ``log α`` above which a weight is pruned (``None``: never, or ``α`` fixed).
        self.prune_threshold: float | None = (
            family.prune_threshold if isinstance(family, VariationalDropout) else None
        )
        self.has_kl = isinstance(family, VariationalDropout)  # a learned α has the log-uniform KL
        self.output_axis = output_axis % len(self.shape) if self.shape else 0
        self.log_sigma2: Any = None
        self.log_alpha_unit: Any = None
        if not isinstance(family, VariationalDropout):
            return
        if family.granularity == "weight":
            init = family.init_log_alpha
            loc = self.loc

            def log_sigma2_init(shape, dtype=None):  # log α₀ + log θ₀²: the same α₀ for every weight
                theta = tf.cast(tf.convert_to_tensor(loc.value), tf.float32)
                return tf.cast(init + tf.math.log(tf.square(theta) + _EPS), dtype or "float32")

            self.log_sigma2 = layer.add_weight(
                name=f"{name}_log_sigma2", shape=shape, initializer=log_sigma2_init, trainable=True, autocast=False
            )
        else:
            units = self.shape[self.output_axis] if self.shape else 1
            self.log_alpha_unit = layer.add_weight(
                name=f"{name}_log_alpha",
                shape=(units,),
                initializer=keras.initializers.Constant(family.init_log_alpha),
                trainable=True,
                autocast=False,
            )

    def log_alpha(self) -> tf.Tensor:
        """``log α`` of every weight (broadcast to the weight's shape), clipped, float32."""
        low, high = LOG_ALPHA_RANGE
        if self.fixed_alpha is not None:
            return tf.fill(self.shape, tf.constant(math.log(self.fixed_alpha), tf.float32))
        if self.log_sigma2 is not None:
            raw = tf.convert_to_tensor(self.log_sigma2.value, tf.float32) - tf.math.log(
                tf.square(self.mean()) + _EPS
            )
        else:
            per_unit = tf.convert_to_tensor(self.log_alpha_unit.value, tf.float32)
            shape = [1] * len(self.shape)
            if shape:
                shape[self.output_axis] = -1
            raw = tf.broadcast_to(tf.reshape(per_unit, shape), self.shape)
        return tf.clip_by_value(raw, low, high)

    def noise_scale(self) -> tf.Tensor:
        """``√α ∘ θ`` (so ``θ + ΔW = θ ∘ (1 + √α ε)``), float32."""
        if self.fixed_alpha is not None:
            return math.sqrt(self.fixed_alpha) * self.mean()
        if self.log_sigma2 is None:
            return tf.exp(0.5 * self.log_alpha()) * self.mean()
        # Per weight, σ² is the free parameter (the additive reparameterisation):
        # s = sign(θ) σ with log σ² kept within log θ² + [low, high], i.e. log α
        # clipped. min/max route the gradient to log σ² alone inside the range,
        # so ∂s/∂θ is exactly zero there, not zero up to rounding.
        low, high = LOG_ALPHA_RANGE
        theta = self.mean()
        log_theta2 = tf.math.log(tf.square(theta) + _EPS)
        log_sigma2 = tf.convert_to_tensor(self.log_sigma2.value, tf.float32)
        log_sigma2 = tf.minimum(tf.maximum(log_sigma2, log_theta2 + low), log_theta2 + high)
        return tf.sign(theta) * tf.exp(0.5 * log_sigma2)

    def keep_mask(self) -> tf.Tensor:
        """1.0 where the weight is kept (``log α ≤ prune_threshold``), 0.0 where pruned."""
        if self.prune_threshold is None:
            return tf.ones(self.shape, tf.float32)
        return tf.cast(self.log_alpha() <= self.prune_threshold, tf.float32)

    def point_estimate(self) -> tf.Tensor:
        if self.prune_threshold is not None:
            return self.mean() * self.keep_mask()
        return self.mean()

    def kl_divergence(
        self, sample: tf.Tensor | None = None, seed: tf.Tensor | None = None, scale: tf.Tensor | None = None
    ) -> tf.Tensor:
        """Sum of :func:`log_uniform_kl` over the weight (0 for a fixed ``α``)."""
        if not self.has_kl:
            return tf.constant(0.0, tf.float32)
        return tf.reduce_sum(log_uniform_kl(self.log_alpha()))


# ---------------------------------------------------------------------------
# Families (what a layer's ``posterior=`` takes)
# ---------------------------------------------------------------------------
class PosteriorFamily:
    """Base class of the ``posterior=`` choices: builds one :class:`WeightPosterior` per Bayesian weight.

    Subclasses are small Keras-serializable value objects (``get_config``), so
    layers holding them save and load with ``safe_mode=True``.
    """

    #: Whether the family's KL is taken against the layer's ``prior``.
    uses_prior: bool = False
    #: Whether the family adds a KL term at all.
    has_kl: bool = True

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> WeightPosterior:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> "PosteriorFamily":
        return cls(**config)

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MeanFieldGaussian(PosteriorFamily):
    """The default: ``W ~ N(θ, σ²)`` per weight, ``σ = min_scale + softplus(ρ)``, KL against the layer's prior.

    The layer's ``init_scale``, ``min_scale`` and ``prior`` configure it.

    Example:
    >>> get("gaussian")
    MeanFieldGaussian()
    """

    uses_prior = True

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> GaussianPosterior:
        return GaussianPosterior(layer, name, shape, loc_initializer, layer.init_scale, layer.min_scale, layer.prior)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GaussianDropConnect(PosteriorFamily):
    """Fixed multiplicative Gaussian weight noise ``W = θ ∘ (1 + √α ε)``: a regularizer, no KL.

    Give exactly one of ``rate`` (the drop rate ``p`` of the Bernoulli
    DropConnect whose first two moments it matches, ``α = p / (1 − p)``) or
    ``alpha`` (the noise variance relative to ``θ²``).

    Args:
        rate: drop rate in (0, 1).
        alpha: noise variance ratio, finite and > 0.

    Example:
    >>> GaussianDropConnect(rate=0.5).alpha
    1.0
    """

    has_kl = False

    def __init__(self, rate: float | None = None, alpha: float | None = None):
        who = "GaussianDropConnect"
        if (rate is None) == (alpha is None):
            raise ValueError(f"{who}: give exactly one of `rate` or `alpha`, got rate={rate!r}, alpha={alpha!r}.")
        if rate is not None:
            self.rate: float | None = check_real(who, "rate", rate, low=0, high=1)
            self.alpha = self.rate / (1.0 - self.rate)
        else:
            self.rate = None
            self.alpha = check_real(who, "alpha", alpha, low=0)

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> MultiplicativePosterior:
        return MultiplicativePosterior(layer, name, shape, loc_initializer, self, output_axis)

    def get_config(self) -> dict:
        return {"rate": self.rate} if self.rate is not None else {"alpha": self.alpha}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class VariationalDropout(PosteriorFamily):
    """Learned multiplicative noise with the log-uniform prior (sparse variational dropout).

    ``W = θ ∘ (1 + √α ε)`` with ``α`` learned per weight (Molchanov et al.
    2017) or per output unit (Kingma et al. 2015), the KL of
    :func:`log_uniform_kl`, and ``log α`` clipped to ``[-8, 8]``. The prior is
    fixed by the family (a layer's ``prior=`` is refused). In posterior-mean
    mode weights with ``log α > prune_threshold`` are set to zero;
    :func:`sparsity` reports how many.

    Args:
        granularity: ``"weight"`` (default) or ``"unit"``.
        init_log_alpha: ``log α`` at initialisation, in [-8, 8] (default -4: ``α ≈ 0.018``).
        prune_threshold: prune weights with ``log α`` above it at prediction time
            (default 3, ``α ≈ 20``, as Molchanov et al.); ``None`` never prunes.

    Example:
    >>> VariationalDropout(granularity="unit")
    VariationalDropout(granularity='unit', init_log_alpha=-4.0, prune_threshold=3.0)
    """

    def __init__(self, granularity: str = "weight", init_log_alpha: float = -4.0, prune_threshold: float | None = 3.0):
        who = "VariationalDropout"
        if granularity not in ("weight", "unit"):
            raise ValueError(f"{who}: `granularity` must be 'weight' or 'unit', got {granularity!r}.")
        self.granularity = granularity
        low, high = LOG_ALPHA_RANGE
        self.init_log_alpha = check_real(
            who, "init_log_alpha", init_log_alpha, low=low - 1e-9, high=high + 1e-9, what="a number in [-8, 8]"
        )
        self.prune_threshold = (
            None if prune_threshold is None else check_real(who, "prune_threshold", prune_threshold)
        )

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> MultiplicativePosterior:
        return MultiplicativePosterior(layer, name, shape, loc_initializer, self, output_axis)

    def get_config(self) -> dict:
        return {
            "granularity": self.granularity,
            "init_log_alpha": self.init_log_alpha,
            "prune_threshold": self.prune_threshold,
        }


_ALIASES = {
    "gaussian": MeanFieldGaussian,
    "mean_field_gaussian": MeanFieldGaussian,
    "variational_dropout": VariationalDropout,
}


def get(identifier: Any, caller: str | None = None) -> PosteriorFamily:
    """Resolve a posterior family from an instance, a name, a config dict, or ``None``.

    ``None`` and ``"gaussian"`` give :class:`MeanFieldGaussian`;
    ``"variational_dropout"`` gives :class:`VariationalDropout` with its
    defaults. Gaussian DropConnect needs its rate:
    ``GaussianDropConnect(rate=p)``. Errors name ``caller`` and ``posterior``.

    Example:
    >>> get("variational_dropout").granularity
    'weight'
    """
    if identifier is None:
        return MeanFieldGaussian()
    who = f"{caller or 'posteriors.get'}: invalid `posterior`"
    hint = ""
    if isinstance(identifier, str) and "drop" in identifier.lower() and identifier.lower() not in _ALIASES:
        hint = " (Gaussian DropConnect needs its rate: GaussianDropConnect(rate=p))"
    return resolve_registered(
        identifier, base=PosteriorFamily, aliases=_ALIASES, who=who, kind="posterior family", hint=hint
    )


# ---------------------------------------------------------------------------
# Sparsity of variational dropout
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SparsityReport:
    """Weights pruned by variational dropout (``log α > prune_threshold``).

    Attributes:
        pruned: number of pruned weights.
        total: number of weights under a variational-dropout posterior that prunes (``prune_threshold`` set).
        by_weight: ``{"layer/weight": (pruned, total)}``.
    """

    pruned: int
    total: int
    by_weight: dict

    @property
    def fraction(self) -> float:
        """Fraction of weights pruned (0.0 when no weight has a learned ``α``)."""
        return self.pruned / self.total if self.total else 0.0


def sparsity(model: keras.layers.Layer) -> SparsityReport:
    """Count the weights that posterior-mean predictions prune (variational dropout only).

    Args:
        model: a built model or layer.

    Returns:
        A :class:`SparsityReport`.

    Example:
    >>> import numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(2, posterior="variational_dropout", seed=0)
    >>> _ = layer(np.ones((1, 3), "float32"))
    >>> sparsity(layer).fraction
    0.0
    """
    layers = flatten_layers(model, include_self=True)
    pruned = total = 0
    by_weight = {}
    for layer in layers:
        for post in getattr(layer, "posteriors", []):
            if not isinstance(post, MultiplicativePosterior) or post.prune_threshold is None:
                continue
            n = int(np.prod(post.shape))
            p = n - int(round(float(tf.reduce_sum(post.keep_mask()))))
            by_weight[f"{layer.name}/{post.name}"] = (p, n)
            pruned += p
            total += n
    return SparsityReport(pruned, total, by_weight)

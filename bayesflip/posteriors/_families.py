"""The ``posterior=`` choices of every layer: families that build one weight posterior per weight."""

from __future__ import annotations

from typing import Any

import keras

from bayesflip._checks import check_positive_int, check_real, resolve_registered
from bayesflip.posteriors._gaussian import GaussianPosterior, WeightPosterior
from bayesflip.posteriors._multiplicative import LOG_ALPHA_RANGE, MultiplicativePosterior
from bayesflip.posteriors._rank1 import Rank1Posterior, _check_random_sign_init
from bayesflip.priors import Normal

_PACKAGE = "bayesflip"


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
    #: The estimators with a meaning for this family (``None``: all of them); a
    #: layer refuses any other with an error.
    supported_estimators: tuple[str, ...] | None = None
    #: Whether its weights are drawn as per-example factors
    #: (:meth:`WeightPosterior.sample_factors`); layers that apply a weight more
    #: than once per call (recurrent, embedding) refuse such a family.
    per_example: bool = False

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> WeightPosterior:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config: dict) -> PosteriorFamily:
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
        return GaussianPosterior(
            layer, name, shape, loc_initializer, layer.init_scale, layer.min_scale, layer.prior
        )


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
            raise ValueError(
                f"{who}: give exactly one of `rate` or `alpha`, got rate={rate!r}, alpha={alpha!r}."
            )
        if rate is not None:
            self.rate: float | None = check_real(who, "rate", rate, low=0, high=1)
            self.alpha = self.rate / (1.0 - self.rate)
        else:
            self.rate = None
            self.alpha = check_real(who, "alpha", alpha, low=0)

    def build(
        self, layer, name: str, shape, loc_initializer, output_axis: int = -1
    ) -> MultiplicativePosterior:
        return MultiplicativePosterior(
            layer, name, shape, loc_initializer, fixed_alpha=self.alpha, output_axis=output_axis
        )

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

    def __init__(
        self, granularity: str = "weight", init_log_alpha: float = -4.0, prune_threshold: float | None = 3.0
    ):
        who = "VariationalDropout"
        if granularity not in ("weight", "unit"):
            raise ValueError(f"{who}: `granularity` must be 'weight' or 'unit', got {granularity!r}.")
        self.granularity = granularity
        low, high = LOG_ALPHA_RANGE
        self.init_log_alpha = check_real(
            who,
            "init_log_alpha",
            init_log_alpha,
            low=low - 1e-9,
            high=high + 1e-9,
            what="a number in [-8, 8]",
        )
        self.prune_threshold = (
            None if prune_threshold is None else check_real(who, "prune_threshold", prune_threshold)
        )

    def build(
        self, layer, name: str, shape, loc_initializer, output_axis: int = -1
    ) -> MultiplicativePosterior:
        return MultiplicativePosterior(
            layer,
            name,
            shape,
            loc_initializer,
            granularity=self.granularity,
            init_log_alpha=self.init_log_alpha,
            prune_threshold=self.prune_threshold,
            output_axis=output_axis,
        )

    def get_config(self) -> dict:
        return {
            "granularity": self.granularity,
            "init_log_alpha": self.init_log_alpha,
            "prune_threshold": self.prune_threshold,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Rank1(PosteriorFamily):
    """Rank-1 Bayesian layers with a mixture posterior (Dusenberry et al., ICML 2020).

    A kernel is ``W ∘ (s rᵀ)`` with a point-estimate ``W`` and, per mixture
    component ``k = 1..K``, Gaussian factors ``s_k`` (input channels) and
    ``r_k`` (output channels) under the prior ``N(prior_mean, prior_scale²)``;
    the layer computes ``op(x ∘ s, W) ∘ r + b + b_k`` with each example's own
    draw of ``(s, r)``. The layer's ``init_scale`` and ``min_scale`` set the
    factors' posterior standard deviation; its ``prior=`` is refused (the factors'
    prior is set here, and ``W`` has none: regularise it as a plain weight).

    Estimators: ``"flipout"`` (the default) draws ``(s, r)`` per example — exact,
    independent draws, which flipout's signs only approximate for a shared
    ``ΔW``; ``"shared"`` draws one ``(s, r)`` per component per call (Edward2's
    behaviour). ``"local"`` has no meaning here (the output is not Gaussian given
    the input) and is refused. Layers that apply a weight more than once per
    call (recurrent, embedding) refuse this family.

    The component of an example is ``(position in the batch + call counter) mod K``,
    the same in every layer of a forward pass, so ``K`` consecutive forward
    passes (e.g. ``mc_predict`` with ``num_samples`` a multiple of ``K``) visit
    each component equally. Train on batches tiled ``K`` times
    (:func:`tile_for_components`), as the paper does, so that every component
    sees every example; untiled, each example trains one component per step. Posterior-mean mode uses ``E[W] = W ∘ (1/K) Σ_k s̄_k r̄_kᵀ``
    and the mean component bias.

    Args:
        num_components: ``K``, a positive int (default 4, as the paper).
        prior_mean: mean of the factors' Gaussian prior (default 1).
        prior_scale: its standard deviation, > 0 (default 0.1, as the paper).
        random_sign_init: initial factor means: ``> 0`` — ``+1`` with this
            probability, else ``−1`` (spreads the components); ``< 0`` —
            ``N(1, random_sign_init²)``; ``0`` — all ones.
        component_bias: give each component its own bias offset (default True).

    Example:
    >>> import numpy as np
    >>> from bayesflip.layers import DenseFlipout
    >>> layer = DenseFlipout(3, posterior=Rank1(num_components=2), seed=0)
    >>> layer(np.ones((4, 5), "float32")).shape
    TensorShape([4, 3])
    """

    supported_estimators = ("flipout", "shared")
    per_example = True

    def __init__(
        self,
        num_components: int = 4,
        prior_mean: float = 1.0,
        prior_scale: float = 0.1,
        random_sign_init: float = 0.5,
        component_bias: bool = True,
    ):
        who = "Rank1"
        self.num_components = check_positive_int(who, "num_components", num_components)
        self.prior_mean = check_real(who, "prior_mean", prior_mean)
        self.prior_scale = check_real(who, "prior_scale", prior_scale, low=0)
        self.random_sign_init = _check_random_sign_init(who, random_sign_init)
        if not isinstance(component_bias, bool):
            raise ValueError(f"{who}: `component_bias` must be True or False, got {component_bias!r}.")
        self.component_bias = component_bias

    def build(self, layer, name: str, shape, loc_initializer, output_axis: int = -1) -> Rank1Posterior:
        return Rank1Posterior(
            layer,
            name,
            shape,
            loc_initializer,
            output_axis=output_axis,
            num_components=self.num_components,
            prior=Normal(self.prior_mean, self.prior_scale),
            random_sign_init=self.random_sign_init,
            component_bias=self.component_bias and bool(getattr(layer, "use_bias", True)),
            init_scale=layer.init_scale,
            min_scale=layer.min_scale,
        )

    def get_config(self) -> dict:
        return {
            "num_components": self.num_components,
            "prior_mean": self.prior_mean,
            "prior_scale": self.prior_scale,
            "random_sign_init": self.random_sign_init,
            "component_bias": self.component_bias,
        }


_ALIASES = {
    "gaussian": MeanFieldGaussian,
    "mean_field_gaussian": MeanFieldGaussian,
    "variational_dropout": VariationalDropout,
    "rank1": Rank1,
}


def get(identifier: Any, caller: str | None = None) -> PosteriorFamily:
    """Resolve a posterior family from an instance, a name, a config dict, or ``None``.

    ``None`` and ``"gaussian"`` give :class:`MeanFieldGaussian`;
    ``"variational_dropout"`` gives :class:`VariationalDropout` and ``"rank1"``
    :class:`Rank1` with their defaults. Gaussian DropConnect needs its rate:
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

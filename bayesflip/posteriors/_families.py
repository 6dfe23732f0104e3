"""The ``posterior=`` choices of every layer: families that build one weight posterior per weight."""

from __future__ import annotations

from typing import Any

import keras

from bayesflip._checks import check_real, resolve_registered
from bayesflip.posteriors._gaussian import GaussianPosterior, WeightPosterior
from bayesflip.posteriors._multiplicative import LOG_ALPHA_RANGE, MultiplicativePosterior

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

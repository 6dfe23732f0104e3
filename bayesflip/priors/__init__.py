"""Serializable priors over weights.

A prior is a small Keras-serializable object that builds a
``tfp.distributions.Distribution`` with the shape of the weight it governs.
The KL term of a layer is analytic whenever ``tfp.distributions.kl_divergence``
knows the (posterior, prior) pair, and a single-sample Monte Carlo estimate
otherwise (see :meth:`bayesflip.posteriors.GaussianPosterior.kl_divergence`).

Layout: a package whose private modules define the classes exported here (import
every name from ``bayesflip.priors``): the base class ``Prior`` (``_base``), the
priors with fixed parameters (``_fixed``) and the priors with variables on the
layer (``_learnable``). Saved models and configs find the classes by their
registered name (``"bayesflip>Normal"``), so configs written when the classes
lived in ``bayesflip.priors`` itself (``"module": "bayesflip.priors"``) still load.
"""

from __future__ import annotations

from typing import Any

from bayesflip._checks import resolve_registered
from bayesflip.priors._base import Prior
from bayesflip.priors._fixed import Laplace, Normal, ScaleMixtureNormal, StudentT, TFPPrior
from bayesflip.priors._learnable import CenteredNormal, LearnableNormal

__all__ = [
    "Prior",
    "Normal",
    "ScaleMixtureNormal",
    "TFPPrior",
    "Laplace",
    "StudentT",
    "LearnableNormal",
    "CenteredNormal",
    "get",
]

_ALIASES = {
    "normal": Normal,
    "scale_mixture_normal": ScaleMixtureNormal,
    "laplace": Laplace,
    "student_t": StudentT,
    "learnable_normal": LearnableNormal,
    "centered_normal": CenteredNormal,
}


def get(identifier: Any, caller: str | None = None) -> Prior:
    """Resolve a prior from an instance, a name, a config dict, or ``None``.

    ``None`` gives the default ``Normal(0, 1)``. Errors name ``caller`` (e.g. a layer's
    ``"DenseFlipout 'dense'"``; default ``"priors.get"``) and the argument ``prior``.

    Example:
    >>> get("normal")
    Normal(loc=0.0, scale=1.0)
    """
    if identifier is None:
        return Normal()
    who = f"{caller or 'priors.get'}: invalid `prior`"
    return resolve_registered(identifier, base=Prior, aliases=_ALIASES, who=who, kind="prior")

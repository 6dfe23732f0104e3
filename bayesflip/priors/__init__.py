"""Serializable priors over weights.

A prior is a small Keras-serializable object that builds a
``tfp.distributions.Distribution`` with the shape of the weight it governs.
The KL term of a layer is analytic whenever ``tfp.distributions.kl_divergence``
knows the (posterior, prior) pair, and a single-sample Monte Carlo estimate
otherwise (see :func:`bayesflip.layers.GaussianPosterior.kl_divergence`).

Layout: a package whose private modules are re-exported here (import every name
from ``bayesflip.priors``): the base class ``Prior`` and the shared argument
checks (``_base``), the priors with fixed parameters (``_fixed``) and the priors
with variables on the layer (``_learnable``). The classes keep ``bayesflip.priors``
as their ``__module__``, so serialized configs (``"module": "bayesflip.priors"``),
reprs and error messages read as before the split.
"""

from __future__ import annotations

from typing import Any

from bayesflip._checks import resolve_registered
from bayesflip.priors._base import _PACKAGE, Prior, _check_finite, _check_positive  # noqa: F401 - re-exported
from bayesflip.priors._fixed import (  # noqa: F401 - re-exported
    Laplace,
    Normal,
    ScaleMixtureNormal,
    StudentT,
    TFPPrior,
    _normal_kl_sum,
)
from bayesflip.priors._learnable import (  # noqa: F401 - re-exported
    CenteredNormal,
    LearnableNormal,
    _BoundCenteredNormal,
    _BoundLearnableNormal,
)

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

# Documented, serialized ("module") and named in errors as bayesflip.priors.<Class>, as before the split.
for _cls in (
    Prior,
    Normal,
    ScaleMixtureNormal,
    TFPPrior,
    Laplace,
    StudentT,
    LearnableNormal,
    _BoundLearnableNormal,
    CenteredNormal,
    _BoundCenteredNormal,
):
    _cls.__module__ = __name__
del _cls

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

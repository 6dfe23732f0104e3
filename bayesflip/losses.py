"""Deprecated: the KL-weight helpers and ELBO callbacks moved to :mod:`bayesflip.elbo`.

(The likelihood losses are in :mod:`bayesflip.heads`.) Every name still resolves
here, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("set_kl_weight", "get_kl_weight", "kl_divergence", "KLAnnealing", "ELBOTerms")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"bayesflip.losses is deprecated and will be removed: import {name} from bayesflip.elbo "
            f"(or bayesflip.{name}).",
            DeprecationWarning,
            stacklevel=2,
        )
        from bayesflip import elbo

        return getattr(elbo, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

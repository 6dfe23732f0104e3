"""Argument checks shared across the library (one wording for every error).

Every check takes the ``caller`` first (a function, ``"Class.method"`` or a layer's
``"DenseFlipout 'name'"``) and raises ``"<caller>: `<arg>` must be ..., got <value>."``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

import numpy as np

from bayesflip._typing import ArrayLike


@overload
def check_positive_int(caller: str, name: str, value: Any, allow_none: Literal[False] = False) -> int: ...
@overload
def check_positive_int(caller: str, name: str, value: Any, allow_none: bool) -> int | None: ...


def check_positive_int(caller: str, name: str, value: Any, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int if it is an int >= 1 (or ``None`` when allowed).

    Raises:
        ValueError: naming ``caller`` (a function or ``Layer 'name'``), the
            argument and the value received.

    Example:
    >>> check_positive_int("f", "units", 3)
    3
    """
    if value is None and allow_none:
        return None
    return check_int(caller, name, value, minimum=1)


@overload
def check_int(
    caller: str, name: str, value: Any, minimum: int = 0, allow_none: Literal[False] = False
) -> int: ...
@overload
def check_int(caller: str, name: str, value: Any, minimum: int = 0, *, allow_none: bool) -> int | None: ...


def check_int(caller: str, name: str, value: Any, minimum: int = 0, allow_none: bool = False) -> int | None:
    """Return ``value`` as an int if it is an int (not a bool) >= ``minimum`` (or ``None`` when allowed).

    Raises:
        ValueError: ``"<caller>: `<name>` must be <a positive int | an int >= m>, got <value>."``

    Example:
    >>> check_int("f", "repeats", 2, minimum=2)
    2
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < minimum:
        what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{caller}: `{name}` must be {what}, got {value!r}.")
    return int(value)


def is_int(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy integer (a bool is not)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def is_real(value: Any) -> bool:
    """Whether ``value`` is a Python or NumPy real number (a bool is not)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def check_real(
    caller: str,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    what: str | None = None,
) -> float:
    """Return ``value`` as a float if it is a finite real number in the open interval (``low``, ``high``).

    ``low``/``high`` of ``None`` leave that side unbounded; ``what`` overrides the description
    of the range in the message (default: "a finite number", "a positive finite number", ...).

    Raises:
        ValueError: ``"<caller>: `<name>` must be <what>, got <value>."``

    Example:
    >>> check_real("f", "sigma", 0.5, low=0)
    0.5
    """
    ok = is_real(value) and math.isfinite(value)
    ok = ok and (low is None or value > low) and (high is None or value < high)
    if not ok:
        if what is None:
            if low == 0 and high is None:
                what = "a positive finite number"
            elif low is None and high is None:
                what = "a finite number"
            else:
                lo = "-inf" if low is None else f"{low:g}"
                hi = "inf" if high is None else f"{high:g}"
                what = f"a number in ({lo}, {hi})"
        raise ValueError(f"{caller}: `{name}` must be {what}, got {value!r}.")
    return float(value)


#: Entries within this of [0, 1] and row sums within this of 1 count as "already probabilities"
#: (and as probabilities at all: the one simplex tolerance of the library).
PROBS_ATOL = 1e-3


def check_on_simplex(caller: str, name: str, values: ArrayLike) -> None:
    """Raise unless every row of ``values`` (last axis) lies on the probability simplex (:data:`PROBS_ATOL`).

    ``values`` is a NumPy array or an eager tensor, already checked to be finite and non-empty.

    Raises:
        ValueError: naming the caller, the argument, the range of the entries and the worst row
            sum, and suggesting ``from_logits=True``.
    """
    a = np.asarray(values, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    worst = float(np.max(np.abs(a.sum(axis=-1) - 1.0)))
    if lo < -PROBS_ATOL or hi > 1 + PROBS_ATOL or worst > PROBS_ATOL:
        raise ValueError(
            f"{caller}: `{name}` must lie on the probability simplex along the last axis (entries in [0, 1], "
            f"rows summing to 1 within {PROBS_ATOL}); got entries in [{lo:.4g}, {hi:.4g}] and a row sum off "
            f"by {worst:.4g}. Pass from_logits=True for logits."
        )


def looks_like_probabilities(values: ArrayLike) -> bool:
    """Whether every row along the last axis lies on the probability simplex (at least 2 classes).

    Example:
    >>> looks_like_probabilities([[0.2, 0.8], [1.0, 0.0]]), looks_like_probabilities([[2.0, -1.0]])
    (True, False)
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim < 1 or a.size == 0 or a.shape[-1] < 2:
        return False
    return bool(
        np.all(a >= -PROBS_ATOL)
        and np.all(a <= 1 + PROBS_ATOL)
        and np.all(np.abs(a.sum(axis=-1) - 1.0) <= PROBS_ATOL)
    )


def warn_probabilities_as_logits(
    caller: str,
    what: str,
    stacklevel: int = 3,
    fix: str = "Use from_logits=False for probabilities (e.g. a model that ends in a softmax).",
) -> None:
    """Warn (like Keras' losses about a softmax output) that ``from_logits=True`` got probabilities.

    ``what`` names the values, e.g. ``"the outputs of 'model'"``; the default ``fix`` suits
    functions with a ``from_logits`` argument.
    """
    import warnings

    lead = f"received `from_logits=True`, but {what}" if "from_logits" in fix else what
    warnings.warn(
        f"{caller}: {lead} already lie on the probability simplex (entries in [0, 1], rows summing "
        f"to 1), so they do not represent logits: a softmax of probabilities flattens them towards "
        f"uniform. Was this intended? {fix}",
        UserWarning,
        stacklevel=stacklevel,
    )


def public_path(obj: Any) -> str:
    """The dotted path a user imports ``obj`` from: its module up to the first private component.

    Example:
    >>> from bayesflip.priors import Normal
    >>> Normal.__module__, public_path(Normal)
    ('bayesflip.priors._fixed', 'bayesflip.priors.Normal')
    """
    parts = obj.__module__.split(".")
    public = []
    for part in parts:
        if part.startswith("_"):
            break
        public.append(part)
    return ".".join(public + [obj.__qualname__])


def resolve_registered(
    identifier: Any,
    *,
    base: type,
    aliases: dict,
    who: str,
    kind: str,
    hint: str = "",
) -> Any:
    """Resolve a Keras-registered bayesflip object (a prior, a posterior family) from an instance, a name or a config.

    ``identifier`` must not be ``None`` (the caller has its own default). ``aliases``
    maps lower-case names to zero-argument factories; ``who`` starts every message
    (``"<caller>: invalid `<arg>`"``); ``hint`` is appended to the unknown-name error.

    Raises:
        ValueError: an unknown name, or a config Keras cannot deserialize.
        TypeError: a config of another class, or anything else.
    """
    path = public_path(base)
    if isinstance(identifier, base):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in aliases:
            raise ValueError(
                f"{who}: Unknown {kind} {identifier!r}; expected one of {sorted(aliases)} or a {path} instance{hint}."
            )
        return aliases[key]()
    if isinstance(identifier, dict):
        import keras

        try:
            obj = keras.saving.deserialize_keras_object(identifier)
        except (TypeError, ValueError) as err:
            raise type(err)(f"{who}: {err}") from None
        if not isinstance(obj, base):
            raise TypeError(f"{who}: Config {identifier!r} does not describe a bayesflip {kind}.")
        return obj
    raise TypeError(f"{who}: a {kind} must be a {path}, a name or a config dict, got {identifier!r}.")

"""Type aliases of the public signatures.

``ArrayLike`` marks an array argument: a NumPy array, a ``tf.Tensor``, or (nested)
lists of numbers. To the type checker it is ``Any``: TensorFlow ships no type
information (a ``tf.Tensor`` is ``Any`` to mypy already), and every function converts
and validates such an argument itself, so NumPy's stricter ``numpy.typing.ArrayLike``
would only force casts on the converted values. At run time it is a named marker, so
that signatures in the documentation read ``ArrayLike`` (NumPy's alias would expand
into a long union there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NewType

if TYPE_CHECKING:
    from typing import TypeAlias

    ArrayLike: TypeAlias = Any
else:
    ArrayLike = NewType("ArrayLike", object)

__all__ = ["ArrayLike"]

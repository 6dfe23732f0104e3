"""A quiet start for the ``bayesflip`` command line (standard library only).

TensorFlow prints start-up lines (oneDNN, CUDA probing, absl's "log messages
before InitializeLog") from C++ straight to file descriptor 2 while it loads and
lists its devices; ``TF_CPP_MIN_LOG_LEVEL`` does not silence them on TF 2.21.
When bayesflip is started as the command line (``bayesflip …`` or
``python -m bayesflip …``), the package's ``__init__`` loads TensorFlow inside
:func:`quiet_stderr`, which points fd 2 at ``os.devnull`` and restores it
afterwards, so our own messages and errors still reach stderr. Imported as a
library, bayesflip leaves stderr alone.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["quiet_stderr", "started_as_cli"]


def started_as_cli() -> bool:
    """Whether this interpreter runs the ``bayesflip`` console script or ``python -m bayesflip``."""
    argv = list(getattr(sys, "orig_argv", ()))
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m":
            return argv[i + 1] == "bayesflip"
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    return script in ("bayesflip", "bayesflip.exe", "bayesflip-script.py")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send everything written to file descriptor 2 to ``os.devnull``, then restore it."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable fd 2: nothing to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)

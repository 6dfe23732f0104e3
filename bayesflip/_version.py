"""The version of bayesflip: the single source read by the package metadata (pyproject.toml) and ``bayesflip.__version__``."""

__version__ = "0.1.0"

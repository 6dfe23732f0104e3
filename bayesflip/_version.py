"""The version of bayesflip: the single source read by the package metadata (pyproject.toml) and ``bayesflip.__version__``."""

#: The version of bayesflip (PEP 440), also ``importlib.metadata.version("bayesflip")``.
__version__ = "0.1.0"

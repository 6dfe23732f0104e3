"""The documentation site builds with warnings as errors, and its API reference shows every public name."""

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("docs")]

# The documentation's dependencies (the ``docs`` extra). A missing one fails these tests instead of
# skipping them: a skip would let the documentation build go unchecked in CI.
DOCS_DEPENDENCIES = ("sphinx", "myst_parser", "myst_nb", "furo")


def _missing_docs_dependencies() -> list[str]:
    missing = []
    for name in DOCS_DEPENDENCIES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def test_docs_dependencies_are_installed():
    missing = _missing_docs_dependencies()
    assert not missing, (
        f"documentation dependencies missing: {missing}; install them with pip install -e '.[docs]'"
    )


def _public_names():
    """``module.name`` for every name of ``bayesflip.__all__`` and of each public module's ``__all__``."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        gen_api = importlib.import_module("gen_api")
    finally:
        sys.path.remove(str(ROOT / "docs"))
    names = gen_api.public_names()
    assert "bayesflip.set_kl_weight" in names and "bayesflip.layers.DenseFlipout" in names
    return names


def test_docs_build_without_warnings_and_list_every_public_name(tmp_path):
    missing = _missing_docs_dependencies()
    assert not missing, f"cannot build the documentation without {missing} (pip install -e '.[docs]')"
    out = tmp_path / "html"
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-10000:]}"

    api = "\n".join(p.read_text(encoding="utf-8") for p in (out / "api").glob("*.html"))
    missing = []
    for full in _public_names():
        modname, _, name = full.rpartition(".")
        obj = getattr(importlib.import_module(modname), name)
        anchor = f'id="module-{obj.__name__}"' if inspect.ismodule(obj) else f'id="{full}"'
        if anchor not in api:
            missing.append(full)
    assert not missing, f"public names missing from the API reference: {missing}"

    pages = ["index", "guide/README", "guide/tutorials/README", "guide/benchmarks/README"]
    pages += [f"guide/docs/{p.stem}" for p in (ROOT / "docs").glob("*.md") if p.stem != "index"]
    assert "guide/docs/training" in pages and "guide/docs/benchmarks" in pages
    for page in pages:
        assert (out / f"{page}.html").is_file(), page
    # every docs page is reachable from the front page's table of contents (a page left out of the
    # toctree would still be built, but no reader would find it)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{page}.html"' in index for page in pages[1:]), (
        "a guide page is missing from the toctree"
    )
    # the furo theme, with the notebook cells' overflow rule
    assert "furo" in index and (out / "_static" / "bayesflip.css").is_file()
    notebooks = sorted(p.stem for p in (ROOT / "tutorials").glob("*.ipynb"))
    assert notebooks and all((out / "guide" / "tutorials" / f"{n}.html").is_file() for n in notebooks)

"""Sphinx configuration of the bayesflip documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (needs ``pip install -e '.[docs]'``).

Sources:

* ``api/``: the API reference, generated at every build by ``gen_api.py`` from the ``__all__``
  lists (autodoc + napoleon: the docstrings are Google style); it raises if a public name has no
  docstring.
* ``guide/``: copies of the repository's Markdown pages (README.md, docs/*.md, tutorials/README.md,
  benchmarks/README.md and the result tables it links) and the tutorial notebooks, laid out as in
  the repository so their relative links resolve; rendered by MyST-NB *without executing* the
  notebooks: the site shows the outputs committed with them (tests/test_tutorials.py executes them).

Theme: furo (a page width that follows the window, wide code cells scroll inside their box).
"""

import os
import re
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))
sys.path.insert(0, str(ROOT))  # document the checkout this conf.py belongs to, not another copy

import gen_api  # noqa: E402

import bayesflip  # noqa: E402

# -- the repository's pages, mirrored under guide/ ----------------------------------------------
# The docs/*.md pages except this site's own index.
DOC_PAGES = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
GUIDE_FILES = [
    "README.md",
    *(f"docs/{name}" for name in DOC_PAGES),
    "tutorials/README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tutorials").glob("*.ipynb")),
    "benchmarks/README.md",
    "benchmarks/results/speed.md",
    "benchmarks/results/suite.md",
]


# Result tables without a heading, reached only by links from the benchmarks README: rendered as
# orphan pages (front matter added to the copy), since a toctree entry needs a title.
ORPHANS = {"benchmarks/results/speed.md", "benchmarks/results/suite.md"}


def _mirror(dest: Path) -> None:
    wanted = set()
    for rel in GUIDE_FILES:
        src, dst = ROOT / rel, dest / rel
        wanted.add(dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        if rel in ORPHANS:
            data = b"---\norphan: true\n---\n\n" + data
        if not dst.exists() or dst.read_bytes() != data:  # keep mtimes: incremental builds
            dst.write_bytes(data)
    for path in dest.rglob("*"):
        if path.is_file() and path not in wanted:
            path.unlink()


_mirror(DOCS / "guide")
gen_api.write(DOCS / "api")

# -- project ------------------------------------------------------------------------------------
project = "bayesflip"
author = "bayesflip contributors"
copyright = "bayesflip contributors"  # noqa: A001 - Sphinx's name
release = bayesflip.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_nb",  # Markdown (MyST) pages and Jupyter notebooks
]

root_doc = "index"
# docs/*.md are rendered from their guide/ copies (so that their links to ../README.md resolve);
# gen_api.py and this file are not pages.
exclude_patterns = ["_build", *DOC_PAGES, "**/.ipynb_checkpoints"]

# -- autodoc / napoleon -------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Broken cross-references fail the (-W) build; types of other libraries in signatures are not ours
# to document and have no inventory here (no network), so they are the only ones ignored.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|np|tensorflow|tf|keras|tensorflow_probability|tfp|tfd|matplotlib|scipy|sklearn)(\..*)?",
    ),
    (r"py:.*", r"(typing|collections\.abc|os|pathlib|weakref|threading|enum)\..*"),
    (
        r"py:class",
        r"(Any|Callable|Sequence|Iterator|Iterable|Mapping|NamedTuple|PathLike|ndarray|Tensor|Layer|Model)",
    ),
    # ``ArrayLike`` in signatures: a NumPy array, tf.Tensor or nested lists (bayesflip/_typing.py)
    (r"py:class", r"(bayesflip\._typing\.)?ArrayLike"),
    # matplotlib's Figure, named in signatures without importing matplotlib (calibration/plots.py)
    (r"py:class", r"Figure"),
    # the draw and its application, internal types of the variational core that VariationalLayer's
    # methods for layer authors return (bayesflip/layers/_estimators.py; not public API)
    (r"py:class", r"(bayesflip\.layers\._estimators\.)?(Perturbation|LinearSample)"),
]
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# The Keras layer docstring sections (as in keras.layers.Dense): shapes as text, call arguments as a list.
napoleon_custom_sections = ["Input shape", "Output shape", ("Call arguments", "params_style")]

# -- MyST / MyST-NB -----------------------------------------------------------------------------
nb_execution_mode = "off"  # show the committed outputs; the test suite executes the notebooks
myst_heading_anchors = 3  # README links such as benchmarks/README.md#defaults-ablation
myst_enable_extensions = ["dollarmath"]

# -- HTML ---------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"bayesflip {release}"
html_static_path = ["_static"]
html_css_files = ["bayesflip.css"]


# -- docstring conventions napoleon does not read as written -----------------------------------
_ARG_SECTIONS = re.compile(r"^\s*(Args|Arguments|Parameters|Keyword Args|Keyword Arguments|Attributes):\s*$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_conventions(app, what, name, obj, options, lines):
    """Adapt two conventions of the bayesflip docstrings before napoleon parses them.

    * ``Example:`` directly followed by ``>>>`` lines (the doctest style of the code base): a
      blank line is inserted so docutils reads a doctest block rather than a paragraph.
    * An ``Args:`` entry naming several arguments whose list of names wraps onto the next line
      (``filters, kernel_size, ...,`` / ``groups, use_bias: as in ...``): the lines up to the
      colon are joined, so napoleon sees one entry.
    """
    i = 0
    while i < len(lines) - 1:
        if lines[i].strip() in ("Example:", "Examples:") and lines[i + 1].lstrip().startswith(">>>"):
            lines.insert(i + 1, "")
        i += 1
    i = 0
    while i < len(lines):
        if not _ARG_SECTIONS.match(lines[i]):
            i += 1
            continue
        i += 1
        entry = _indent(lines[i]) if i < len(lines) and lines[i].strip() else None
        while entry is not None and i < len(lines) and (not lines[i].strip() or _indent(lines[i]) >= entry):
            line = lines[i]
            if line.strip() and _indent(line) == entry:
                while (
                    ":" not in lines[i]
                    and i + 1 < len(lines)
                    and lines[i + 1].strip()
                    and _indent(lines[i + 1]) > entry
                ):
                    lines[i] = lines[i].rstrip() + " " + lines.pop(i + 1).strip()
            i += 1


def _public_target(app, env, node, contnode):
    """Resolve ``bayesflip.pkg._module.Name`` (a class's ``__module__`` path, e.g. in signatures and
    base classes) to the public ``bayesflip.pkg.Name`` it is documented under, when that exists."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("bayesflip.") or "._" not in target:
        return None
    parts = target.split(".")
    public = ".".join(p for p in parts[:-1] if not p.startswith("_")) + "." + parts[-1]
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], public, node, contnode)


def setup(app):
    app.connect("autodoc-process-docstring", _google_conventions, priority=400)  # before napoleon (500)
    app.connect("missing-reference", _public_target)

"""Generate the API reference pages of the documentation from the ``__all__`` lists.

Run by ``docs/conf.py`` at every build (``python docs/gen_api.py OUTDIR`` works too), so a name
added to any public ``__all__`` appears in the reference without editing the docs.

* A *public module* is ``bayesflip`` or any module below it whose dotted path has no component
  starting with ``_`` and which defines ``__all__``; each top-level one gets a page
  (``api/<name>.rst``), with its public submodules as sections of the same page.
* Every name of every public ``__all__`` appears: a function or class is documented in full
  (``autofunction`` / ``autoclass``) once, in its *canonical* public module (the shortest dotted
  path exporting the object, ``bayesflip`` itself last), and has a short entry linking there
  everywhere else it is exported (so ``:func:`bayesflip.posterior_mean``` resolves too); a
  constant is rendered as ``py:data`` with its ``#:`` comment;
  a submodule links to its section.
* :func:`check_docstrings` raises if a public function, class or constant has no documentation,
  which fails the build (``sphinx-build -W``) like any warning would.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import sys
from pathlib import Path

PACKAGE = "bayesflip"

#: Documentation for public constants whose defining module cannot carry a ``#:`` comment yet.
#: Each entry is "module.NAME" -> text; an entry whose constant has gained its own ``#:`` comment
#: is an error (remove it here), so this list can only shrink.
FALLBACK_DATA_DOCS: dict[str, str] = {}


def _is_public(modname: str) -> bool:
    return not any(part.startswith("_") for part in modname.split("."))


def all_modules() -> list:
    """Every module of the package (private ones included), imported."""
    pkg = importlib.import_module(PACKAGE)
    mods = [pkg]
    for info in pkgutil.walk_packages(pkg.__path__, PACKAGE + "."):
        if info.name.endswith("__main__"):
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def public_modules() -> list:
    """Public modules that define ``__all__``, in dotted-path order."""
    mods = [m for m in all_modules() if _is_public(m.__name__) and hasattr(m, "__all__")]
    return sorted(mods, key=lambda m: m.__name__)


def _kind(obj) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _attr_docs() -> dict[tuple[str, str], str]:
    """``#:`` comments (and docstrings after assignments) of module-level names, all modules."""
    from sphinx.pycode import ModuleAnalyzer

    docs = {}
    for mod in all_modules():
        try:
            found = ModuleAnalyzer.for_module(mod.__name__).find_attr_docs()
        except Exception:  # noqa: BLE001 - a module without source has no comments
            continue
        for (scope, name), lines in found.items():
            if scope == "":
                docs[(mod.__name__, name)] = "\n".join(lines).strip()
    return docs


def data_doc(modname: str, name: str, obj, attr_docs, mods) -> tuple[str | None, str | None]:
    """The documentation of constant ``modname.name``: (text, where it came from)."""
    for mod in mods:  # its own module first, then wherever the same object is defined
        if mod.__name__ != modname and getattr(mod, name, _MISSING) is not obj:
            continue
        text = attr_docs.get((mod.__name__, name))
        if text:
            return text, mod.__name__
    for mod in mods:
        key = f"{mod.__name__}.{name}"
        if key in FALLBACK_DATA_DOCS and getattr(mod, name, _MISSING) is obj:
            return FALLBACK_DATA_DOCS[key], key
    return None, None


_MISSING = object()


def inventory():
    """``{module name: [(name, kind, obj)]}`` and each documented object's canonical module."""
    mods = public_modules()
    entries = {m.__name__: [(n, _kind(getattr(m, n)), getattr(m, n)) for n in m.__all__] for m in mods}
    exporters: dict[int, list[str]] = {}
    for modname, items in entries.items():
        for _name, kind, obj in items:
            if kind in ("class", "function", "data"):
                exporters.setdefault(id(obj), []).append(modname)

    def rank(modname):
        return (modname == PACKAGE, modname.count("."), len(modname), modname)

    canonical = {key: min(names, key=rank) for key, names in exporters.items()}
    return mods, entries, canonical


def check_docstrings() -> None:
    """Raise ``RuntimeError`` naming every public object without documentation."""
    mods, entries, _ = inventory()
    every = all_modules()
    attr_docs = _attr_docs()
    missing, stale = [], []
    for modname, items in entries.items():
        for name, kind, obj in items:
            if kind in ("class", "function") and not (inspect.getdoc(obj) or "").strip():
                missing.append(f"{modname}.{name}")
            elif kind == "data":
                text, _ = data_doc(modname, name, obj, attr_docs, every)
                if not text:
                    missing.append(f"{modname}.{name} (a constant: document it with a '#:' comment)")
    for key in FALLBACK_DATA_DOCS:
        modname, _, name = key.rpartition(".")
        if attr_docs.get((modname, name)):
            stale.append(key)
    for mod in mods:
        if not (mod.__doc__ or "").strip():
            missing.append(f"{mod.__name__} (module docstring)")
    problems = []
    if missing:
        problems.append("public names without a docstring:\n  " + "\n  ".join(sorted(set(missing))))
    if stale:
        problems.append(
            "FALLBACK_DATA_DOCS entries now documented in the source (delete them from docs/gen_api.py):\n  "
            + "\n  ".join(stale)
        )
    if problems:
        raise RuntimeError("\n".join(problems))


def _signature(obj) -> str:
    """``(a, b=1, *, c=None)``: the parameters of ``obj`` without annotations."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    text = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))
    return text if "\n" not in text and len(text) < 300 else "(...)"


def _title(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def _section(mod, items, canonical, attr_docs, every, char: str) -> list[str]:
    modname = mod.__name__
    out = [_title(f"``{modname}``", char), f".. automodule:: {modname}\n"]
    aliases = []
    for name, kind, obj in items:
        full = f"{modname}.{name}"
        if kind == "module":
            aliases.append(f"* :py:mod:`{full} <{obj.__name__}>` (module)")
            continue
        home = canonical[id(obj)]
        if home != modname:
            # A short entry under the exported name, so that ``:func:`bayesflip.posterior_mean```
            # in a docstring resolves, pointing to the full entry.
            directive = {"class": "py:class", "function": "py:function", "data": "py:data"}[kind]
            out.append(
                f".. {directive}:: {name}{_signature(obj) if kind != 'data' else ''}\n"
                f"   :module: {modname}\n\n"
                f"   Exported here; documented as :py:obj:`{home}.{name}`.\n"
            )
            continue
        if kind == "class":
            out.append(f".. autoclass:: {full}\n   :members:\n")
        elif kind == "function":
            out.append(f".. autofunction:: {full}\n")
        else:
            text, _ = data_doc(modname, name, obj, attr_docs, every)
            body = "\n".join("   " + line if line else "" for line in (text or "").splitlines())
            value = repr(obj)
            if len(value) > 200 or "\n" in value:
                value = f"<{type(obj).__name__}>"
            out.append(f".. py:data:: {name}\n   :module: {modname}\n   :value: {value}\n\n{body}\n")
    if aliases:
        out.append(f"Submodules exported by ``{modname}``:\n")
        out.append("\n".join(aliases) + "\n")
    return out


def write(outdir: str | os.PathLike) -> list[str]:
    """Write ``api/index.rst`` and one page per top-level public module; return the page names."""
    check_docstrings()
    mods, entries, canonical = inventory()
    every = all_modules()
    attr_docs = _attr_docs()
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {m.__name__: m for m in mods}
    tops = [m for m in mods if m.__name__ == PACKAGE or m.__name__.count(".") == 1]
    pages = []
    for top in tops:
        page = "bayesflip" if top.__name__ == PACKAGE else top.__name__.split(".", 1)[1]
        subs = (
            []
            if top.__name__ == PACKAGE
            else [by_name[n] for n in sorted(by_name) if n.startswith(top.__name__ + ".")]
        )
        lines = _section(top, entries[top.__name__], canonical, attr_docs, every, "=")
        for sub in subs:
            lines += _section(sub, entries[sub.__name__], canonical, attr_docs, every, "-")
        text = ".. This page is generated by docs/gen_api.py: do not edit.\n\n" + "\n".join(lines)
        target = out / f"{page}.rst"
        if not target.exists() or target.read_text() != text:  # keep mtimes for incremental builds
            target.write_text(text)
        pages.append(page)
    index = (
        ".. This page is generated by docs/gen_api.py: do not edit.\n\n"
        + _title("API reference", "=")
        + "\nEvery name of ``bayesflip.__all__`` and of each public subpackage's ``__all__``, "
        "generated from the docstrings.\n\n"
        + ".. toctree::\n   :maxdepth: 2\n\n"
        + "".join(f"   {p}\n" for p in pages)
    )
    if not (out / "index.rst").exists() or (out / "index.rst").read_text() != index:
        (out / "index.rst").write_text(index)
    for stale_page in out.glob("*.rst"):
        if stale_page.stem not in pages and stale_page.stem != "index":
            stale_page.unlink()
    return pages


def public_names() -> list[str]:
    """Every ``module.name`` of every public ``__all__`` (what the reference must show)."""
    _, entries, _ = inventory()
    return [f"{mod}.{name}" for mod, items in entries.items() for name, _, _ in items]


if __name__ == "__main__":
    print("\n".join(write(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "api")))

"""The wheel a user installs: built from the sdist, `twine check`ed, installed into a fresh venv and imported."""

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile

import pytest

import bayesflip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

# Runs in the fresh venv, outside the repository: imports every module of the installed package.
_CHECK = """
import importlib, importlib.metadata as md, json, os, pkgutil, sys
import bayesflip
mods = [m.name for m in pkgutil.walk_packages(bayesflip.__path__, "bayesflip.")]
for m in mods:
    importlib.import_module(m)
print(json.dumps({"file": bayesflip.__file__, "version": bayesflip.__version__,
                  "metadata_version": md.version("bayesflip"), "modules": sorted(mods),
                  "typed": os.path.exists(os.path.join(os.path.dirname(bayesflip.__file__), "py.typed"))}))
"""


def _source_modules():
    out = []
    pkg = os.path.join(ROOT, "bayesflip")
    for dirpath, _, files in os.walk(pkg):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].replace(os.sep, ".")
                out.append(rel[: -len(".__init__")] if rel.endswith(".__init__") else rel)
    return sorted(m for m in out if m != "bayesflip")


def test_build_check_install_import(tmp_path):
    dist = tmp_path / "dist"
    # The isolated build environment needs setuptools>=77 from the package index.
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(dist), ROOT],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    assert wheels[0].name.startswith(f"bayesflip-{bayesflip.__version__}-")
    subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with zipfile.ZipFile(wheels[0]) as z:
        assert "bayesflip/py.typed" in z.namelist()

    # A fresh venv; its dependencies come from this environment's site-packages through a
    # .pth path entry (TensorFlow is not reinstalled). .pth files *inside* that folder are not
    # processed from a path entry, so the editable install of the checkout stays invisible.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with open(os.path.join(site, "deps.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, str(wheels[0])],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2", MPLBACKEND="Agg")
    out = subprocess.run(
        [str(python), "-c", _CHECK],
        check=True,
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env=env,
        timeout=300,
    )
    import json

    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["file"].startswith(site), info["file"]  # the wheel's copy, not the checkout
    assert info["version"] == info["metadata_version"] == bayesflip.__version__
    assert info["typed"]
    assert info["modules"] == _source_modules()  # the wheel holds every module of the source tree

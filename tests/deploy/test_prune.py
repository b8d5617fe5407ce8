"""The image build's pruning (deploy/docker/prune.py) on small environments: files, and real
shared libraries of the installed wheels for stripping and pyarrow's parts."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy
import pytest

from .conftest import DEPLOY


def prune() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prune", DEPLOY / "docker" / "prune.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_copies_of_one_library_become_links_and_others_stay(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("libtbb.so", "libtbb.so.12", "libtbb.so.12.20"):
        (lib / name).write_bytes(b"tbb 12.20")
    (lib / "libtcm.so.1").write_bytes(b"tcm 1")
    (lib / "libtcm.so").write_bytes(b"tcm 0, another build")
    prune().link_duplicate_libraries(tmp_path)
    assert (lib / "libtbb.so").readlink() == Path("libtbb.so.12.20")
    assert (lib / "libtbb.so.12").readlink() == Path("libtbb.so.12.20")
    assert (lib / "libtbb.so.12").read_bytes() == b"tbb 12.20"
    assert not (lib / "libtbb.so.12.20").is_symlink()
    assert not (lib / "libtcm.so").is_symlink()  # same name, different bytes: kept
    assert (lib / "libtcm.so").read_bytes() == b"tcm 0, another build"


def test_test_suites_and_headers_go_but_loanrisks_package_data_stays(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    for path in (
        "pandas/tests/frame/test_x.py",
        "pyarrow/include/arrow/api.h",
        "numpy/_core/include/numpy/ndarray.h",
        "scipy/linalg/cython_blas.pxd",
        "loanrisk/templates/tests/page.html",
        "pandas/core/frame.py",
    ):
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text("x")
    module = prune()
    module.remove_test_suites(site)
    module.remove_sources(site)
    left = sorted(str(p.relative_to(site)) for p in site.rglob("*") if p.is_file())
    assert left == ["loanrisk/templates/tests/page.html", "pandas/core/frame.py"]


SITE = Path(numpy.__file__).parents[1]
#: numpy's libgfortran: patchelf-edited by its wheel's build, so ``strip`` misaligns it.
GFORTRAN = next((SITE / "numpy.libs").glob("libgfortran-*.so*"))
#: pyarrow's Flight glue: shipped with its symbol table, and linked to libarrow_flight.
FLIGHT_GLUE = next((SITE / "pyarrow").glob("libarrow_python_flight.so.*.*"))


def loads(library: Path) -> bool:
    """Whether the dynamic loader maps ``library`` (in a child: no copy stays loaded here)."""
    code = "import ctypes, sys; ctypes.CDLL(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", code, str(library)], check=False).returncode == 0


def test_a_library_strip_would_misalign_is_kept_as_shipped_and_the_loader_agrees(
    tmp_path: Path,
) -> None:
    assert shutil.which("strip") and shutil.which("readelf"), "binutils: strip and readelf"
    venv = tmp_path / "venv"
    venv.mkdir()
    shutil.copy(GFORTRAN, venv / GFORTRAN.name)
    shutil.copy(FLIGHT_GLUE, venv / FLIGHT_GLUE.name)
    stripped = tmp_path / "stripped.so"
    subprocess.run(["strip", "--strip-unneeded", "-o", stripped, GFORTRAN], check=True)
    module = prune()
    assert module.loadable(GFORTRAN) and loads(GFORTRAN)
    assert not module.loadable(stripped) and not loads(stripped)
    module.strip_libraries(venv)
    assert (venv / GFORTRAN.name).read_bytes() == GFORTRAN.read_bytes()
    glue = venv / FLIGHT_GLUE.name
    assert glue.stat().st_size < FLIGHT_GLUE.stat().st_size and module.loadable(glue)


def test_pyarrows_unused_parts_go_unless_a_library_that_stays_needs_one(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    (site / "pyarrow").mkdir(parents=True)
    names = ("_flight.cpython-311-x86_64-linux-gnu.so", "libarrow_s3.so.2600", "parquet.py")
    for name in names:
        (site / "pyarrow" / name).write_text("x")
    module = prune()
    module.remove_pyarrow_parts(tmp_path, site)
    assert [p.name for p in (site / "pyarrow").iterdir()] == ["parquet.py"]
    shutil.copy(FLIGHT_GLUE, site / "pyarrow" / "libkept.so")  # needs libarrow_flight
    (site / "pyarrow" / "libarrow_flight.so.2600").write_text("x")
    with pytest.raises(SystemExit, match=r"libkept\.so needs libarrow_flight"):
        module.remove_pyarrow_parts(tmp_path, site)

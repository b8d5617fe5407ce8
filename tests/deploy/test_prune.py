"""The image build's pruning (deploy/docker/prune.py) on a small environment of files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

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

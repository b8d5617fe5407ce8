"""Remove from the image's virtual environment what loanrisk never reads, printing what each
cut saved, then prove that what remains still imports (docs/deploy-aws.md#image-size). Run by
the image's build with the venv's Python: ``python prune.py VENV``; it exits non-zero when a
library it kept no longer loads.

- The conic, QP and NLP solvers cvxpy installs (SCS with its 110 MB MKL build, OSQP, Clarabel,
  HiGHS, sparsediffpy with its own OpenBLAS): cvxpy is imported only because optbinning
  imports it; loanrisk bins with optbinning's CP solver (OR-Tools), and cvxpy loads a solver
  only when asked to use it. (The serving image has none of them: its lock has no optbinning.)
- pip and setuptools: the image installs nothing at run time.
- pyarrow's Flight (RPC), S3 (loanrisk reaches S3 through s3fs; ``pyarrow.fs`` treats its S3
  module as optional), Substrait front end and C++ test module. The Substrait library itself
  stays: every pyarrow module links to it.
- The packages' own test suites, C/C++ headers, Cython sources and static libraries.
- The symbol tables of shared libraries (``strip --strip-unneeded``, binutils in the build
  stage only). A library whose stripped copy would not load (patchelf-edited ones, such as
  numpy's and scipy's OpenBLAS: strip misaligns their segments) is kept as shipped.
- Copies of one shared library under its version names (a wheel cannot hold a symbolic link):
  each becomes a link to one of them.

The check at the end imports every compiled module in the venv and the packages loanrisk uses
through them; any failure fails the build.
"""

from __future__ import annotations

import filecmp
import importlib
import importlib.metadata
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

UNUSED = ("scs", "osqp", "clarabel", "highspy", "sparsediffpy", "pip", "setuptools")
SOURCES = ("*.h", "*.hpp", "*.pxd", "*.pyx", "*.a")
#: pyarrow's parts loanrisk never loads (globs in the pyarrow package).
PYARROW_UNUSED = (
    "_flight.*.so",
    "flight.py",
    "libarrow_flight.so*",
    "libarrow_python_flight.so*",
    "_s3fs.*.so",
    "libarrow_s3.so*",
    "_substrait.*.so",
    "substrait.py",
    "_pyarrow_cpp_tests.*.so",
)
#: Imported after pruning, whatever the lock: what loanrisk loads through compiled code.
REQUIRED = (
    "numpy",
    "scipy.stats",
    "scipy.optimize",
    "pandas",
    "sklearn",
    "sklearnex",
    "daal4py",
    "onedal",
    "xgboost",
    "pyarrow.parquet",
    "pyarrow.dataset",
    "pyarrow.csv",
    "pyarrow.fs",
    "grpc",
    "uvloop",
    "httptools",
    "cryptography.hazmat.bindings._rust",
    "pydantic_core",
    "yaml",
    "loanrisk.cli",
)
#: Imported when their distribution is in the lock (the full and Dask images).
OPTIONAL = {
    "optbinning": "optbinning",
    "ortools": "ortools.sat.python.cp_model",
    "optuna": "optuna",
    "cvxpy": "cvxpy",
    "dask": "dask.dataframe",
    "distributed": "distributed",
}
#: Compiled modules that do not import in any install, pruned or not: they need what an image
#: has no use for (Tk, MPI), or fail as shipped (scipy 1.17's, a leftover its package never
#: imports).
UNIMPORTABLE = (
    "PIL._imagingtk",
    "matplotlib.backends._tkagg",
    "daal4py.mpi_transceiver",
    "scipy.linalg._matfuncs_sqrtm_triu",
)


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def remove(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def shared_libraries(venv: Path) -> list[Path]:
    """The ELF shared objects (extension modules and libraries), symbolic links left out."""
    found = []
    for path in venv.rglob("*.so*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def link_duplicate_libraries(venv: Path) -> None:
    """libtbb.so, libtbb.so.12 and libtbb.so.12.20 with the same bytes: the first two become
    links to the last (the longest name)."""
    for directory in {p.parent for p in venv.rglob("lib*.so*")}:
        libraries = sorted(
            (p for p in directory.glob("lib*.so*") if p.is_file() and not p.is_symlink()),
            key=lambda p: len(p.name),
            reverse=True,
        )
        for i, full in enumerate(libraries):
            for alias in libraries[i + 1 :]:
                same = alias.name.split(".so")[0] == full.name.split(".so")[0]
                if same and not alias.is_symlink() and filecmp.cmp(alias, full, shallow=False):
                    alias.unlink()
                    alias.symlink_to(full.name)


def main(venv: Path) -> None:
    (site,) = venv.glob("lib/python3*/site-packages")
    steps = [
        ("unused solvers, pip", lambda: pip_uninstall(venv)),
        ("pyarrow's Flight, S3 and Substrait modules", lambda: remove_pyarrow_parts(venv, site)),
        ("test suites", lambda: remove_test_suites(site)),
        ("headers and sources", lambda: remove_sources(site)),
        ("symbol tables", lambda: strip_libraries(venv)),
        ("duplicate libraries", lambda: link_duplicate_libraries(venv)),
    ]
    before = size(venv)
    print(f"venv before pruning: {before / 1e6:.0f} MB")
    for name, step in steps:
        start = size(venv)
        step()
        print(f"  {name}: -{(start - size(venv)) / 1e6:.0f} MB")
    print(f"venv after pruning: {size(venv) / 1e6:.0f} MB")
    failures = check_imports(site)
    if failures:
        for name, problem in failures.items():
            print(f"  cannot import {name}: {problem}", file=sys.stderr)
        sys.exit(f"the pruned venv lost {len(failures)} module(s): see above")
    print("every compiled module and required package imports")


def own(path: Path, site: Path) -> bool:
    """Not loanrisk's (its package data stays whole)."""
    return path.relative_to(site).parts[0] != "loanrisk"


def pip_uninstall(venv: Path) -> None:
    python = venv / "bin" / "python"
    installed = [name for name in UNUSED if _installed(name)]  # pip refuses an absent one
    if installed:
        subprocess.run(
            [python, "-m", "pip", "uninstall", "--quiet", "--yes", *installed], check=True
        )


def _installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def remove_pyarrow_parts(venv: Path, site: Path) -> None:
    """Remove :data:`PYARROW_UNUSED`, refusing if a library that stays needs one of them
    (its ``DT_NEEDED``, as ``readelf -d`` shows it)."""
    removed = [p for pattern in PYARROW_UNUSED for p in (site / "pyarrow").glob(pattern)]
    names = {p.name for p in removed}
    remove(removed)
    for library in shared_libraries(venv):
        needed = names & set(_needed(library))
        if needed:
            raise SystemExit(f"{library} needs {', '.join(sorted(needed))}: keep it")


def _needed(library: Path) -> list[str]:
    shown = subprocess.run(
        ["readelf", "--dynamic", "--wide", str(library)], capture_output=True, text=True, check=True
    )
    return [
        line.rsplit("[", 1)[1].rstrip("]")
        for line in shown.stdout.splitlines()
        if "(NEEDED)" in line
    ]


def remove_test_suites(site: Path) -> None:
    remove([p for p in site.glob("*/**/tests") if own(p, site)])


def remove_sources(site: Path) -> None:
    remove([p for p in site.glob("**/include") if own(p, site)])
    remove([p for pattern in SOURCES for p in site.rglob(pattern) if own(p, site)])


def strip_libraries(venv: Path) -> None:
    """``strip --strip-unneeded`` every shared library whose stripped copy still loads; the
    ones kept as shipped are named."""
    kept: set[str] = set()
    with tempfile.TemporaryDirectory() as work:
        stripped = Path(work, "stripped")
        for library in shared_libraries(venv):
            subprocess.run(
                ["strip", "--strip-unneeded", "-o", str(stripped), str(library)], check=True
            )
            if not loadable(stripped):
                kept.add(library.name)
                continue
            if stripped.stat().st_size < library.stat().st_size:
                shutil.copymode(library, stripped)
                os.replace(stripped, library)
    if kept:
        names = ", ".join(sorted(kept))
        print(f"    kept unstripped (stripping would misalign their segments): {names}")


def loadable(library: Path) -> bool:
    """Whether the dynamic loader can map ``library``'s segments: each loadable segment's
    file offset and address agree modulo its alignment (the ELF-64 program header table,
    System V ABI; the loader's "ELF load command address/offset not page-aligned")."""
    with library.open("rb") as f:
        header = f.read(64)
        (phoff,) = struct.unpack_from("<Q", header, 0x20)
        entry_size, count = struct.unpack_from("<HH", header, 0x36)
        f.seek(phoff)
        table = f.read(entry_size * count)
    for i in range(count):
        kind, _, offset, address, _, _, _, align = struct.unpack_from(
            "<IIQQQQQQ", table, i * entry_size
        )
        if kind == 1 and align > 1 and offset % align != address % align:  # PT_LOAD
            return False
    return True


def check_imports(site: Path) -> dict[str, str]:
    """Import :data:`REQUIRED`, the installed :data:`OPTIONAL` and every compiled module in
    ``site``; what failed, with its error."""
    wanted = [*REQUIRED, *(m for d, m in OPTIONAL.items() if _installed(d))]
    for library in sorted(site.rglob("*.so")):
        parts = library.relative_to(site).parts
        if ".cpython-" in library.name or ".abi3." in library.name:
            name = ".".join((*parts[:-1], library.name.split(".")[0]))
            if name not in UNIMPORTABLE:
                wanted.append(name)
    failures = {}
    for name in wanted:
        try:
            importlib.import_module(name)
        except Exception as exc:  # every failure is reported, not just the first
            failures[name] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
    return failures


if __name__ == "__main__":
    main(Path(sys.argv[1]))

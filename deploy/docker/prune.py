"""Remove from the image's virtual environment what loanrisk never reads, printing what each
cut saved (docs/deploy-aws.md#image-size). Run by the image's build with the venv's Python:
``python prune.py VENV``.

- The conic and QP solvers cvxpy installs (SCS with its 110 MB MKL build, OSQP, Clarabel,
  HiGHS): cvxpy is imported only because optbinning imports it; loanrisk bins with
  optbinning's CP solver (OR-Tools), and cvxpy loads a solver only when asked to use it.
- pip and setuptools: the image installs nothing at run time.
- The packages' own test suites, C/C++ headers, Cython sources and static libraries.
- Copies of one shared library under its version names (a wheel cannot hold a symbolic link):
  each becomes a link to one of them.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

UNUSED = ("scs", "osqp", "clarabel", "highspy", "pip", "setuptools")
SOURCES = ("*.h", "*.hpp", "*.pxd", "*.pyx", "*.a")


def size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def remove(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


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
        ("test suites", lambda: remove_test_suites(site)),
        ("headers and sources", lambda: remove_sources(site)),
        ("duplicate libraries", lambda: link_duplicate_libraries(venv)),
    ]
    before = size(venv)
    print(f"venv before pruning: {before / 1e6:.0f} MB")
    for name, step in steps:
        start = size(venv)
        step()
        print(f"  {name}: -{(start - size(venv)) / 1e6:.0f} MB")
    print(f"venv after pruning: {size(venv) / 1e6:.0f} MB")


def own(path: Path, site: Path) -> bool:
    """Not loanrisk's (its package data stays whole)."""
    return path.relative_to(site).parts[0] != "loanrisk"


def pip_uninstall(venv: Path) -> None:
    python = venv / "bin" / "python"
    subprocess.run([python, "-m", "pip", "uninstall", "--quiet", "--yes", *UNUSED], check=True)


def remove_test_suites(site: Path) -> None:
    remove([p for p in site.glob("*/**/tests") if own(p, site)])


def remove_sources(site: Path) -> None:
    remove([p for p in site.glob("**/include") if own(p, site)])
    remove([p for pattern in SOURCES for p in site.rglob(pattern) if own(p, site)])


if __name__ == "__main__":
    main(Path(sys.argv[1]))

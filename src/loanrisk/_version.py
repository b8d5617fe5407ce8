"""The installed loanrisk's version, in a module that imports nothing of loanrisk.

Modules inside the package read it from here: importing the package root from below it
would run an import back up the layers (docs/architecture.md).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("loanrisk")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

"""A batch job's prediction-log rows, published with its results or not at all.

A job writes its rows (the log's own layout, ``model=<m>/day=<d>/<file>.parquet``) under a
staging folder of its own, ``<log directory>/staging/<token>``, which no report reads. Once its
results file is published, :func:`publish_staged` moves each staged file into the log under
the same name (a copy written whole, then the staged file removed: redone after a kill, it
rewrites the same names and adds no row twice). A job that fails, is cancelled or is killed
never publishes: the job's cleanup removes its folder (:func:`discard_staged`).
"""

from __future__ import annotations

from loanrisk.errors import NotFound
from loanrisk.storage.base import Storage

#: The folder of the log directory that holds staged rows.
STAGING = "staging"


def staging_directory(storage: Storage, log_directory: str, token: str) -> str:
    """The staging folder of the job ``token`` names (a job's own random token)."""
    return storage.join(log_directory, STAGING, token)


def publish_staged(storage: Storage, log_directory: str, token: str) -> int:
    """Move the staged files of job ``token`` into the log; the number of files moved."""
    folder = staging_directory(storage, log_directory, token)
    moved = 0
    try:
        files = list(storage.walk_files(folder))
    except NotFound:
        return 0
    for path in files:
        if not path.endswith(".parquet"):
            continue
        relative = path[len(folder) :].lstrip("/")
        storage.write_bytes(storage.join(log_directory, relative), storage.read_bytes(path))
        storage.delete(path)
        moved += 1
    storage.delete(folder)
    return moved


def discard_staged(storage: Storage, log_directory: str, token: str) -> None:
    """Remove the staged rows of job ``token`` (absent is fine)."""
    storage.delete(staging_directory(storage, log_directory, token))

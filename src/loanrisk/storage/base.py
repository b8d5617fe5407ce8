"""The storage interface and the confinement of caller-supplied paths.

Paths inside a storage are POSIX-style and relative to its root ("data/datasets/x.json").
Everything that comes from a caller goes through :meth:`Storage.resolve` first: ``..`` that
leaves the root, absolute paths and URIs outside the root, and (on local disks) symlinks that
lead outside are refused with :class:`~loanrisk.errors.PathNotAllowed`.
"""

from __future__ import annotations

import hashlib
import posixpath
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import IO

from loanrisk.errors import InvalidInput, LoanRiskError, PathNotAllowed
from loanrisk.storage.problems import Listing

#: Longest name of one file or folder: what every backend stores, with room for the hidden
#: temporary name of an atomic write (file systems allow 255 bytes).
MAX_NAME_BYTES = 200
#: Longest path inside a storage.
MAX_PATH_BYTES = 1024
#: Bytes read at a time when a stored file is hashed (:meth:`Storage.digest`).
HASH_CHUNK = 1 << 20


def normalise_relative(path: str) -> str:
    """Normalise a relative path; refuse one that climbs out (``a/../../b``) or is absolute,
    and one no storage can hold (a NUL byte, over-long names)."""
    text = path.replace("\\", "/").strip()
    if "\x00" in text:
        raise PathNotAllowed("path contains a NUL byte")
    if len(text.encode()) > MAX_PATH_BYTES:
        raise InvalidInput(f"path of {len(text.encode())} bytes: at most {MAX_PATH_BYTES}")
    if any(len(part.encode()) > MAX_NAME_BYTES for part in text.split("/")):
        raise InvalidInput(f"a name in path {text[:60]!r}... is over {MAX_NAME_BYTES} bytes")
    if text.startswith("/"):
        raise PathNotAllowed(f"absolute path {path!r} is not inside the storage root")
    norm = posixpath.normpath(text) if text else "."
    if norm == ".." or norm.startswith("../"):
        raise PathNotAllowed(f"path {path!r} leaves the storage root")
    return "" if norm == "." else norm


class Storage(ABC):
    """A rooted store of files: a local directory, an S3 prefix, or memory (for tests).

    Writes are atomic: a reader sees the old content or the new, never a part, and a write
    that fails (or a process that dies while writing) leaves nothing under the final name.
    """

    #: The root as a URL (``file:///abs/dir``, ``s3://bucket/prefix``, ``memory://name``).
    url: str

    def resolve(self, user_path: str) -> str:
        """Turn a caller-supplied path (relative, or absolute/URI inside the root) into a
        storage path. Raises :class:`PathNotAllowed` for anything outside the root."""
        if "\x00" in user_path:  # before any OS call: they raise ValueError on one
            raise PathNotAllowed("path contains a NUL byte")
        return self._confine(normalise_relative(self._strip_root(user_path)))

    def _strip_root(self, user_path: str) -> str:
        return user_path

    def _confine(self, relative: str) -> str:
        return relative

    def join(self, *parts: str) -> str:
        """Join trusted path parts (refusing any that climb out)."""
        return normalise_relative("/".join(p.strip("/") for p in parts if p.strip("/")))

    @abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Whole content; raises NotFound when absent, StorageError on backend failure."""

    @abstractmethod
    def open_read(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream for reading, for content too large to hold in memory."""

    @abstractmethod
    def open_write(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """A binary stream whose content appears under ``path`` only when the block exits
        without an exception; otherwise nothing is left behind."""

    def digest(self, path: str) -> tuple[str, int]:
        """The SHA-256 (hex) and size in bytes of the file at ``path``, read
        :data:`HASH_CHUNK` bytes at a time: never whole in memory. Raises as
        :meth:`open_read` does."""
        sha256, size = hashlib.sha256(), 0
        with self.open_read(path) as stream:
            while chunk := stream.read(HASH_CHUNK):
                sha256.update(chunk)
                size += len(chunk)
        return sha256.hexdigest(), size

    def write_bytes(self, path: str, data: bytes) -> None:
        """Atomically (re)place ``path`` with ``data``."""
        with self.open_write(path) as stream:
            stream.write(data)

    @abstractmethod
    def create_exclusive(self, path: str, data: bytes) -> bool:
        """Create ``path`` with ``data`` only if nothing is there: True if this call created it,
        False if it already existed. Safe across processes and machines (the basis of
        registry version numbers and locks)."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a file (not a directory) exists at ``path``."""

    def list(self, path: str = "") -> list[str]:
        """Names (not paths) of the files and directories directly under ``path``, sorted;
        empty when ``path`` does not exist. Entries that cannot be read safely (a symlink
        leading out of a local storage) are left out: :meth:`listing` names them."""
        return self.listing(path).names

    @abstractmethod
    def listing(self, path: str = "") -> Listing:
        """The entries directly under ``path`` (empty when it does not exist): the names
        served (:meth:`list`), which of them are folders and which are symlinks, and the
        entries left out, each named as a problem (a symlink leading out of a local
        storage: ``link``). The one test of what a listing may serve: :meth:`list`,
        :meth:`walk` and everything built on them use it."""

    def walk(
        self, path: str = "", *, on_error: Callable[[str, LoanRiskError], None] | None = None
    ) -> Iterator[tuple[str, Listing]]:
        """Each folder under ``path`` with its :meth:`listing`: ``path`` first, then its
        folders depth-first in name order. A symlink is listed, never followed (a link to a
        folder is not descended, so a loop of links ends). A folder that cannot be listed
        raises, or, given ``on_error``, is passed to it with the error and skipped."""
        try:
            found = self.listing(path)
        except LoanRiskError as exc:
            if on_error is None:
                raise
            on_error(path, exc)
            return
        yield path, found
        for name in found.names:
            if name in found.folders:
                yield from self.walk(self.join(path, name), on_error=on_error)

    @abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file, or a directory with everything under it; absent is not an error."""

    def walk_files(self, path: str = "") -> Iterator[str]:
        """Every file under ``path`` (recursively), as storage paths, sorted."""
        for name in self.list(path):
            child = self.join(path, name)
            if self.exists(child):
                yield child
            else:
                yield from self.walk_files(child)

"""FsspecStorage: local directories and object stores (s3://) behind one :class:`Storage`."""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any, cast

import fsspec

from loanrisk.errors import InvalidInput, NotFound, PathNotAllowed, StorageError, describe_error
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Listing, Problem

if TYPE_CHECKING:
    from pydantic import JsonValue

#: The hidden temporary name of a local atomic write (:func:`_temporary_beside`).
_TEMPORARY = re.compile(r"^\..+\.tmp-[0-9a-f]{32}$")
#: A temporary file this old belongs to a writer that died (no write takes an hour).
ABANDONED_AFTER = 3600.0


def _temporary_beside(full: str) -> str:
    """A new hidden temporary name beside ``full`` for the bytes of a local write, which
    :meth:`FsspecStorage.collect_abandoned_writes` removes if its writer dies."""
    directory, name = os.path.split(full)
    return os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex}")


#: What link(2) answers where a file system has no hard links (some network shares).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})


def _create_whole(full: str, data: bytes) -> bool:
    """Create ``full`` holding ``data`` only if it is absent, never visible part-written: the
    bytes go to a temporary file beside it, then link(2) gives them the name, failing if it
    exists (a reader of a lock file created with O_EXCL then written could find it empty,
    and take an empty lock for a dead writer's). Where the file system has no hard links,
    O_EXCL then the write. False if ``full`` exists."""
    temporary = _temporary_beside(full)
    with open(temporary, "xb") as stream:
        stream.write(data)
    try:
        os.link(temporary, full)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        fd = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
    finally:
        os.unlink(temporary)
    return True


@contextlib.contextmanager
def _backend_errors(path: str) -> Iterator[None]:
    try:
        yield
    except FileExistsError:
        raise  # an answer, not a failure: create_exclusive lost the race
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a file") from None
    except NotADirectoryError:
        raise InvalidInput(f"a part of {path} is a file, not a directory") from None
    except PermissionError as exc:
        raise StorageError(f"permission denied on {path}: {describe_error(exc)}") from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InvalidInput(f"a name in {path} is too long for the storage") from None
        raise StorageError(f"storage failed on {path}: {describe_error(exc)}") from None
    except ValueError as exc:
        raise StorageError(f"storage failed on {path}: {describe_error(exc)}") from None


class FsspecStorage(Storage):
    """A :class:`Storage` rooted at a local directory, ``s3://bucket/prefix`` or
    ``az://container/prefix`` (Azure Blob).

    Local writes go to a hidden temporary file in the same directory, are fsync'ed, and are
    renamed over the target (``os.replace`` is atomic on POSIX). Object-store writes are
    spooled to a local temporary file and uploaded in one operation after the writer is done;
    the store makes the object visible only when the upload completes.
    """

    def __init__(self, url: str, *, storage_options: dict[str, JsonValue] | None = None) -> None:
        protocol = url.split("://", 1)[0] if "://" in url else "file"
        options = dict(storage_options or {})
        if protocol == "file":
            root = os.path.realpath(url.removeprefix("file://"))
            os.makedirs(root, exist_ok=True)
            self._root = root
            self.url = f"file://{root}"
        else:
            # Listings are never cached: another replica may have written since.
            options.setdefault("use_listings_cache", False)
            self._root = url.split("://", 1)[1].rstrip("/")
            self.url = f"{protocol}://{self._root}"
        self.protocol = protocol
        self.fs: Any = fsspec.filesystem(protocol, **options)

    # -- paths -------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def _strip_root(self, user_path: str) -> str:
        text = user_path.strip()
        if self.is_local:
            text = text.removeprefix("file://")
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
                # s3://, az://: another storage, never a folder of this one named "s3:".
                raise PathNotAllowed(f"location {user_path!r} is outside the storage root")
            if text.startswith("/"):
                real = os.path.realpath(text)
                if self._inside(real):
                    return os.path.relpath(real, self._root)
                raise PathNotAllowed(f"path {user_path!r} is outside the storage root")
            return text
        if "://" in text:
            scheme, rest = text.split("://", 1)
            rest = posixpath.normpath(rest) if rest else rest
            if scheme == self.protocol and (
                rest == self._root or rest.startswith(self._root + "/")
            ):
                return rest[len(self._root) :].lstrip("/")
            raise PathNotAllowed(f"location {user_path!r} is outside the storage root {self.url}")
        return text

    def _inside(self, real: str) -> bool:
        """Whether the resolved OS path ``real`` (no link left in it) is in the root: the one
        confinement test of local paths, for reads and writes, listings and walks."""
        return real == self._root or real.startswith(self._root + os.sep)

    def _confine(self, relative: str) -> str:
        if self.is_local and not self._inside(os.path.realpath(os.path.join(self._root, relative))):
            raise PathNotAllowed(f"path {relative!r} leads outside the storage root")
        return relative

    def _full(self, path: str) -> str:
        relative = self._confine(self.join(path))
        return posixpath.join(self._root, relative) if relative else self._root

    def local_path(self, path: str) -> str:
        """The OS path of a storage path (local storage only)."""
        if not self.is_local:
            raise StorageError(f"{self.url} is not a local directory")
        return self._full(path)

    # -- operations --------------------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        full = self._full(path)
        with _backend_errors(path):
            data: bytes = self.fs.cat_file(full)
            return data

    @contextlib.contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        full = self._full(path)
        with _backend_errors(path):
            stream = self.fs.open(full, "rb")
        try:
            yield stream
        finally:
            stream.close()

    @contextlib.contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        full = self._full(path)
        if self.is_local:
            with self._local_write(full, path) as stream:
                yield stream
            return
        # Spool locally, upload once the block succeeded: S3 and Azure expose an object only
        # when its upload completes, so a failure anywhere leaves nothing under the name.
        with tempfile.NamedTemporaryFile(prefix="loanrisk-upload-") as spool:
            yield cast(IO[bytes], spool)
            spool.flush()
            with _backend_errors(path):
                self.fs.put_file(spool.name, full)

    def write_bytes(self, path: str, data: bytes) -> None:
        if self.is_local:
            super().write_bytes(path, data)
            return
        full = self._full(path)
        with _backend_errors(path):
            self.fs.pipe_file(full, data)  # one request: visible whole or not at all

    @contextlib.contextmanager
    def _local_write(self, full: str, path: str) -> Iterator[IO[bytes]]:
        with _backend_errors(path):
            os.makedirs(os.path.dirname(full), exist_ok=True)
        temporary = _temporary_beside(full)
        try:
            with _backend_errors(path):
                stream = open(temporary, "xb")  # noqa: SIM115 (closed below)
            with stream:
                yield stream  # the caller's errors are the caller's: not mapped here
                with _backend_errors(path):
                    stream.flush()
                    os.fsync(stream.fileno())
            with _backend_errors(path):
                os.replace(temporary, full)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)

    def collect_abandoned_writes(self, *, older_than: float = ABANDONED_AFTER) -> int:
        """Remove the temporary files of local writes whose writer died (killed while
        publishing) more than ``older_than`` seconds ago; how many were removed. Object
        stores have none: their uploads are spooled outside the store."""
        if not self.is_local:
            return 0
        removed = 0
        cutoff = time.time() - older_than
        for directory, _, names in os.walk(self._root):
            for name in names:
                if not _TEMPORARY.match(name):
                    continue
                path = os.path.join(directory, name)
                with contextlib.suppress(FileNotFoundError):  # another replica was quicker
                    if os.lstat(path).st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed

    def create_exclusive(self, path: str, data: bytes) -> bool:
        full = self._full(path)
        try:
            if self.is_local:
                with _backend_errors(path):
                    os.makedirs(os.path.dirname(full), exist_ok=True)
                    return _create_whole(full, data)
            # S3 and Azure: a conditional PUT (If-None-Match: *), decided by the store itself.
            with _backend_errors(path), self.fs.open(full, "xb") as stream:
                stream.write(data)
            return True
        except FileExistsError:
            return False

    def exists(self, path: str) -> bool:
        full = self._full(path)
        with _backend_errors(path):
            return bool(self.fs.isfile(full))

    def listing(self, path: str = "") -> Listing:
        """The entries under ``path``; on a local storage, a symlink leading out of the root
        is left out and named as a problem (reading it by name is refused:
        :class:`PathNotAllowed`), so one such link never takes a whole listing down."""
        full = self._full(path)
        with _backend_errors(path):
            try:
                entries = self.fs.ls(full, detail=True)
            except FileNotFoundError:
                return Listing([])
        kinds: dict[str, tuple[str, bool]] = {}
        for entry in entries:
            name = posixpath.basename(str(entry["name"]).rstrip("/"))
            # Hidden names are in-flight temporary files of atomic writes.
            if name and not name.startswith("."):
                kind = str(entry.get("type"))
                if kinds.get(name, ("", False))[0] == "directory":
                    kind = "directory"  # an object store's object and prefix of one name
                kinds[name] = (kind, bool(entry.get("islink")))
        names, links, problems = [], set(), []
        for name in sorted(kinds):
            kind, link = kinds[name]
            # ``full`` is confined, so only a symlink can lead out.
            if link and not self._inside(os.path.realpath(os.path.join(full, name))):
                problems.append(
                    Problem(
                        kind="link",
                        path=self.join(path, name),
                        message="a symlink leading outside the storage root: skipped; "
                        "remove it, or copy what it names into the storage",
                    )
                )
                continue
            names.append(name)
            if link:
                links.add(name)
        folders = frozenset(n for n in names if kinds[n][0] == "directory" and n not in links)
        return Listing(names, problems, folders=folders, links=frozenset(links))

    def delete(self, path: str) -> None:
        full = self._full(path)
        with _backend_errors(path):
            if self.fs.exists(full):
                self.fs.rm(full, recursive=True)

"""MemoryStorage: the in-process test double of :class:`Storage`, with the same contract."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from loanrisk.errors import NotFound, StorageError
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Listing


class MemoryStorage(Storage):
    """Files in a dict, guarded by a lock. Directories exist implicitly, as on S3."""

    def __init__(self, name: str = "test") -> None:
        self.url = f"memory://{name}"
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        #: Set to refuse every write, as a read-only volume or a revoked write role does.
        self.read_only = False

    def _writable(self, path: str) -> None:
        if self.read_only:
            raise StorageError(f"permission denied on {path}: read-only storage")

    def _strip_root(self, user_path: str) -> str:
        if user_path.startswith(self.url):
            return user_path[len(self.url) :].lstrip("/")
        return user_path

    def _content(self, path: str) -> bytes:
        with self._lock:
            try:
                return self._files[self.join(path)]
            except KeyError:
                raise NotFound(f"no such file: {path}") from None

    def read_bytes(self, path: str) -> bytes:
        return self._content(path)

    @contextmanager
    def open_read(self, path: str) -> Iterator[IO[bytes]]:
        yield io.BytesIO(self._content(path))

    @contextmanager
    def open_write(self, path: str) -> Iterator[IO[bytes]]:
        self._writable(path)
        key = self.join(path)
        buffer = io.BytesIO()
        yield buffer
        with self._lock:
            self._files[key] = buffer.getvalue()

    def create_exclusive(self, path: str, data: bytes) -> bool:
        self._writable(path)
        key = self.join(path)
        with self._lock:
            if key in self._files:
                return False
            self._files[key] = data
            return True

    def exists(self, path: str) -> bool:
        with self._lock:
            return self.join(path) in self._files

    def listing(self, path: str = "") -> Listing:
        prefix = self.join(path)
        prefix = f"{prefix}/" if prefix else ""
        with self._lock:
            keys = [k[len(prefix) :] for k in self._files if k.startswith(prefix)]
        names = {k.split("/", 1)[0] for k in keys}
        folders = frozenset(k.split("/", 1)[0] for k in keys if "/" in k)
        return Listing(sorted(names), folders=folders)

    def delete(self, path: str) -> None:
        self._writable(path)
        key = self.join(path)
        with self._lock:
            for name in [k for k in self._files if k == key or k.startswith(f"{key}/")]:
                del self._files[name]

"""Where the reference's clients point: its file-share mount, buckets, keys and local paths,
translated into paths of our storage, or refused.

The reference trusted these paths (a client could read or write anywhere the pod could). Here
``az_file_path`` must be the configured mount path (which stands for the storage root) or a
folder inside the root; ``bucket`` must be an allowed bucket; keys and local paths must stay
inside the root. Anything else is :class:`~loanrisk.errors.PathNotAllowed`, never followed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from loanrisk.errors import Conflict, InvalidInput, PathNotAllowed
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage

#: Folder names that hold what loanrisk keeps (datasets, model versions and aliases, staged
#: uploads): no result a client asks for is written among them.
KEPT_FOLDERS = frozenset({"datasets", "versions", "aliases", "uploads"})


def given(value: object) -> str | None:
    """The reference's clients send the string "None" (or nothing) for an absent value."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "None", "none", "null") else text


def unique_stamp() -> str:
    """Time and randomness for a result file's name: two requests never write one file."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Locations:
    settings: Settings
    storage: Storage

    def mount(self, az_file_path: str | None) -> str:
        """The storage folder an ``az_file_path`` names ("" for the root)."""
        if az_file_path is None:
            return ""
        text = az_file_path.strip()
        mount = self.settings.mount_path.rstrip("/")
        if text.rstrip("/") == mount:
            return ""
        if text.startswith(mount + "/"):
            return self.storage.resolve(text[len(mount) + 1 :])
        return self.storage.resolve(text)

    def inside(self, base: str, path: str | None, default: str) -> str:
        """``path`` (relative to ``base``, or absolute inside the root) as a storage path."""
        return self.storage.join(base, self.storage.resolve(path or default))

    def existing(self, path: str, field: str = "source") -> str:
        """A caller's path to a file that must exist (blocking: call it off the event loop)."""
        resolved = self.storage.resolve(path)
        if not self.storage.exists(resolved):
            raise InvalidInput(f"no file at {path!r}", details={"field": field})
        return resolved

    def bucket(self, bucket: str | None) -> str:
        """Check a bucket; every allowed bucket stands for the storage root ("")."""
        allowed = set(self.settings.buckets)
        if self.storage.url.startswith("s3://"):
            allowed.add(self.storage.url.removeprefix("s3://").split("/", 1)[0])
        if bucket is not None and bucket not in allowed:
            raise PathNotAllowed(
                f"bucket {bucket!r} is not allowed; allowed: {', '.join(sorted(allowed))}",
                details={"field": "bucket", "allowed": sorted(allowed)},
            )
        return ""

    def _refuse_kept_area(self, folder: str, field: str) -> None:
        """Refuse a folder for results that lies among what loanrisk keeps."""
        s = self.settings
        kept = KEPT_FOLDERS.intersection(folder.split("/")) or any(
            folder == area or folder.startswith(area + "/")
            for area in (
                s.model_directory.strip("/"),
                s.job_directory.strip("/"),
                s.schema_directory.strip("/"),
                s.log_directory.strip("/"),
                s.outcome_directory.strip("/"),
            )
        )
        if kept:
            raise PathNotAllowed(
                f"{field} {folder!r} lies among the models, datasets, schemas, job records "
                "or the prediction log and outcomes; results are never written there",
                details={"field": field},
            )

    def output(self, path: str | None, source: str, field: str = "output") -> str:
        """Where the results of scoring ``source`` go: ``path`` (default: a new name after
        the source) inside the results directory, never over an existing file (blocking:
        call it off the event loop)."""
        area = self.settings.results_directory.strip("/")
        stem = source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        relative = self.storage.resolve(path) if path else f"{stem}-{unique_stamp()}.csv"
        inside = relative.startswith(area + "/")
        full = relative if inside else self.storage.join(area, relative)
        if not full.endswith(".csv"):
            raise InvalidInput(f"{field} must name a .csv file", details={"field": field})
        self._refuse_kept_area(full.rsplit("/", 1)[0], field)
        if self.storage.exists(full):
            raise Conflict(
                f"{field} {full!r} exists already; results never replace a file",
                details={"field": field},
            )
        if self.storage.list(full):
            raise InvalidInput(f"{field} {full!r} is a directory", details={"field": field})
        return full

    def results_folder(self, path: str, field: str) -> str:
        """A folder a client names for results files (the reference's ``sample_directory``):
        not a file, not among the models, datasets or job records."""
        self._refuse_kept_area(path, field)
        if self.storage.exists(path):
            raise InvalidInput(
                f"{field} {path!r} is a file, not a directory", details={"field": field}
            )
        return path

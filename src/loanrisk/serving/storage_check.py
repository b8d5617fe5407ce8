"""The storage check: every stored item read back and verified, every bad one named with the
way to repair it (``loanrisk storage check`` and ``GET /v1/admin/storage-check`` present it).

What it checks, under the directories the settings name:

- **model versions** (``model_directory``): the manifest parses, and every file it lists is
  there and matches its recorded SHA-256 (as :meth:`ModelRegistry.load` checks it);
- **aliases**: each record parses, and names a complete version (or none: retired);
- **datasets** (``data/datasets/`` and any other top-level folder holding ``datasets/``): the
  manifest parses, and every file it lists matches its recorded SHA-256 and size (as every
  read of a split checks it);
- **job records** (``job_directory``): each ``<id>.json`` is named for a job and parses;
- **prediction-log files** (``log_directory``): each Parquet file reads in the log's format;
- **symlinks** (local storage): none leads out of the storage root.

It reads everything and writes nothing; one bad item is reported and the walk goes on. A
dataset or version still being written (no manifest yet) is not an item yet, and is not
reported. Library code: it lives with the serving core, the lowest layer that sees every kind
of stored item (job records included) and sits below both front ends.
"""

from __future__ import annotations

import re
from typing import Literal

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loanrisk.data.datasets import MANIFEST, DatasetCatalogue
from loanrisk.errors import (
    InvalidInput,
    LoanRiskError,
    NotFound,
    PathNotAllowed,
    describe_error,
)
from loanrisk.jobs.store import JobStore
from loanrisk.monitoring.log import COLUMNS
from loanrisk.registry.aliases import ALIAS_RECORD
from loanrisk.registry.models import MANIFEST_FILE, ModelRegistry
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage
from loanrisk.storage.parquet import read_parquet

#: What a bad item is: a model version's file or manifest, an alias record, a dataset's file
#: or manifest, a job record, a prediction-log file, a symlink leading out of the storage.
ItemKind = Literal["model_version", "alias", "dataset", "job", "log_file", "link"]

#: A model's folder name (as the registry names models).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class BadItem(BaseModel):
    """One stored item that failed its check."""

    model_config = ConfigDict(frozen=True)

    kind: ItemKind
    path: str = Field(description="The item's path inside the storage (never an absolute path).")
    problem: str = Field(description="What is wrong with it.")
    repair: str = Field(description="How to repair it.")


class Checked(BaseModel):
    """How many items of each kind were checked."""

    model_versions: int = 0
    aliases: int = 0
    datasets: int = 0
    jobs: int = 0
    log_files: int = 0
    links: int = Field(0, description="Symlinks found (a local storage only).")


class StorageReport(BaseModel):
    """The storage check's answer: what it checked, and every bad item it found."""

    clean: bool = Field(description="True when no bad item was found.")
    checked: Checked
    problems: list[BadItem]


class _Walk:
    """One run of the check: the counts and the bad items found so far."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.checked = Checked()
        self.problems: list[BadItem] = []

    def bad(self, kind: ItemKind, path: str, problem: str, repair: str) -> None:
        self.problems.append(BadItem(kind=kind, path=path, problem=problem, repair=repair))

    def listed(self, kind: ItemKind, path: str) -> list[str]:
        """The names under ``path``; a folder of ``kind`` items that cannot be listed is
        reported, and yields nothing."""
        try:
            return self.storage.list(path)
        except LoanRiskError as exc:
            self.bad(kind, path, f"cannot be listed: {describe_error(exc)}", _LIST_REPAIR)
            return []

    def report(self) -> StorageReport:
        problems = sorted(self.problems, key=lambda p: (p.kind, p.path))
        return StorageReport(clean=not problems, checked=self.checked, problems=problems)


def check_storage(
    storage: Storage, settings: Settings, *, data_directories: tuple[str, ...] = ("data",)
) -> StorageReport:
    """Check every stored item of ``storage`` (see the module's docstring) and report the bad
    ones. ``data_directories`` are checked for datasets, with every other top-level folder
    that holds a ``datasets`` folder. Never raises for a bad item: a storage that cannot be
    reached at all raises :class:`~loanrisk.errors.StorageError`."""
    walk = _Walk(storage)
    _check_links(walk)
    _check_models(walk, settings.model_directory)
    for directory in _dataset_directories(walk, data_directories):
        _check_datasets(walk, directory)
    _check_jobs(walk, settings.job_directory)
    _check_log(walk, settings.log_directory)
    return walk.report()


_LIST_REPAIR = "see the problem: the folder's items were not checked"
_LINK_REPAIR = (
    "remove the link, or replace it with a copy of what it names: the storage serves only "
    "what lies inside its root"
)


# -- symlinks -------------------------------------------------------------------------------


def _check_links(walk: _Walk) -> None:
    """Every symlink of the storage, by the storage's own walk and confinement test (what
    its listings skip, this names); object stores and memory have none."""

    def unlisted(path: str, error: LoanRiskError) -> None:
        """A folder that cannot be listed holds no link this walk can see: skipped here (the
        checks of models, datasets, jobs and the log name the folders they cannot list)."""

    for _folder, found in walk.storage.walk(on_error=unlisted):
        walk.checked.links += len(found.links)
        for problem in found.problems:
            if problem.kind == "link":
                walk.checked.links += 1
                walk.bad(
                    "link",
                    problem.path,
                    "a symlink leading outside the storage root: listings skip it, reads refuse it",
                    _LINK_REPAIR,
                )


# -- models and aliases ---------------------------------------------------------------------


def _check_models(walk: _Walk, directory: str) -> None:
    registry = ModelRegistry(walk.storage, directory)
    for name in walk.listed("model_version", directory):
        if not _NAME.match(name) or ".." in name:
            continue  # not a model's folder: the registry never lists it
        try:
            versions = registry.versions(name)
        except LoanRiskError as exc:
            path = walk.storage.join(directory, name, "versions")
            walk.bad("model_version", path, describe_error(exc), _LIST_REPAIR)
            continue
        for version in versions:
            walk.checked.model_versions += 1
            _check_version(walk, registry, name, version)
        _check_aliases(walk, registry, name, set(versions))


def _check_version(walk: _Walk, registry: ModelRegistry, name: str, version: int) -> None:
    """The version's manifest parses, and every file it lists matches its hash."""
    folder = walk.storage.join(registry.root, name, "versions", str(version))
    repair = (
        f"restore the version's files from a backup; until then it cannot be loaded: move "
        f"any alias naming it to a sound version (loanrisk models promote {name} VERSION "
        "--alias ALIAS)"
    )
    try:
        manifest = registry.manifest(name, version)
    except NotFound:
        return  # removed while the check ran
    except LoanRiskError as exc:
        walk.bad("model_version", walk.storage.join(folder, MANIFEST_FILE), exc.message, repair)
        return
    for file in sorted(manifest.files):
        path = walk.storage.join(folder, file)
        try:
            registry.verify_file(name, version, file)
        except PathNotAllowed:
            continue  # a link out of the storage: the link check names it
        except NotFound:
            walk.bad("model_version", path, "listed in the manifest, but missing", repair)
        except LoanRiskError as exc:
            walk.bad("model_version", path, exc.message, repair)


def _check_aliases(walk: _Walk, registry: ModelRegistry, name: str, versions: set[int]) -> None:
    """Each alias record parses and names a complete version (or none: retired)."""
    folder = walk.storage.join(registry.root, name, "aliases")
    for entry in walk.listed("alias", folder):
        if not entry.endswith(".json"):
            continue  # a move's lock
        walk.checked.aliases += 1
        alias = entry.removesuffix(".json")
        path = walk.storage.join(folder, entry)
        repair = (
            f"move the alias again (loanrisk models promote {name} VERSION --alias {alias}, "
            f"or PUT /v1/models/{name}/aliases/{alias}), which rewrites its record; or "
            "delete the file (its history is lost)"
        )
        try:
            record = ALIAS_RECORD.validate_json(walk.storage.read_bytes(path))
        except (NotFound, PathNotAllowed):
            continue  # removed while the check ran, or a link the link check names
        except ValidationError:
            problem = "the alias record does not parse (truncated, or not an alias record)"
            walk.bad("alias", path, problem, repair)
            continue
        except LoanRiskError as exc:
            walk.bad("alias", path, exc.message, repair)
            continue
        target = record["version"]
        if target is not None and target not in versions:
            problem = f"names version {target}, which model {name!r} does not have"
            walk.bad("alias", path, problem, repair)


# -- datasets -------------------------------------------------------------------------------


def _dataset_directories(walk: _Walk, given: tuple[str, ...]) -> list[str]:
    """``given``, and every other top-level folder that holds a ``datasets`` folder."""
    found = list(given)
    for entry in walk.listed("dataset", ""):
        if entry in found:
            continue
        try:
            holds = "datasets" in walk.storage.list(entry)
        except LoanRiskError:
            continue  # not a folder the storage serves: the link check names it
        if holds:
            found.append(entry)
    return found


def _check_datasets(walk: _Walk, directory: str) -> None:
    """Each dataset's manifest parses, and every file it lists matches its hash and size."""
    catalogue = DatasetCatalogue(walk.storage, directory)
    for dataset_id in walk.listed("dataset", catalogue.root):
        try:
            manifest_path = catalogue.path(dataset_id, MANIFEST)
        except InvalidInput:
            continue  # no dataset's folder
        try:
            if not walk.storage.exists(manifest_path):
                continue  # being processed, or abandoned: not a dataset (yet)
        except PathNotAllowed:
            continue  # a link out of the storage: the link check names it
        walk.checked.datasets += 1
        repair = (
            "process the data again (loanrisk data process SOURCE, or POST /v1/datasets) "
            "and train from the new dataset; then delete this dataset's folder (or restore "
            "the file from a backup)"
        )
        try:
            manifest = catalogue.get(dataset_id)
        except NotFound:
            continue  # removed while the check ran
        except LoanRiskError as exc:
            walk.bad("dataset", manifest_path, exc.message, repair)
            continue
        for name in sorted(manifest.files):
            path = catalogue.path(dataset_id, name)
            try:
                catalogue.verify_file(dataset_id, name)
            except NotFound:
                walk.bad("dataset", path, "listed in the manifest, but missing", repair)
            except LoanRiskError as exc:
                walk.bad("dataset", path, exc.message, repair)


# -- job records and the prediction log -----------------------------------------------------


def _check_jobs(walk: _Walk, directory: str) -> None:
    """Each ``<id>.json`` directly under the job directory is named for a job and parses."""
    store = JobStore(walk.storage, directory)
    for entry in walk.listed("job", directory):
        if not entry.endswith(".json"):
            continue  # cancel markers, the locks folder
        walk.checked.jobs += 1
        path = walk.storage.join(directory, entry)
        try:
            store.get(entry.removesuffix(".json"))
        except (NotFound, PathNotAllowed):
            continue  # removed while the check ran, or a link the link check names
        except InvalidInput:
            problem = "not a job record: its name is no job id (job-...)"
            walk.bad("job", path, problem, "move the file out of the job directory")
        except (LoanRiskError, ValueError) as exc:
            repair = (
                "delete the file: the job's record is lost (a job still running rewrites "
                "it at its next heartbeat)"
            )
            walk.bad("job", path, describe_error(exc), repair)


def _check_log(walk: _Walk, directory: str) -> None:
    """Each Parquet file of the prediction log reads in the log's format."""
    repair = (
        "move the file out of the log directory (keep it to inspect): reports skip it, and "
        "the predictions it held are missing from drift and performance until it is "
        "repaired and put back"
    )
    try:
        paths = [p for p in walk.storage.walk_files(directory) if p.endswith(".parquet")]
    except LoanRiskError as exc:
        walk.bad("log_file", directory, f"cannot be listed: {describe_error(exc)}", _LIST_REPAIR)
        return
    for path in paths:
        walk.checked.log_files += 1
        try:
            read_parquet(walk.storage, path, schema=COLUMNS)
        except (NotFound, PathNotAllowed):
            continue  # compacted while the check ran, or a link the link check names
        except LoanRiskError as exc:
            walk.bad("log_file", path, exc.message, repair)
        except (pa.ArrowException, OSError, ValueError) as exc:
            problem = f"does not read as a prediction-log file: {describe_error(exc)}"
            walk.bad("log_file", path, problem, repair)

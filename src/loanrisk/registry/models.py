"""ModelRegistry: versions of named models on a :class:`~loanrisk.storage.Storage`.

Layout, under the registry root (the reference's ``model_directory``)::

    <root>/<name>/versions/<n>/claim.json          taken first, exclusively: n is ours alone
                              /model.ubj           XGBoost UBJSON (never a pickle)
                              /scorecard.json      instead, for a scorecard (kind: scorecard)
                              /feature_spec.json   the preprocessing the model was trained with
                              /schema.json         the declared schema of its training data
                              /profile.json        the training data's bins (monitoring)
                              /calibration.json    the calibration map, when trained with one
                              /reasons.json        the adverse-action reason catalog
                              /master_scale.json   the rating master scale (its grades)
                              /scaling.json        the points scaling (every loan's score)
                              /report.json         the evaluation report
                              /manifest.json       written last: the version exists once it has one
    <root>/<name>/aliases/<alias>.json             {"version", "previous", "history", ...}
                                                   (registry/aliases.py: AliasRecord)

An alias's history records every move: the version, when, who (an API key's name, or the
user and host of a CLI run) and why (a reason given by the mover). A retired alias (a
challenger discarded) keeps its file and history with ``version`` null; it resolves to
nothing until it is moved again.

Version numbers are claimed with an exclusive create (O_EXCL locally, If-None-Match: * on S3
and Azure), so two publishers finishing at once get two numbers and neither overwrites the
other. A publisher killed before its manifest leaves a claimed, incomplete number that is never
listed or loaded; the next publisher takes the number after it. ``latest`` is not stored: it is
the highest complete version, so it cannot race. Other aliases (``production``) are moved
explicitly and remember their previous target, so a rollback is one call.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import xgboost as xgb
from pydantic import ValidationError

from loanrisk.defaults import LATEST as LATEST
from loanrisk.defaults import PRODUCTION as PRODUCTION
from loanrisk.errors import Conflict, InvalidInput, NotFound, StorageError, describe_error
from loanrisk.features.spec import FeatureSpec
from loanrisk.registry.alias_lock import alias_lock
from loanrisk.registry.aliases import ALIAS_RECORD, AliasMove, AliasRecord
from loanrisk.registry.calibration import Calibration
from loanrisk.registry.manifest import FileEntry, ModelKind, ModelManifest
from loanrisk.registry.masterscale import DEFAULT_SCALE, MasterScale
from loanrisk.registry.reasons import ReasonCatalog
from loanrisk.registry.report import EvaluationReport
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling
from loanrisk.registry.scorecard import Scorecard
from loanrisk.schema import LoanSchema, builtin_schema, parse_schema
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

log = logging.getLogger(__name__)

MODEL_FILE = "model.ubj"
SCORECARD_FILE = "scorecard.json"
SPEC_FILE = "feature_spec.json"
SCHEMA_FILE = "schema.json"
PROFILE_FILE = "profile.json"
CALIBRATION_FILE = "calibration.json"
REASONS_FILE = "reasons.json"
MASTER_SCALE_FILE = "master_scale.json"
SCALING_FILE = "scaling.json"
REPORT_FILE = "report.json"
MANIFEST_FILE = "manifest.json"
CLAIM_FILE = "claim.json"
HISTORY_LENGTH = 50

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: A version number as written in paths and references: ASCII digits, at most nine.
_NUMBER = re.compile(r"^[0-9]{1,9}$")


def check_name(kind: str, name: str) -> str:
    """Model and alias names: letters, digits, '.', '_', '-'; no paths, at most 64 chars."""
    if not _NAME.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid {kind} name {name!r}: use letters, digits, '.', '_' or '-' (max 64)"
        )
    return name


def _numbers(entries: list[str]) -> list[int]:
    """The version numbers among a ``versions`` folder's entries, ascending."""
    return sorted(int(e) for e in entries if _NUMBER.match(e))


def aliases_by_version(
    aliases: Mapping[str, AliasRecord], newest: int | None
) -> dict[int, list[str]]:
    """Each version's aliases, from :meth:`ModelRegistry.aliases` and the newest version
    number: ``latest`` first, then the others in name order (retired ones name none)."""
    out: dict[int, list[str]] = {}
    for alias, record in sorted(aliases.items()):
        if record["version"] is not None:
            out.setdefault(record["version"], []).append(alias)
    if newest is not None:
        out.setdefault(newest, []).insert(0, LATEST)
    return out


def _evaluation(name: str, version: int, data: bytes) -> EvaluationReport | None:
    """The stored report parsed; None (and a warning) when it is not an evaluation report."""
    try:
        return EvaluationReport.model_validate_json(data)
    except ValidationError as exc:
        log.warning(
            "model %r version %s: report.json is not an evaluation report (%s)",
            name,
            version,
            describe_error(exc),
        )
        return None


def _json(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, indent=2).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class LoadedModel:
    """A verified model version, ready to score: an XGBoost version has its ``booster``, a
    scorecard (``kind: scorecard``) its ``scorecard`` and no booster."""

    name: str
    version: int
    booster: xgb.Booster | None
    spec: FeatureSpec
    manifest: ModelManifest
    #: The evaluation report (None when the stored one is not a readable report: versions
    #: published with a hand-made one).
    report: EvaluationReport | None
    schema: LoanSchema
    calibration: Calibration | None = None
    #: The adverse-action reason catalog (versions published before catalogs: None, and the
    #: schema's derived catalog applies).
    reasons: ReasonCatalog | None = None
    #: The rating master scale its loans are graded on (versions published before scales
    #: were recorded: the default scale).
    master_scale: MasterScale = DEFAULT_SCALE
    #: The points scaling its loans are scored in (versions published before scalings
    #: were recorded: the default scaling).
    scaling: Scaling = DEFAULT_SCALING
    #: The scorecard of a ``kind: scorecard`` version (None for XGBoost).
    scorecard: Scorecard | None = None

    @property
    def kind(self) -> ModelKind:
        return self.manifest.kind

    def require_booster(self, needed_for: str) -> xgb.Booster:
        """The booster; :class:`InvalidInput` naming what needed it for a version without one
        (a scorecard)."""
        if self.booster is None:
            raise InvalidInput(
                f"model {self.name!r} version {self.version} is a {self.kind}: {needed_for} "
                "needs an XGBoost version",
                details={"kind": self.kind},
            )
        return self.booster


@dataclass(frozen=True)
class ModelListing:
    """The models with at least one complete version, and the stored items skipped while
    listing them (links leading out of the storage)."""

    names: list[str]
    problems: list[Problem]


@dataclass(frozen=True)
class AliasListing:
    """A model's readable aliases, and those skipped (corrupt records, links out)."""

    records: dict[str, AliasRecord]
    problems: list[Problem]


#: ``"version": 3`` or ``"previous": 2`` in a record's text, as :meth:`ModelRegistry._move`
#: writes it (the first match: the record's own key, written before its history).
_KEY_NUMBER = r'"{key}"\s*:\s*([0-9]{{1,9}})\s*[,}}\n]'


@dataclass(frozen=True)
class ModelRegistry:
    """The models under one directory of a storage."""

    storage: Storage
    root: str = "models"

    def _path(self, *parts: str) -> str:
        return self.storage.join(self.root, *parts)

    def _version_dir(self, name: str, version: int) -> str:
        return self._path(check_name("model", name), "versions", str(version))

    # -- reading -----------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of models with at least one complete version."""
        return self.model_listing().names

    def model_listing(self) -> ModelListing:
        """:meth:`models`, with the entries skipped on the way named (a symlink leading out
        of the storage, for a model or one of its versions)."""
        found = self.storage.listing(self.root)
        names, problems = [], list(found.problems)
        for name in found.names:
            if not _NAME.match(name):
                continue
            try:
                versions = self.storage.listing(self._path(name, "versions"))
            except InvalidInput:
                continue  # a file beside the models, not a model's folder
            problems.extend(versions.problems)
            if any(self._complete(name, v) for v in _numbers(versions.names)):
                names.append(name)
        return ModelListing(names, problems)

    def _numbers(self, name: str) -> list[int]:
        return _numbers(self.storage.list(self._path(check_name("model", name), "versions")))

    def _complete(self, name: str, version: int) -> bool:
        return self.storage.exists(
            self.storage.join(self._version_dir(name, version), MANIFEST_FILE)
        )

    def versions(self, name: str) -> list[int]:
        """Complete versions of ``name``, ascending (claimed but unfinished ones are left out)."""
        return [v for v in self._numbers(name) if self._complete(name, v)]

    def manifest(self, name: str, version: int) -> ModelManifest:
        path = self.storage.join(self._version_dir(name, version), MANIFEST_FILE)
        try:
            data = self.storage.read_bytes(path)
        except NotFound:
            raise NotFound(f"model {name!r} has no version {version}") from None
        try:
            return ModelManifest.model_validate_json(data)
        except ValidationError:
            message = f"model {name!r} version {version}: its manifest is corrupt"
            raise StorageError(message) from None

    def report(self, name: str, version: int) -> EvaluationReport:
        """The version's evaluation report, verified against its hash; :class:`StorageError`
        when the stored one is not an evaluation report (a version published with a
        hand-made one: :meth:`file` reads it as it is)."""
        data = self._verified(name, version, REPORT_FILE)
        try:
            return EvaluationReport.model_validate_json(data)
        except ValidationError:
            message = f"model {name!r} version {version}: its report is not an evaluation report"
            raise StorageError(message) from None

    def aliases(self, name: str) -> dict[str, AliasRecord]:
        """Every readable stored alias of ``name`` with its record (``latest`` is derived,
        not listed); :meth:`alias_listing` names those that could not be read."""
        return self.alias_listing(name).records

    def alias_listing(self, name: str) -> AliasListing:
        """Every stored alias of ``name``: the records read, and the aliases skipped (a
        corrupt record, a name that is no alias's, a link out of the storage), each named as
        a problem. A corrupt record is repaired by moving the alias (:meth:`promote`, or
        :meth:`rollback` when its previous version can still be read)."""
        folder = self._path(check_name("model", name), "aliases")
        found = self.storage.listing(folder)
        records, problems = {}, [p.model_copy(update={"kind": "alias"}) for p in found.problems]
        for entry in found.names:
            if not entry.endswith(".json"):
                continue
            alias = entry.removesuffix(".json")
            try:
                records[alias] = self._alias(name, alias)
            except (InvalidInput, NotFound, StorageError) as exc:
                problems.append(
                    Problem(
                        kind="alias",
                        path=self.storage.join(folder, entry),
                        message=f"{exc.message}; point the alias at a version again to "
                        "repair it (PUT the alias, or `loanrisk models promote`)",
                    )
                )
        return AliasListing(records, problems)

    def has_alias(self, name: str, alias: str) -> bool:
        """Whether ``alias`` has a stored record, readable or not (a retired alias has one;
        so has a corrupt one, which nothing should take for an absent alias)."""
        path = self._path(
            check_name("model", name), "aliases", f"{check_name('alias', alias)}.json"
        )
        return self.storage.exists(path)

    def _alias(self, name: str, alias: str) -> AliasRecord:
        path = self._path(
            check_name("model", name), "aliases", f"{check_name('alias', alias)}.json"
        )
        try:
            data = self.storage.read_bytes(path)
        except NotFound:
            raise NotFound(f"model {name!r} has no alias {alias!r}") from None
        try:
            return ALIAS_RECORD.validate_json(data)
        except ValidationError:
            message = f"alias {alias!r} of model {name!r}: its record is corrupt"
            raise StorageError(message) from None

    def _salvaged(self, name: str, alias: str, key: str) -> int | None:
        """The version (``key``: ``version`` or ``previous``) a corrupt record still shows
        (a truncated one keeps its first lines, where they are written), or None."""
        path = self._path(name, "aliases", f"{alias}.json")
        try:
            text = self.storage.read_bytes(path).decode("utf-8", errors="replace")
        except (NotFound, StorageError):
            return None
        found = re.search(_KEY_NUMBER.format(key=key), text)
        return int(found.group(1)) if found else None

    def resolve(self, name: str, ref: str | int) -> int:
        """A version number from a number, ``"3"``, ``"v3"``, ``latest`` or an alias name."""
        text = str(ref).strip()
        if _NUMBER.match(text.removeprefix("v")):
            version = int(text.removeprefix("v"))
            self.manifest(name, version)  # exists and is complete
            return version
        if text[:1].isdigit() or text.removeprefix("v")[:1].isdigit():
            raise InvalidInput(f"invalid version {text[:20]!r}: a number of at most nine digits")
        if text == LATEST:
            # Newest first: one check in the usual case (a service may ask every few seconds).
            for version in reversed(self._numbers(name)):
                if self._complete(name, version):
                    return version
            raise NotFound(f"model {name!r} has no versions")
        record = self._alias(name, text)
        if record["version"] is None:
            raise NotFound(f"alias {text!r} of model {name!r} is retired")
        return record["version"]

    def earlier_targets(self, name: str, ref: str, broken: int) -> list[int]:
        """Versions to serve instead of ``broken`` (which ``ref`` names but cannot be
        loaded), most recent first: the versions the alias pointed at before, or, for
        ``latest``, the versions below it."""
        if ref == LATEST:
            candidates = list(reversed(self.versions(name)))
        else:
            try:
                history = self._alias(name, ref).get("history", [])
            except (NotFound, StorageError):
                return []
            candidates = [h["version"] for h in reversed(history) if h["version"] is not None]
        seen: list[int] = []
        for version in candidates:
            if version != broken and version not in seen and self._complete(name, version):
                seen.append(version)
        return seen

    def _entry(self, name: str, version: int, file: str) -> tuple[FileEntry, str]:
        """The manifest's entry of a version's file, and the file's path."""
        entry = self.manifest(name, version).files[file]
        return entry, self.storage.join(self._version_dir(name, version), file)

    @staticmethod
    def _mismatch(name: str, version: int, file: str) -> Callable[[], StorageError]:
        return lambda: StorageError(
            f"model {name!r} version {version}: {file} does not match its recorded hash"
        )

    def _verified(self, name: str, version: int, file: str) -> bytes:
        """A version's file, checked against its manifest's hash in the one read."""
        entry, path = self._entry(name, version, file)
        return entry.read_checked(self.storage, path, self._mismatch(name, version, file))

    def verify_file(self, name: str, version: int, file: str) -> None:
        """Check a version's file against the SHA-256 and size its manifest recorded,
        reading it a chunk at a time (never whole in memory). Raises :class:`StorageError`
        when it differs, :class:`NotFound` when it is gone, :class:`KeyError` when the
        manifest lists no such file."""
        entry, path = self._entry(name, version, file)
        entry.check(self.storage, path, self._mismatch(name, version, file))

    def load(self, name: str, ref: str | int = LATEST) -> LoadedModel:
        """Load and verify a version (every file's SHA-256 against the manifest)."""
        version = self.resolve(name, ref)
        manifest = self.manifest(name, version)
        booster, scorecard = None, None
        if manifest.kind == "scorecard":
            scorecard = Scorecard.model_validate_json(self._verified(name, version, SCORECARD_FILE))
        else:
            booster = xgb.Booster()
            booster.load_model(bytearray(self._verified(name, version, MODEL_FILE)))
        return LoadedModel(
            name=name,
            version=version,
            booster=booster,
            scorecard=scorecard,
            spec=FeatureSpec.from_json(self._verified(name, version, SPEC_FILE)),
            manifest=manifest,
            report=_evaluation(name, version, self._verified(name, version, REPORT_FILE)),
            schema=self._schema(name, version, manifest),
            calibration=(
                Calibration.from_json(self._verified(name, version, CALIBRATION_FILE))
                if CALIBRATION_FILE in manifest.files
                else None
            ),
            reasons=(
                ReasonCatalog.model_validate_json(self._verified(name, version, REASONS_FILE))
                if REASONS_FILE in manifest.files
                else None
            ),
            master_scale=(
                MasterScale.model_validate_json(self._verified(name, version, MASTER_SCALE_FILE))
                if MASTER_SCALE_FILE in manifest.files
                else DEFAULT_SCALE
            ),
            scaling=(
                Scaling.model_validate_json(self._verified(name, version, SCALING_FILE))
                if SCALING_FILE in manifest.files
                else DEFAULT_SCALING
            ),
        )

    def _schema(self, name: str, version: int, manifest: ModelManifest) -> LoanSchema:
        """The version's schema (versions published before schemas: the built-in one)."""
        if SCHEMA_FILE not in manifest.files:
            return builtin_schema()
        text = self._verified(name, version, SCHEMA_FILE)
        return parse_schema(text, source=f"model {name!r} version {version} schema")

    def master_scale(self, name: str, version: int) -> MasterScale:
        """The version's master scale, verified against its hash (versions published before
        scales were recorded: the default scale)."""
        data = self.file(name, version, MASTER_SCALE_FILE)
        return DEFAULT_SCALE if data is None else MasterScale.model_validate_json(data)

    def scaling(self, name: str, version: int) -> Scaling:
        """The version's points scaling, verified against its hash (versions published
        before scalings were recorded: the default scaling)."""
        data = self.file(name, version, SCALING_FILE)
        return DEFAULT_SCALING if data is None else Scaling.model_validate_json(data)

    def file(self, name: str, version: int, file: str) -> bytes | None:
        """An optional file of a version, verified against its hash (None: it has none)."""
        if file not in self.manifest(name, version).files:
            return None
        return self._verified(name, version, file)

    def version_files(self, name: str, version: int) -> dict[str, bytes]:
        """Every file of a version, each verified against its hash, and its manifest: what
        another registry stores to hold the same version (:meth:`add_version`)."""
        manifest = self.manifest(name, version)
        files = {file: self._verified(name, version, file) for file in manifest.files}
        return {**files, MANIFEST_FILE: manifest.model_dump_json(indent=2).encode() + b"\n"}

    def add_version(self, name: str, version: int, files: Mapping[str, bytes]) -> None:
        """Store a version as :meth:`version_files` of another registry gave it (its manifest
        last, so it exists only once complete); :meth:`load` verifies it as any other."""
        directory = self._version_dir(name, version)
        for file, data in files.items():
            if file != MANIFEST_FILE:
                self.storage.write_bytes(self.storage.join(directory, file), data)
        self.storage.write_bytes(self.storage.join(directory, MANIFEST_FILE), files[MANIFEST_FILE])

    def schema(self, name: str, ref: str | int = LATEST) -> LoanSchema:
        """The schema a version was trained on (verified against its hash)."""
        version = self.resolve(name, ref)
        return self._schema(name, version, self.manifest(name, version))

    # -- writing -----------------------------------------------------------------------

    def _claim(self, name: str) -> int:
        claim = _json({"pid": os.getpid(), "host": socket.gethostname(), "claimed_at": _now()})
        candidate = max(self._numbers(name), default=0) + 1
        while not self.storage.create_exclusive(
            self.storage.join(self._version_dir(name, candidate), CLAIM_FILE), claim
        ):
            candidate += 1
        return candidate

    def publish(
        self,
        name: str,
        *,
        booster: xgb.Booster | None,
        spec: FeatureSpec,
        report: EvaluationReport | Mapping[str, object],
        metadata: dict[str, Any],
        schema: LoanSchema | None = None,
        extra_files: dict[str, bytes] | None = None,
        scorecard: Scorecard | None = None,
    ) -> ModelManifest:
        """Publish a new immutable version; return its manifest.

        ``metadata`` goes into the manifest (parent, dataset id, parameters, timings ...);
        the registry adds the version, the file hashes, the schema's name and hash, and the
        creation time. ``schema`` (default: the built-in one) is stored with the version:
        scoring validates records against it. ``report`` is stored as ``report.json`` (a
        mapping is stored as it is: reports written elsewhere). ``extra_files`` (e.g. the
        reference profile) are stored and hashed with the rest. A version is either an
        XGBoost one (``booster``, stored as ``model.ubj``) or a scorecard (``scorecard``,
        stored as ``scorecard.json``; its manifest's ``kind`` is ``scorecard``): exactly one.
        """
        check_name("model", name)
        kind: ModelKind
        if booster is not None and scorecard is None:
            kind, model_file = "xgboost", {MODEL_FILE: bytes(booster.save_raw("ubj"))}
        elif scorecard is not None and booster is None:
            kind, model_file = "scorecard", {SCORECARD_FILE: scorecard.to_json().encode()}
        else:
            raise InvalidInput("a version is either a booster or a scorecard: give one")
        schema = schema or builtin_schema()
        files = {
            **model_file,
            SPEC_FILE: spec.to_json().encode(),
            SCHEMA_FILE: schema.to_json().encode(),
            REPORT_FILE: _json(
                report.to_json() if isinstance(report, EvaluationReport) else dict(report)
            ),
            **(extra_files or {}),
        }
        version = self._claim(name)
        directory = self._version_dir(name, version)
        for file, data in files.items():
            self.storage.write_bytes(self.storage.join(directory, file), data)
        manifest = ModelManifest.model_validate(
            {
                **metadata,
                "kind": kind,
                "name": name,
                "version": version,
                "schema": {"name": schema.name, "hash": schema.fingerprint()},
                "files": {f: FileEntry.of(d) for f, d in files.items()},
                "created_at": _now(),
            }
        )
        body = manifest.model_dump_json(indent=2).encode() + b"\n"
        self.storage.write_bytes(self.storage.join(directory, MANIFEST_FILE), body)
        return manifest

    def verify(
        self, name: str, version: int, check: Callable[[LoadedModel], object] | None = None
    ) -> LoadedModel:
        """Load ``version`` (every file against its hash, the booster and the feature spec
        parsed) and run ``check`` on it (e.g. build a scorer and score a loan); any failure
        is a :class:`Conflict` saying the version cannot be served."""
        try:
            loaded = self.load(name, version)
            if check is not None:
                check(loaded)
        except NotFound:
            raise
        except Exception as exc:  # corrupt or unservable: say so, never move an alias to it
            raise Conflict(
                f"model {name!r} version {version} cannot be served: {describe_error(exc)}",
                details={"version": version},
            ) from None
        return loaded

    def promote(
        self,
        name: str,
        version: int | str,
        alias: str = PRODUCTION,
        *,
        check: Callable[[LoadedModel], object] | None = None,
        by: str | None = None,
        reason: str | None = None,
    ) -> AliasRecord:
        """Point ``alias`` at a version, remembering where it pointed before, who moved it
        (``by``) and why (``reason``). The version is verified first (:meth:`verify`, with
        ``check``): an alias never moves to a version that cannot be served."""
        if check_name("alias", alias) == LATEST:
            raise InvalidInput("'latest' always means the newest version; it cannot be moved")
        target = self.resolve(name, version)
        self.verify(name, target, check)
        return self._move(name, alias, target, by=by, reason=reason)

    def _move(
        self, name: str, alias: str, target: int | None, *, by: str | None, reason: str | None
    ) -> AliasRecord:
        lock = self._path(name, "aliases", f"{alias}.lock")
        with alias_lock(self.storage, lock, f"alias {alias!r} of model {name!r}"):
            return self._write_move(name, alias, target, by=by, reason=reason)

    def _write_move(
        self, name: str, alias: str, target: int | None, *, by: str | None, reason: str | None
    ) -> AliasRecord:
        try:
            current = self._alias(name, alias)
            previous, history = current["version"], current.get("history", [])
        except NotFound:
            previous, history = None, []
        except StorageError:  # a corrupt record: this move replaces it (its history is lost)
            log.warning("alias %r of model %r: replacing its corrupt record", alias, name)
            previous, history = self._salvaged(name, alias, "version"), []
        now = _now()
        move = AliasMove(version=target, at=now, by=by, reason=reason)
        if previous is None and target is not None:  # after a retirement: its last target
            previous = next(
                (h["version"] for h in reversed(history) if h["version"] is not None), None
            )
        record = AliasRecord(
            alias=alias,
            version=target,
            previous=previous,
            updated_at=now,
            updated_by=by,
            reason=reason,
            history=[*history, move][-HISTORY_LENGTH:],
        )
        self.storage.write_bytes(self._path(name, "aliases", f"{alias}.json"), _json(record))
        return record

    def retire(
        self,
        name: str,
        alias: str,
        *,
        by: str | None = None,
        reason: str | None = None,
        served: str | None = None,
        force: bool = False,
    ) -> AliasRecord:
        """Unset ``alias`` (a challenger discarded): it resolves to nothing, its history
        stays, and a rollback points it back at the version it named. ``served`` is the
        alias a service scores with: retiring it would leave the service nothing to serve
        after a restart, so it is refused (:class:`Conflict`) unless ``force``."""
        if check_name("alias", alias) == LATEST:
            raise InvalidInput("'latest' always means the newest version; it cannot be retired")
        if alias == served and not force:
            raise Conflict(
                f"alias {alias!r} of model {name!r} is the one the service serves: retiring "
                "it leaves nothing to score with after a restart; force it to retire anyway",
                details={"alias": alias},
            )
        current = self._alias(name, alias)
        if current["version"] is None:
            raise Conflict(f"alias {alias!r} of model {name!r} is retired already")
        return self._move(name, alias, None, by=by, reason=reason)

    def rollback(
        self,
        name: str,
        alias: str = PRODUCTION,
        *,
        check: Callable[[LoadedModel], object] | None = None,
        by: str | None = None,
        reason: str | None = None,
    ) -> AliasRecord:
        """Move ``alias`` back to its previous target (verified as :meth:`promote` does).
        A corrupt record is replaced, when its previous version can still be read from it
        (a truncated record keeps its first lines); otherwise :class:`Conflict`."""
        try:
            previous = self._alias(name, alias).get("previous")
        except StorageError:
            previous = self._salvaged(name, alias, "previous")
            if previous is None:
                raise Conflict(
                    f"alias {alias!r} of model {name!r}: its record is corrupt and names no "
                    "previous version; point the alias at a version to repair it",
                    details={"alias": alias},
                ) from None
        if previous is None:
            raise Conflict(f"alias {alias!r} of model {name!r} has no previous version")
        return self.promote(name, previous, alias, check=check, by=by, reason=reason or "rollback")

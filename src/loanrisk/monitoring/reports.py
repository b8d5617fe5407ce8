"""Monitoring reports, as the CLI, the service's routes and its gauges ask for them: drift of
a version (its profile, stored or made on demand from its dataset, against a window of the
prediction log), realized performance (the log joined to outcomes), and the window's loans
with outcomes as training data."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime, timedelta

import pandas as pd
from pydantic import ValidationError

from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import Conflict, InvalidInput, NotFound, StorageError, describe_error
from loanrisk.monitoring.drift import DriftReport, drift_report
from loanrisk.monitoring.log.reader import LogWindow, known_loan_ids, read_log, read_window
from loanrisk.monitoring.outcomes import (
    OutcomesStored,
    OutcomeValues,
    read_outcomes,
    store_outcomes,
    summary,
)
from loanrisk.monitoring.performance import (
    PerformanceReport,
    joined,
    performance_report,
    training_rows,
)
from loanrisk.monitoring.profile import Profile, profile_of, sample_rows
from loanrisk.registry.models import LATEST, PROFILE_FILE, LoadedModel, ModelRegistry
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

#: The window of a report when its start is not given: the usual monthly stability check.
DEFAULT_DAYS = 30
#: The window of a backtest when its start is not given: a year of scored loans (outcomes
#: arrive months after scoring; the ECB's backtests are annual).
BACKTEST_DAYS = 365


def window(
    since: datetime | None, until: datetime | None, *, days: int = DEFAULT_DAYS
) -> tuple[datetime, datetime]:
    """``[since, until)`` of a report: until now and since ``days`` (:data:`DEFAULT_DAYS`)
    before, unless given; times without a zone are UTC. Refuses an empty window."""
    end = _utc(until) or datetime.now(UTC)
    try:
        start = _utc(since) or end - timedelta(days=days)
    except OverflowError:  # ``until`` in the first days of year 1
        raise InvalidInput(
            f"until must be after {days} days into year 1", details={"field": "until"}
        ) from None
    if start >= end:
        raise InvalidInput("since must be before until", details={"field": "since"})
    return start, end


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: Profiles made on demand, kept per process (versions are immutable).
_MADE: OrderedDict[tuple[str, str, str, int, str], Profile] = OrderedDict()
_LOCK = threading.Lock()
MAX_MADE = 16


def version_profile(
    registry: ModelRegistry, model: LoadedModel, *, problems: list[Problem] | None = None
) -> Profile:
    """The version's stored profile, or one made from its training dataset (for versions
    published before profiles existed, and for a stored one that cannot be read: that one
    is appended to ``problems``, when given)."""
    try:
        stored = registry.file(model.name, model.version, PROFILE_FILE)
        if stored is not None:
            return Profile.model_validate_json(stored)
    except (StorageError, ValidationError) as exc:
        if problems is None:
            raise
        path = registry.storage.join(
            registry.root, model.name, "versions", str(model.version), PROFILE_FILE
        )
        problems.append(
            Problem(
                kind="profile",
                path=path,
                message=f"not a readable profile ({describe_error(exc)}): the report uses "
                "one made from the version's training dataset",
            )
        )
    # The storage and the version's own publication: two storages in one process (or a
    # storage emptied and filled again) each have their own "version 1".
    key = (
        registry.storage.url,
        registry.root,
        model.name,
        model.version,
        model.manifest.created_at,
    )
    with _LOCK:
        if key in _MADE:
            return _MADE[key]
    dataset = model.manifest.training_dataset
    if dataset is None:
        raise Conflict(
            f"model {model.name!r} version {model.version} has no profile and "
            "names no dataset to make one from"
        )
    directory, dataset_id = dataset
    catalogue = DatasetCatalogue(registry.storage, directory)
    rows = sample_rows(catalogue.count_rows(dataset_id, "train"))  # what profile_of keeps
    train = (
        catalogue.load_split(dataset_id, "train")
        if rows is None
        else catalogue.load_rows(dataset_id, "train", rows)
    )
    profile = profile_of(
        train,
        model.schema,
        model.spec,
        model.require_booster("a profile made after publishing"),
        calibration=model.calibration,
        scaling=model.scaling,
    )
    with _LOCK:
        _MADE[key] = profile
        while len(_MADE) > MAX_MADE:
            _MADE.popitem(last=False)
    return profile


def drift_for(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    max_rows: int | None = None,
) -> DriftReport:
    """Drift of version ``ref`` of model ``name`` over ``[since, until)`` of the log (from a
    sample of ``max_rows`` of its loans, past that)."""
    model, profile, log = version_window(
        storage, registry, log_directory, name, ref, since=since, until=until, max_rows=max_rows
    )
    return drift_report(
        log.frame,
        profile,
        model.schema,
        model=name,
        version=model.version,
        since=since,
        until=until,
        rows=log.rows,
        problems=log.problems,
    )


def version_window(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime | None,
    until: datetime | None,
    max_rows: int | None,
) -> tuple[LoadedModel, Profile, LogWindow]:
    """The version, its profile and its loans of the window: what a drift or points report
    reads (the window's ``problems`` also name a stored profile that could not be read)."""
    model = registry.load(name, ref)
    problems: list[Problem] = []
    profile = version_profile(registry, model, problems=problems)
    log = read_window(
        storage,
        log_directory,
        model=name,
        since=since,
        until=until,
        version=model.version,
        max_rows=max_rows,
    )
    log.problems[:0] = problems
    return model, profile, log


def drift_by_day(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime,
    until: datetime,
    max_rows: int | None = None,
) -> list[DriftReport]:
    """The drift of each UTC day of ``[since, until)`` (oldest first; days without loans
    have ``rows`` 0): the log is read once for the whole window (a sample of ``max_rows`` of
    its loans, past that, each day's its share of it)."""
    model, profile, window = version_window(
        storage, registry, log_directory, name, ref, since=since, until=until, max_rows=max_rows
    )
    log = window.frame
    days = log["time"].dt.tz_convert(UTC).dt.floor("D") if not log.empty else log["time"]
    out = []
    day = datetime(since.year, since.month, since.day, tzinfo=UTC)
    while day < until:
        end = day + timedelta(days=1)
        rows = log[days == pd.Timestamp(day)] if not log.empty else log
        report = drift_report(
            rows,
            profile,
            model.schema,
            model=name,
            version=model.version,
            since=max(day, since),
            until=min(end, until),
            rows=window.days.get(day.date(), 0),
            problems=window.problems,
        )
        out.append(report)
        day = end
    return out


def performance_for(
    storage: Storage,
    log_directory: str,
    outcome_directory: str,
    name: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    max_rows: int | None = None,
) -> PerformanceReport:
    """Realized performance of every version of ``name`` that scored loans in the window
    (on a sample of ``max_rows`` of them, past that; ``sampled`` then says how many)."""
    log = read_window(
        storage, log_directory, model=name, since=since, until=until, max_rows=max_rows
    )
    problems = list(log.problems)
    return performance_report(
        log.frame,
        read_outcomes(storage, outcome_directory, problems=problems),
        model=name,
        scored=log.versions,
        since=since,
        until=until,
        sampled=log.sampled,
        problems=problems,
    )


def window_with_outcomes(
    storage: Storage,
    registry: ModelRegistry,
    log_directory: str,
    outcome_directory: str,
    name: str,
    ref: str | int,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pd.DataFrame:
    """The loans version ``ref`` scored in the window that have an outcome, as training data
    of its schema (``loanrisk data process`` takes them)."""
    model = registry.load(name, ref)
    log = read_log(
        storage, log_directory, model=name, since=since, until=until, version=model.version
    )
    return training_rows(joined(log, read_outcomes(storage, outcome_directory)), model.schema)


def outcome_values(registry: ModelRegistry, model: str, *, alias: str) -> OutcomeValues:
    """How ``model``'s outcomes are read: by the label of the schema of the version ``alias``
    names (the served one), else of its latest version (continued training keeps the label);
    a model with no version yet reads 1/0 and true/false only."""
    for ref in (alias, LATEST):
        try:
            version = registry.resolve(model, ref)
        except NotFound:
            continue
        label = registry.schema(model, version).label
        return OutcomeValues.of_label(
            label, source=f"model {model!r} version {version} (label {label.name!r})"
        )
    return OutcomeValues()


def add_outcomes(
    storage: Storage,
    outcome_directory: str,
    log_directory: str,
    outcomes: pd.DataFrame,
    *,
    model: str,
) -> OutcomesStored:
    """Store parsed outcomes, and count those naming loans ``model``'s log does not know."""
    store_outcomes(storage, outcome_directory, outcomes)
    problems: list[Problem] = []
    known = known_loan_ids(
        storage, log_directory, model=model, among=outcomes["loan_id"], problems=problems
    )
    return summary(outcomes, known, model=model, problems=problems)

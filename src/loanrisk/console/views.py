"""What each console page shows, read from the storage (blocking: routes run these off the
event loop). Pages only format what these return."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from loanrisk.contracts import DatasetManifest, JobRecord
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import Conflict, LoanRiskError, NotFound
from loanrisk.jobs.manager import JobManager
from loanrisk.monitoring.compare import LiveComparison, Versions, live_comparison
from loanrisk.monitoring.drift import DriftReport
from loanrisk.monitoring.performance import PerformanceReport
from loanrisk.monitoring.reports import drift_by_day, performance_for
from loanrisk.registry.aliases import AliasRecord
from loanrisk.registry.models import ModelRegistry, aliases_by_version
from loanrisk.reporting.charts import Chart, drift_over_time
from loanrisk.settings import Settings
from loanrisk.storage.base import Storage
from loanrisk.storage.problems import Problem

#: Versions listed per model, newest first (older ones stay reachable by URL and API).
MAX_VERSIONS = 50
#: Alias moves shown per alias.
MAX_HISTORY = 10
#: The monitoring page's windows, in days.
DAY_CHOICES = (7, 14, 30, 90)


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: str
    parent: str | None
    dataset: str | None
    auc: float | None
    brier: float | None
    aliases: list[str]


@dataclass(frozen=True)
class ModelOverview:
    name: str
    versions: list[VersionRow]
    aliases: dict[str, AliasRecord]
    total_versions: int
    #: Aliases skipped (a corrupt record, a link out of the storage).
    problems: list[Problem]


@dataclass(frozen=True)
class Models:
    """The models page: every model, and the stored items skipped while listing them."""

    models: list[ModelOverview]
    problems: list[Problem]


def models(registry: ModelRegistry) -> Models:
    """Every model with a complete version; a bad item (a link out of the storage, a
    corrupt alias record) is skipped and named, as ``GET /v1/models`` does."""
    found = registry.model_listing()
    overviews = [model_overview(registry, name) for name in found.names]
    return Models(overviews, found.problems + [p for m in overviews for p in m.problems])


def model_overview(registry: ModelRegistry, name: str) -> ModelOverview:
    versions = registry.versions(name)
    listed = registry.alias_listing(name)
    aliases = listed.records
    by_version = aliases_by_version(aliases, versions[-1] if versions else None)
    rows = []
    for number in reversed(versions[-MAX_VERSIONS:]):
        m = registry.manifest(name, number)
        rows.append(
            VersionRow(
                number,
                m.created_at,
                f"{m.parent.name}@{m.parent.version}" if m.parent else None,
                str((m.dataset or {}).get("id")) if m.dataset else None,
                m.metrics.get("auc"),
                m.metrics.get("brier"),
                by_version.get(number, []),
            )
        )
    for record in aliases.values():
        record["history"] = list(reversed(record.get("history", [])))[:MAX_HISTORY]
    return ModelOverview(name, rows, aliases, len(versions), listed.problems)


@dataclass(frozen=True)
class Datasets:
    """The datasets page: complete datasets, newest first, and those skipped."""

    datasets: list[DatasetManifest]
    problems: list[Problem]


def datasets(catalogue: DatasetCatalogue) -> Datasets:
    """Every complete dataset, newest first; one that cannot be read (a corrupt manifest, a
    link out of the storage) is skipped and named, as ``GET /v1/datasets`` does."""
    manifests, problems = catalogue.listing()
    manifests.reverse()
    return Datasets(manifests, problems)


@dataclass(frozen=True)
class Jobs:
    """The jobs page: the newest jobs, and the stored records skipped."""

    jobs: list[JobRecord]
    problems: list[Problem]


def jobs(manager: JobManager, limit: int) -> Jobs:
    found = manager.listing(limit=limit)
    return Jobs(found.records, found.problems)


@dataclass(frozen=True)
class Monitoring:
    model: str
    version: int | None
    days: int
    problem: str | None
    chart: Chart | None
    latest: DriftReport | None
    performance: PerformanceReport | None
    challengers: list[tuple[str, int, LiveComparison]]
    #: Stored items the reports skipped (unreadable log or outcome files, a corrupt
    #: profile), each once.
    problems: list[Problem] = field(default_factory=list)
    #: Features whose drift is not measured (declared personal: the log holds them hashed
    #: or not at all).
    left_out: list[str] = field(default_factory=list)


def monitoring(
    storage: Storage, registry: ModelRegistry, settings: Settings, name: str, days: int
) -> Monitoring:
    """Drift of the served version by day, realized performance, and the live comparison of
    the shadow and canary versions against it, over the last ``days`` days."""
    until = datetime.now(UTC)
    since = until - timedelta(days=days)
    log_directory = storage.resolve(settings.log_directory)
    try:
        version = registry.resolve(name, settings.model_alias)
    except (NotFound, Conflict) as exc:
        return Monitoring(name, None, days, exc.message, None, None, None, [])
    try:
        daily = drift_by_day(
            storage,
            registry,
            log_directory,
            name,
            version,
            since=since,
            until=until,
            max_rows=settings.monitor_max_rows,
        )
    except LoanRiskError as exc:
        return Monitoring(name, version, days, exc.message, None, None, None, [])
    scored = [d for d in daily if d.rows]
    performance = performance_for(
        storage,
        log_directory,
        storage.resolve(settings.outcome_directory),
        name,
        since=since,
        until=until,
        max_rows=settings.monitor_max_rows,
    )
    challengers = []
    canary = settings.canary_split
    aliases = [settings.shadow_alias, canary[0] if canary else None]
    for alias in dict.fromkeys(a for a in aliases if a):
        try:
            other = registry.resolve(name, alias)
        except NotFound:
            continue
        if other != version:
            live = live_comparison(
                storage, settings, Versions(name, version, other), since=since, until=until
            )
            challengers.append((alias, other, live))
    skipped = [*(daily[-1].problems if daily else []), *performance.problems]
    return Monitoring(
        name,
        version,
        days,
        None,
        drift_over_time(daily),
        scored[-1] if scored else None,
        performance,
        challengers,
        problems=list({(p.kind, p.path): p for p in skipped}.values()),
        left_out=daily[-1].left_out if daily else [],
    )

"""Prometheus metrics that stay right with several worker processes.

With several workers, ``loanrisk serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before it spawns them; each worker then records into files there and ``/metrics``
(answered by any worker) aggregates every worker's. Counters keep what a dead worker counted;
the serving-model gauge forgets a dead worker (uvicorn replaces it, and the replacement reports
for itself). With one worker (each Kubernetes pod) the app's own registry answers.

Which of the two holds is decided by ``prometheus_client`` itself, once, when it is imported:
it records into files only if the variable was set by then. :func:`records_to_files` asks it,
so a variable set later (after the import) can never make ``/metrics`` read an empty
directory. Each app builds its own metrics: nothing is created at import.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter as Counter_
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from loanrisk.contracts import JobRecord
from loanrisk.inference.results import BatchSummary
from loanrisk.monitoring.drift import DriftReport
from loanrisk.monitoring.fairness import FairnessWindowReport
from loanrisk.monitoring.log import CHAMPION
from loanrisk.storage.problems import Problem
from loanrisk.validation.window import BacktestReport

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
    30.0,
    120.0,
)
#: The gauge's value of each traffic light.
LIGHTS = {"green": 0, "yellow": 1, "red": 2}
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "loanrisk_http_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "loanrisk_http_request_duration_seconds",
            "Time to answer, by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "loanrisk_predictions",
            "Loans scored, by model, version, role (champion, canary, shadow) and label.",
            ["model", "version", "role", "label"],
            registry=r,
        )
        #: The two series of each (model, version, role) scored so far: every scored request
        #: counts into them, and prometheus_client's labels() validates and locks per call.
        self._predicted: dict[tuple[str, int, str], tuple[Counter, Counter]] = {}
        self.batch_loans = Histogram(
            "loanrisk_scoring_batch_loans",
            "Loans of the requests each batch on a worker's event loop took, a refused loan "
            "included (small JSON requests waiting together are scored in one call).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.jobs = Counter(
            "loanrisk_jobs",
            "Jobs ended on this replica, by kind and state.",
            ["kind", "state"],
            registry=r,
        )
        self.job_seconds = Histogram(
            "loanrisk_job_duration_seconds",
            "Job run time, by kind.",
            ["kind"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.model = Gauge(
            "loanrisk_model_info",
            "1 for each model version and backend a worker serves, by role (champion, "
            "canary, shadow).",
            ["model", "version", "backend", "role"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backend_fallback = Gauge(
            "loanrisk_backend_fallback",
            "1 for each model version a worker serves with XGBoost instead of oneDAL, by "
            "role and cause (chosen, unavailable, failed, disagreed); /readyz says why.",
            ["model", "version", "role", "cause"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model_load_failures = Counter(
            "loanrisk_model_load_failures",
            "Model versions that failed to load (corrupt files, storage outages), by model.",
            ["model", "version"],
            registry=r,
        )
        self.log_rows = Counter(
            "loanrisk_prediction_log_rows",
            "Scored loans written to the prediction log (written) or dropped because its "
            "buffer was full (dropped).",
            ["outcome"],
            registry=r,
        )
        self.psi = Gauge(
            "loanrisk_psi",
            "Stability index of the served version's recent loans against its training data: "
            'PSI of the probability of default (feature="probability") and CSI of each '
            "feature.",
            ["model", "version", "feature"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.psi_chance = Gauge(
            "loanrisk_psi_chance",
            "The stability index that windows of as many loans reach 5% of the time when "
            "nothing shifted (loanrisk_psi at or below it is within chance).",
            ["model", "version", "feature"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.backtest_light = Gauge(
            "loanrisk_backtest_light",
            "Traffic light of the served version's backtest per grade of its master scale "
            "(0 green, 1 yellow, 2 red: the Jeffreys p-value under 0.05, under 0.001), over "
            "the loans scored in the last 365 days that have outcomes; grades without loans "
            "have none.",
            ["model", "version", "grade"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.air = Gauge(
            "loanrisk_air",
            "Adverse impact ratio of the served version's approvals per group of each "
            "protected attribute against its reference group (docs/fairness.md), over the "
            "loans scored in the last 365 days; below 0.8 fails the four-fifths rule. A group "
            "whose ratio is undefined has none.",
            ["model", "version", "attribute", "group"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.shadow_rows = Counter(
            "loanrisk_shadow_rows",
            "Loans handed to shadow scoring: scored, refused (by the shadow version's "
            "schema), dropped (its queue was full) or failed (the shadow version raised).",
            ["outcome"],
            registry=r,
        )
        self.bad_item_count = Gauge(
            "loanrisk_bad_items",
            "Stored items the last listing or report of each view skipped, by view (models, "
            "datasets, drift, performance, backtest, fairness, outcomes) and kind (link, "
            "alias, dataset, log_file, outcome_file, profile); the answer's problems name them.",
            ["view", "kind"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self._bad_kinds: dict[str, set[str]] = {}
        self._serving: dict[tuple[str, str], tuple[str, ...]] = {}
        self._fallbacks: dict[tuple[str, str], tuple[str, ...]] = {}

    def drift(self, report: DriftReport) -> None:
        """Set the stability gauges from a drift report (nothing when the window is empty)."""
        items = ([report.probability] if report.probability else []) + report.features
        for item in items:
            labels = (report.model, str(report.version), item.name)
            self.psi.labels(*labels).set(item.index)
            if item.chance is not None:
                self.psi_chance.labels(*labels).set(item.chance)
        self.bad_items("drift", report.problems)

    def backtest(self, report: BacktestReport) -> None:
        """Set the traffic-light gauges from a backtest (0 green, 1 yellow, 2 red; a grade
        without loans loses its gauge)."""
        for grade in report.grades:
            labels = (report.model, str(report.version), grade.grade)
            if grade.light is None:
                with contextlib.suppress(KeyError):
                    self.backtest_light.remove(*labels)
            else:
                self.backtest_light.labels(*labels).set(LIGHTS[grade.light])
        self.bad_items("backtest", report.problems)

    def fairness(self, report: FairnessWindowReport) -> None:
        """Set the AIR gauges from a fairness report (a group whose AIR is undefined loses
        its gauge)."""
        for figures in report.attributes:
            for group in figures.groups:
                labels = (report.model, str(report.version), figures.attribute, group.group)
                if group.air is None or group.air.air is None:
                    with contextlib.suppress(KeyError):
                        self.air.remove(*labels)
                else:
                    self.air.labels(*labels).set(group.air.air)
        self.bad_items("fairness", report.problems)

    def bad_items(self, view: str, problems: Iterable[Problem]) -> None:
        """Set the bad-item gauges of ``view`` from the problems its last answer met (the
        kinds it no longer meets go back to 0)."""
        counts = Counter_(problem.kind for problem in problems)
        for kind in self._bad_kinds.get(view, set()) - counts.keys():
            self.bad_item_count.labels(view, kind).set(0)
        for kind, count in counts.items():
            self.bad_item_count.labels(view, kind).set(count)
        self._bad_kinds[view] = set(counts)

    def log_written(self, rows: int) -> None:
        self.log_rows.labels("written").inc(rows)

    def log_dropped(self, rows: int) -> None:
        self.log_rows.labels("dropped").inc(rows)

    def model_load_failed(self, model: str, version: int | None) -> None:
        self.model_load_failures.labels(model, "" if version is None else str(version)).inc()

    def predicted(self, model: str, version: int, labels: list[bool], role: str = CHAMPION) -> None:
        self.predicted_counts(model, version, scored=len(labels), defaults=sum(labels), role=role)

    def predicted_batch(
        self, model: str, version: int, summary: BatchSummary, role: str = CHAMPION
    ) -> None:
        """A streamed batch, from the scorer's summary (loans scored, defaults)."""
        self.predicted_counts(
            model, version, scored=summary.scored, defaults=summary.defaults, role=role
        )

    def predicted_counts(
        self, model: str, version: int, *, scored: int, defaults: int, role: str = CHAMPION
    ) -> None:
        counts = self._predicted.get((model, version, role))
        if counts is None:  # a new version or role: its two series, looked up once
            labels = (model, str(version), role)
            counts = (
                self.predictions.labels(*labels, "default"),
                self.predictions.labels(*labels, "non_default"),
            )
            self._predicted[(model, version, role)] = counts
        if defaults:
            counts[0].inc(defaults)
        if scored - defaults:
            counts[1].inc(scored - defaults)

    def shadow(self, outcome: str, rows: int) -> None:
        self.shadow_rows.labels(outcome).inc(rows)

    def serving(
        self,
        model: str,
        version: int | None,
        backend: str,
        role: str = CHAMPION,
        *,
        fallback: str | None = None,
    ) -> None:
        """Note what a worker serves in ``role`` (``version`` None: nothing any more), and the
        cause of its XGBoost fallback (None: none)."""
        served = None if version is None else (model, str(version), backend, role)
        self._switch(self.model, self._serving, (model, role), served)
        fell_back = (
            None if version is None or fallback is None else (model, str(version), role, fallback)
        )
        self._switch(self.backend_fallback, self._fallbacks, (model, role), fell_back)

    @staticmethod
    def _switch(
        gauge: Gauge,
        state: dict[tuple[str, str], tuple[str, ...]],
        key: tuple[str, str],
        now: tuple[str, ...] | None,
    ) -> None:
        """Move the 1 of ``key`` (model, role) from the labels ``state`` holds to ``now``."""
        before = state.get(key)
        if before == now:
            return
        if before is not None:
            gauge.labels(*before).set(0)
        if now is None:
            state.pop(key, None)
            return
        gauge.labels(*now).set(1)
        state[key] = now

    def job_ended(self, record: JobRecord) -> None:
        self.jobs.labels(record.kind, record.state).inc()
        if "total_s" in record.timings:
            self.job_seconds.labels(record.kind).observe(record.timings["total_s"])

    def exposition(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory and records_to_files():
            _forget_dead_workers(directory)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def records_to_files() -> bool:
    """Whether this process's metrics are written to the multi-process directory (decided
    by ``prometheus_client`` when it was imported), rather than kept in memory."""
    return values.ValueClass is not values.MutexValue


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process
        return True
    return True


def _forget_dead_workers(directory: str) -> None:
    """Drop the live-gauge files of workers that are gone, so a dead worker's model version
    does not stay reported as served next to its replacement's."""
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[1]
        if pid.isdigit() and not process_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):  # another worker got there first
                multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]

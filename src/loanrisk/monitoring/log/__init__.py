"""The prediction log: every scored loan, as Parquet on the shared storage.

Layout, under a directory of the storage (setting ``log_directory``)::

    <directory>/model=<name>/day=<YYYY-MM-DD>/<writer>-<n>.parquet

Each writer (one per process: a replica's worker, a batch job, a CLI run) names its files
after its host, pid and a random token, so writers never contend; any process reads every
file of a model as one table. A row (:data:`COLUMNS`) holds the time, the request id, the
caller's loan id, the model, version and backend, where it was scored (``source``), the loan
as received (``features``, JSON: it round-trips exactly), the probability, label and band, the
``grade`` of the version's master scale, the ``score`` in whole points of the version's
scaling, and the ``role`` of the version that scored it:
``champion`` (the served alias), ``canary`` (a share of loans answered by the canary alias) or
``shadow`` (scored alongside, never returned; its rows share the request id and loan id of the
answer's). Files written before roles existed read as ``champion``; files written before
grades (scores) existed read with ``grade`` (``score``) null.

This package holds the format; :mod:`~loanrisk.monitoring.log.writer` writes the log (off the
request path), :mod:`~loanrisk.monitoring.log.reader` reads windows of it for reports, and
:mod:`~loanrisk.monitoring.log.compaction` merges a past day's files. Applicants' data is kept
as the law asks: :mod:`~loanrisk.monitoring.log.retention` removes rows past a model's
retention period, :mod:`~loanrisk.monitoring.log.erasure` removes one loan's rows on request,
and :mod:`~loanrisk.monitoring.log.personal` keeps the schema's personal fields out of the log
in clear. Nothing answered is lost: a server worker writes each call ahead to a local file
(:mod:`~loanrisk.monitoring.log.wal`) that the next start recovers into the log
(:mod:`~loanrisk.monitoring.log.recovery`), and a batch job stages its rows under
``<directory>/staging/`` until its results are published
(:mod:`~loanrisk.monitoring.log.staging`).
"""

from __future__ import annotations

import pyarrow as pa

COLUMNS = pa.schema(
    [
        ("time", pa.timestamp("us", tz="UTC")),
        ("request_id", pa.string()),
        ("loan_id", pa.string()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("backend", pa.string()),
        ("source", pa.string()),
        ("features", pa.string()),
        ("probability", pa.float64()),
        ("label", pa.bool_()),
        ("band", pa.string()),
        ("role", pa.string()),
        ("grade", pa.string()),
        ("score", pa.int64()),
    ]
)

#: The roles a version scores in (see the module's docstring).
CHAMPION, CANARY, SHADOW = "champion", "canary", "shadow"
#: A version a client named explicitly (OIP's ``/versions/{v}``), not the alias's.
DIRECT = "direct"

"""The scorer: a model version behind one fast backend, whatever its kind (XGBoost trees
behind their FeatureSpec, or a scorecard's points table: :mod:`loanrisk.inference.kinds`).

Per loan it returns the probability of default, the label at the decision threshold (default
when p > threshold), a risk band, the grade of the version's master scale
(:mod:`loanrisk.registry.masterscale`) and the score in points of its scaling
(:mod:`loanrisk.registry.scaling`); on request, reason codes (each with its points). The
threshold and the bands are the version's decision policy unless the caller (or an explicitly
set setting, in :func:`scorer_from_settings`) overrides them (:mod:`loanrisk.registry.policy`).
Records (dicts) take a plain-Python path and give typed results
(:mod:`loanrisk.inference.results`); frames and CSV streams are validated and encoded
in batches. A batch with bad rows is refused whole (``on_error="raise"``) or scored without
them (``on_error="skip"``), the bad rows reported by row number either way.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from loanrisk.contracts import OnError
from loanrisk.data.readahead import read_ahead
from loanrisk.errors import InvalidInput
from loanrisk.inference.backends import BackendChoice
from loanrisk.inference.records import (
    CleanRecord,
    ReasonValues,
    RecordRules,
    SpecialCode,
    clean_record,
    require_clean,
)
from loanrisk.inference.results import (
    BandsDescription,
    BatchSummary,
    DeclineReason,
    GradeDescription,
    LoanScore,
    Reason,
    Rejection,
    ScaleDescription,
    SchemaRef,
    Scored,
    ScorerDescription,
)
from loanrisk.inference.runtime import runtime_of
from loanrisk.registry.models import LoadedModel
from loanrisk.registry.policy import DEFAULT_THRESHOLD, PolicySource, served_policy
from loanrisk.schema import (
    MAX_ISSUES,
    MAX_REJECTED_ROWS,
    Issue,
    LoanSchema,
    Validated,
    ValidationReport,
    header_name,
    validate_frame,
)
from loanrisk.schema.rawcsv import iter_csv_chunks
from loanrisk.settings import Settings

CHUNK_ROWS = 100_000
#: ``on_scored(offset, raw chunk, results)``: a chunk of a batch and what it scored.
OnScored = Callable[[int, pd.DataFrame, pd.DataFrame], None]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch is scored (:meth:`Scorer.score_csv`, :meth:`Scorer.score_parquet`): what
    each result carries, and the callbacks that see the batch as it goes."""

    #: A bad row refuses the batch (``raise``: the first bad chunk stops it) or is left out
    #: and reported (``skip``).
    on_error: OnError = "raise"
    #: Rows read, validated and scored at a time (bounds the memory a batch holds).
    chunk_rows: int = CHUNK_ROWS
    #: The input column naming each result (default: the schema's id column, when present).
    id_column: str | None = None
    #: Add each loan's ``top_k`` reasons (``reason_<i>``, ``reason_<i>_code``, ``_value``).
    explain: bool = False
    top_k: int = 4
    #: Add ``decline_codes`` and ``decline_reasons`` to each loan over the threshold.
    decline_reasons: bool = False
    #: ``progress(rows read so far)``, after each chunk.
    progress: Callable[[int], None] | None = None
    #: Each chunk's results frame, as written.
    on_results: Callable[[pd.DataFrame], None] | None = None
    #: Each chunk as read with its results (the prediction log records them).
    on_scored: OnScored | None = None


@dataclass(frozen=True)
class Bands:
    """Risk bands by probability of default: ``names[i]`` below ``cutoffs[i]``, the last above.

    The default splits at 0.2 and 0.5: "low" below the public data's default rate (~22%),
    "high" where the reference's label says default (p > 0.5), "medium" between.
    """

    cutoffs: tuple[float, ...] = (0.2, 0.5)
    names: tuple[str, ...] = ("low", "medium", "high")

    def __post_init__(self) -> None:
        if len(self.names) != len(self.cutoffs) + 1 or list(self.cutoffs) != sorted(self.cutoffs):
            raise InvalidInput("bands need ascending cut-offs and one more name than cut-offs")

    def of(self, probability: float) -> str:
        return self.names[bisect.bisect_right(self.cutoffs, probability)]

    def of_many(self, probability: np.ndarray) -> np.ndarray:
        names: np.ndarray = np.array(self.names, dtype=object)
        return names[np.searchsorted(np.array(self.cutoffs), probability, side="right")]


def _with_offsets(frames: Iterator[pd.DataFrame]) -> Iterator[tuple[int, pd.DataFrame]]:
    offset = 0
    for frame in frames:
        yield offset, frame
        offset += len(frame)


class Scorer:
    """Scores loans with one model version. Immutable after construction; thread-safe."""

    def __init__(
        self,
        model: LoadedModel,
        *,
        backend: BackendChoice = "auto",
        nthread: int = 1,
        threshold: float | None = None,
        bands: Bands | None = None,
        policy_source: Mapping[str, PolicySource] | None = None,
    ) -> None:
        """``threshold`` and ``bands`` default to the version's decision policy (versions
        without one: 0.5 and :class:`Bands`' default); ``policy_source`` says where each came
        from, for :meth:`describe` (default: ``given`` for those passed)."""
        started = time.perf_counter()
        self.model = model
        self.schema = model.schema
        self.rules = RecordRules(model.schema, spec=model.spec)
        #: The version's kind at work: encoder, backend and explainer (:mod:`.kinds`).
        self.runtime = runtime_of(model, backend=backend, nthread=nthread)
        if self.runtime.missing_as is not None:  # warnings say how the kind scores a gap
            self.rules.missing_as = self.runtime.missing_as
        self.encoder = self.runtime.encoder
        self.backend, self.fallback = self.runtime.backend, self.runtime.fallback
        recorded = model.manifest.policy
        fallback: PolicySource = "version" if recorded is not None else "default"
        self.threshold = (
            threshold
            if threshold is not None
            else (recorded.threshold if recorded is not None else DEFAULT_THRESHOLD)
        )
        self.bands = bands or (
            Bands(recorded.band_cutoffs, recorded.band_names) if recorded is not None else Bands()
        )
        #: The version's master scale, as the lookup every scored loan is graded with.
        self.grader = model.master_scale.grader
        #: The version's points scaling: every scored loan's ``score`` (``score_of``: its
        #: per-loan function, :meth:`~loanrisk.registry.scaling.Scaling.scorer`).
        self.scaling = model.scaling
        self.score_of = model.scaling.scorer()
        self.policy_source: dict[str, PolicySource] = dict(
            policy_source
            or {
                "threshold": "given" if threshold is not None else fallback,
                "bands": "given" if bands is not None else fallback,
            }
        )
        self.load_seconds = time.perf_counter() - started

    @property
    def version(self) -> int:
        return self.model.version

    def describe(self) -> ScorerDescription:
        return ScorerDescription(
            model=self.model.name,
            version=self.model.version,
            schema_ref=SchemaRef(name=self.schema.name, hash=self.schema.fingerprint()),
            backend=self.backend.name,
            fallback_reason=self.fallback.reason if self.fallback else None,
            fallback_cause=self.fallback.cause if self.fallback else None,
            threshold=self.threshold,
            bands=BandsDescription(cutoffs=list(self.bands.cutoffs), names=list(self.bands.names)),
            policy_source=dict(self.policy_source),
            master_scale=ScaleDescription(
                name=self.model.master_scale.name,
                grades=[
                    GradeDescription(name=g.name, lower=g.lower, upper=g.upper)
                    for g in self.model.master_scale.grades
                ],
            ),
            scaling=self.scaling,
            load_seconds=round(self.load_seconds, 4),
        )

    def reasons(
        self, features: np.ndarray, values: Sequence[ReasonValues], *, top_k: int = 4
    ) -> list[list[Reason]]:
        """The reasons of encoded loans ``features`` (raw ``values``), from the version's
        reason catalog (the schema's derived one for versions published before catalogs)."""
        return self.runtime.explain(features, values, top_k=top_k)

    # -- records ----------------------------------------------------------------------

    def score_record(
        self, record: Mapping[str, Any], *, explain: bool = False, top_k: int = 4
    ) -> LoanScore:
        """One loan (``record`` 0); raises :class:`InvalidInput` naming the bad fields."""
        clean = require_clean(record, self.rules)
        row = np.array([self.encoder.encode_record(clean)], dtype=np.float32)
        probability = float(self.backend.predict_proba(row)[0])
        return LoanScore(
            0,
            self.model.version,
            probability,
            probability > self.threshold,
            self.bands.of(probability),
            self.grader.of(probability),
            self.score_of(probability),
            clean.warnings,
            self.reasons(row, [clean.reason_values], top_k=top_k)[0] if explain else None,
        )

    def score_records(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        on_error: OnError = "raise",
        explain: bool = False,
        top_k: int = 4,
        decline_reasons: bool = False,
    ) -> Scored:
        """Many loans: their scores and the rejected loans with their bad fields, in order;
        each result carries its 0-based ``record`` index. ``decline_reasons`` adds, to each
        loan over the threshold, the reasons its adverse-action notice states (``code``,
        ``reason``); an approved loan has none."""
        if not records:
            raise InvalidInput("no records given")
        good: list[tuple[int, CleanRecord]] = []
        rejected: list[Rejection] = []
        for index, record in enumerate(records):
            clean = clean_record(record, self.rules)
            if isinstance(clean, CleanRecord):
                good.append((index, clean))
            elif on_error == "raise":
                require_clean(record, self.rules, index=index)
            else:
                rejected.append(Rejection(index, clean))
        results: list[LoanScore] = []
        if good:
            matrix = np.array([self.encoder.encode_record(c) for _, c in good], dtype=np.float32)
            probabilities = self.backend.predict_proba(matrix)
            reasons = (
                self.reasons(matrix, [c.reason_values for _, c in good], top_k=top_k)
                if explain or decline_reasons
                else None
            )
            version, threshold, band = self.model.version, self.threshold, self.bands.of
            grade, score = self.grader.of, self.score_of
            for i, ((index, clean), p) in enumerate(zip(good, probabilities.tolist(), strict=True)):
                label = p > threshold
                declined = None
                if reasons is not None and decline_reasons:  # an approved loan has none
                    declined = [DeclineReason(r.code, r.reason) for r in reasons[i] if label]
                results.append(
                    LoanScore(
                        index,
                        version,
                        p,
                        label,
                        band(p),
                        grade(p),
                        score(p),
                        clean.warnings,
                        reasons[i] if reasons is not None and explain else None,
                        declined,
                    )
                )
        return Scored(results, rejected)

    # -- batches ----------------------------------------------------------------------

    def score_frame(
        self,
        frame: pd.DataFrame,
        *,
        on_error: OnError = "raise",
        row_offset: int = 0,
        explain: bool = False,
        top_k: int = 4,
        decline_reasons: bool = False,
    ) -> tuple[pd.DataFrame, ValidationReport]:
        """Score a raw frame of loans: ``(results, report)``; results have the input ``row``
        number (1-based), ``probability``, ``label``, ``band``, ``grade`` and ``score`` (whole
        points, int64); with ``explain``, also ``reason_1`` .. ``reason_<top_k>`` (the
        attributes that raised the risk most, empty where fewer did), ``reason_<i>_code`` (the
        catalog's code), ``reason_<i>_value`` (the applicant's value) and ``reason_<i>_points``
        (the points it cost, 2 decimals); with ``decline_reasons``,
        ``decline_codes`` and ``decline_reasons``: for each loan over the threshold, its
        reasons' codes and statements (``; ``-separated), empty for an approved loan."""
        loans = validate_frame(
            frame,
            schema=self.schema,
            mode="score",
            row_offset=row_offset,
            on_error="drop" if on_error == "skip" else "raise",
        )
        positions = loans.row_numbers - 1 - row_offset
        features = self.encoder.encode_frame(
            loans, lambda: special_codes(self.schema, frame, positions)
        )
        probability = self.backend.predict_proba(features) if len(loans.frame) else np.zeros(0)
        results = pd.DataFrame(
            {
                "row": loans.row_numbers,
                "probability": probability,
                "label": probability > self.threshold,
                "band": self.bands.of_many(probability),
                "grade": self.grader.of_many(probability),
                "score": self.scaling.scores_of(probability),
            }
        )
        if explain or decline_reasons:
            values = self._reason_values(frame, loans, row_offset)
            reasons = self.reasons(features, values, top_k=top_k) if values else []
            if explain:
                _add_reasons(results, reasons, top_k)
            if decline_reasons:
                _add_decline_reasons(results, reasons)
        return results, loans.report

    def _reason_values(
        self, raw: pd.DataFrame, loans: Validated, row_offset: int
    ) -> list[dict[str, float | str | SpecialCode | None]]:
        """The values reasons speak of, per validated loan of the raw frame ``raw``: the
        loan's values (None where missing), a special code where the loan held one."""
        frame = loans.frame.astype(object).where(loans.frame.notna(), None)
        values: list[dict[str, float | str | SpecialCode | None]] = [
            {str(k): v for k, v in row.items()} for row in frame.to_dict("records")
        ]
        positions = loans.row_numbers - 1 - row_offset
        for name, codes in special_codes(self.schema, raw, positions).items():
            for i, code in codes.items():
                values[i][name] = code
        return values

    def score_parquet(
        self,
        source: IO[bytes],
        output: IO[bytes] | None = None,
        options: BatchOptions | None = None,
    ) -> BatchSummary:
        """:meth:`score_csv` for Parquet input (read batch by batch, bounded memory)."""
        options = options or BatchOptions()
        try:
            batches = pq.ParquetFile(source).iter_batches(batch_size=options.chunk_rows)
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"not a readable Parquet file: {exc}") from None
        chunks_of = read_ahead(_with_offsets(b.to_pandas() for b in batches))
        with contextlib.closing(chunks_of) as chunks:
            return self._score_chunks(chunks, output, options)

    def score_csv(
        self,
        source: IO[bytes],
        output: IO[bytes] | None = None,
        options: BatchOptions | None = None,
    ) -> BatchSummary:
        """Stream a CSV of any size through the model in chunks (bounded memory), writing
        ``row[,id],probability,label,band,grade,score`` CSV to ``output`` (the id is
        ``id_column``, or the schema's id column when the input has it) and handing each chunk's
        results frame to ``on_results``. Returns the counts (scored, defaults, rejected),
        the rejected rows and their grouped issues. With ``on_error="raise"`` the first bad chunk
        stops the batch. ``on_scored(offset, raw chunk, results)`` sees each chunk as read
        and its results (the prediction log records them). ``options``: see
        :class:`BatchOptions` (default: its defaults)."""
        options = options or BatchOptions()
        chunks_of = read_ahead(
            iter_csv_chunks(source, chunk_rows=options.chunk_rows, schema=self.schema)
        )
        with contextlib.closing(chunks_of) as chunks:
            return self._score_chunks(chunks, output, options)

    def score_chunk(
        self,
        offset: int,
        chunk: pd.DataFrame,
        *,
        on_error: OnError = "skip",
        id_column: str | None = None,
        on_scored: OnScored | None = None,
    ) -> BatchSummary:
        """One chunk of a batch another scorer read (rows ``offset + 1`` on), scored as
        :meth:`score_csv` scores each of its chunks, with nothing written; its summary."""
        options = BatchOptions(on_error=on_error, id_column=id_column, on_scored=on_scored)
        return self._score_chunks(iter([(offset, chunk)]), None, options)

    def _score_chunks(
        self,
        chunks: Iterator[tuple[int, pd.DataFrame]],
        output: IO[bytes] | None,
        options: BatchOptions,
    ) -> BatchSummary:
        scored = rejected = defaults = 0
        issues: list[Issue] = []
        rejected_rows: list[int] = []
        header_written = False
        id_column = options.id_column
        declared_id = self.schema.id_name
        for offset, chunk in chunks:
            if id_column is None and declared_id is not None and declared_id in chunk.columns:
                id_column = declared_id  # the schema's id column names each result
            ids = chunk[id_column].to_numpy() if id_column and id_column in chunk.columns else None
            if id_column and ids is None:
                raise InvalidInput(f"id column {id_column!r} is not in the input")
            results, report = self.score_frame(
                chunk.drop(columns=[id_column] if ids is not None else []),
                on_error=options.on_error,
                row_offset=offset,
                explain=options.explain,
                top_k=options.top_k,
                decline_reasons=options.decline_reasons,
            )
            if ids is not None:
                results.insert(1, id_column or "id", ids[results["row"].to_numpy() - 1 - offset])
            scored += len(results)
            defaults += int(results["label"].sum())
            rejected += len(chunk) - len(results)  # the report's row list is capped
            issues += report.rejected
            rejected_rows += report.rejected_rows[: MAX_REJECTED_ROWS - len(rejected_rows)]
            if output is not None:
                _write_csv(results, output, header=not header_written)
                header_written = True
            _observe(options, offset, chunk, results)
        return BatchSummary(
            scored, defaults, rejected, rejected_rows, issues[:MAX_ISSUES], self.describe()
        )


def _observe(
    options: BatchOptions, offset: int, chunk: pd.DataFrame, results: pd.DataFrame
) -> None:
    """Hand a scored chunk to the batch's callbacks."""
    if options.on_results is not None:
        options.on_results(results)
    if options.on_scored is not None:
        options.on_scored(offset, chunk, results)
    if options.progress is not None:
        options.progress(offset + len(chunk))


def _write_csv(results: pd.DataFrame, output: IO[bytes], *, header: bool) -> None:
    """A chunk's results as CSV rows (with the header first)."""
    text = io.StringIO()
    results.to_csv(text, index=False, header=header, float_format="%.8g", quoting=csv.QUOTE_MINIMAL)
    output.write(text.getvalue().encode())


def _add_reasons(results: pd.DataFrame, reasons: list[list[Reason]], top_k: int) -> None:
    """``reason_1`` .. ``reason_<top_k>`` (attribute, ``_code``, ``_value``, ``_points``),
    empty where a loan has fewer."""
    for i in range(top_k):
        top = [r[i] if i < len(r) else None for r in reasons]
        results[f"reason_{i + 1}"] = [t.feature if t else "" for t in top]
        results[f"reason_{i + 1}_code"] = [t.code if t else "" for t in top]
        results[f"reason_{i + 1}_value"] = [t.value if t else None for t in top]
        results[f"reason_{i + 1}_points"] = [round(t.points, 2) if t else None for t in top]


def _add_decline_reasons(results: pd.DataFrame, reasons: list[list[Reason]]) -> None:
    """``decline_codes`` and ``decline_reasons``: a declined loan's reasons (``; ``-joined),
    empty for an approved one."""
    declined = results["label"].to_numpy()
    results["decline_codes"] = [
        "; ".join(r.code or "" for r in rs) if d else ""
        for rs, d in zip(reasons, declined, strict=True)
    ]
    results["decline_reasons"] = [
        "; ".join(r.reason for r in rs) if d else ""
        for rs, d in zip(reasons, declined, strict=True)
    ]


def special_codes(
    schema: LoanSchema, raw: pd.DataFrame, positions: np.ndarray
) -> dict[str, dict[int, SpecialCode]]:
    """The declared special codes among a raw frame's rows at ``positions`` (the rows that
    passed validation, in order): per column, result index -> the code and its meaning."""
    columns = {header_name(c): c for c in raw.columns}
    out: dict[str, dict[int, SpecialCode]] = {}
    for column in schema.features:
        if not column.special_missing or column.name not in columns:
            continue
        text = raw[columns[column.name]].iloc[positions].astype("string").str.strip()
        if column.type in ("numeric", "integer"):
            keys = pd.to_numeric(text, errors="coerce")
        else:
            keys = text.str.upper()
        hits = np.flatnonzero(keys.isin(list(column.special_missing)).to_numpy(dtype=bool))
        if hits.size:
            out[column.name] = {
                int(i): SpecialCode(text.iloc[i], column.special_meaning(keys.iloc[i]))
                for i in hits
            }
    return out


def scorer_from_settings(
    model: LoadedModel, settings: Settings, *, nthread: int | None = None
) -> Scorer:
    """The scorer the settings ask for (backend, nthread) with the decision policy they
    resolve to (:func:`~loanrisk.registry.policy.served_policy`: a threshold or band setting
    set explicitly overrides the version's policy; otherwise the version's; versions without
    one use the settings); ``nthread`` defaults to the setting (the service passes 1: a
    worker per core scores its small requests on its event loop)."""
    served = served_policy(model.manifest.policy, settings)
    return Scorer(
        model,
        backend=settings.backend,
        nthread=nthread or settings.nthread,
        threshold=served.policy.threshold,
        bands=Bands(served.policy.band_cutoffs, served.policy.band_names),
        policy_source=served.describe(),
    )


def check_servable(scorer: Scorer) -> Scorer:
    """``scorer`` scores the schema's example loan, with its reasons, to a probability in
    [0, 1]; raises otherwise."""
    probability = scorer.score_record(scorer.schema.example_record(), explain=True).probability
    if not 0.0 <= probability <= 1.0:
        raise InvalidInput(f"it scores a loan to {probability!r}, not a probability")
    return scorer


def servable_check(settings: Settings) -> Callable[[LoadedModel], Scorer]:
    """A check for :meth:`ModelRegistry.promote`: the version builds the scorer the settings
    ask for (the oneDAL parity check included) and passes :func:`check_servable`."""

    def check(model: LoadedModel) -> Scorer:
        return check_servable(scorer_from_settings(model, settings, nthread=1))

    return check

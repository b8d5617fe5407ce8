"""The data-processing job: validated loans -> expanded -> split -> fitted -> stored dataset.

The rows stream: each chunk of an expansion is split and appended to the train and test
Parquet files on the storage before the next is made, so memory does not grow with ``size``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import numpy as np
import pandas as pd

from loanrisk._version import __version__
from loanrisk.contracts import DatasetManifest, LabelRates, RowCounts
from loanrisk.data.datasets import (
    SCHEMA,
    SPEC,
    DatasetCatalogue,
    ParquetSink,
    Split,
    special_file,
)
from loanrisk.data.expand import expand_chunks
from loanrisk.data.split import split_frame
from loanrisk.data.stats import column_stats
from loanrisk.errors import InvalidInput
from loanrisk.features.fit import fit_feature_spec
from loanrisk.registry.manifest import FileEntry
from loanrisk.schema import LoanSchema, Validated, builtin_schema
from loanrisk.storage.base import Storage

#: ``progress(stage, done, total)``; stages: expand, split, fit, write.
StageProgress = Callable[[str, int, int], None]


def new_dataset_id(now: datetime) -> str:
    return f"ds-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def process_dataset(
    loans: Validated,
    storage: Storage,
    *,
    source: str,
    size: int | None = None,
    directory: str = "data",
    seed: int = 0,
    test_fraction: float = 0.25,
    stratify: bool = True,
    progress: StageProgress | None = None,
    schema: LoanSchema | None = None,
) -> DatasetManifest:
    """Process validated loans into a dataset on ``storage`` and return its manifest.

    ``loans`` were validated against ``schema`` (default: the built-in one); the dataset
    stores it, and the split is stratified on its label. Where the loans carry the special
    codes they held (``loans.special``: training data whose schema declares codes treated
    as missing), each split's codes are stored beside it, row for row
    (:func:`~loanrisk.data.datasets.special_file`), for the binning engine; the splits
    themselves hold those values as missing, as the model receives them.

    ``size`` expands the data to that many rows (no expansion when it is not larger than the
    input, as in the reference). An expansion is made, split and written chunk by chunk
    (:data:`~loanrisk.data.expand.CHUNK_ROWS` rows), so memory holds the input, one chunk and
    the rows the preprocessing is fitted on (the training part of the first chunk, at most
    :data:`MAX_FIT_ROWS` of them), never the expanded table. Nothing is listed
    until every file is written: a failure at any step leaves no dataset behind.
    """
    report = progress or (lambda stage, done, total: None)
    schema = schema or builtin_schema()
    label = schema.label_name
    catalogue = DatasetCatalogue(storage, directory)
    now = datetime.now(UTC)
    dataset_id = new_dataset_id(now)
    timings = dict.fromkeys(("expand", "split", "fit", "write"), 0.0)
    frame = loans.frame
    target = size if size is not None else len(frame)
    plan = _SplitPlan(
        expanded=target > len(frame),
        seed=seed,
        test_fraction=test_fraction,
        stratify=stratify,
        label=label,
        codes=not loans.special.columns.empty,
    )
    carried = _carrying_codes(frame, loans.special)
    try:
        chunks = (
            expand_chunks(
                carried, target, seed=seed, progress=partial(report, "expand"), schema=schema
            )
            if plan.expanded
            else iter([carried])
        )
        parts = _write_parts(catalogue, dataset_id, chunks, plan, report, timings)

        clock = time.perf_counter()
        report("fit", 0, 1)
        fit_rows = _fit_sample(parts.fit_rows, seed)
        spec = fit_feature_spec(fit_rows, schema)
        stats = column_stats(fit_rows, schema)
        report("fit", 1, 1)
        timings["fit"] = time.perf_counter() - clock

        clock = time.perf_counter()
        report("write", 2, 3)
        files = dict(parts.files)
        for name, body in ((SPEC, spec.to_json()), (SCHEMA, schema.to_json())):
            data = body.encode()
            catalogue.write_file(dataset_id, name, data)
            files[name] = FileEntry(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        timings["write"] += time.perf_counter() - clock
        manifest = DatasetManifest(
            id=dataset_id,
            directory=directory,
            source=source,
            requested_size=size,
            expanded=plan.expanded,
            seed=seed,
            test_fraction=test_fraction,
            stratified=stratify,
            rows=RowCounts(
                input=len(frame), total=parts.rows, train=parts.train_rows, test=parts.test_rows
            ),
            label_rate=parts.label_rates(),
            schema_hash=schema.fingerprint(),
            schema_name=schema.name,
            kept_columns=[
                str(c) for c in frame.columns if c not in schema.feature_names and c != label
            ],
            feature_spec=spec.fingerprint(),
            feature_columns=list(spec.output_columns),
            fitted_on_rows=len(fit_rows),
            columns=stats,
            quality=loans.report.quality(),
            files=files,
            timings={k: round(v, 4) for k, v in timings.items()},
            created_at=now.isoformat(),
            loanrisk_version=__version__,
        )
        catalogue.publish(manifest)
    except BaseException:
        catalogue.delete(dataset_id)
        raise
    report("write", 3, 3)
    return manifest


#: Prefix of the columns that carry each loan's special codes through expansion and split
#: (upper-case: no schema or kept column can be named so, they are lower-case).
_CODE = "Special code: "


def _carrying_codes(frame: pd.DataFrame, special: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the special codes its loans held as extra categorical columns, so
    that expansion repeats them with their rows (a loan's value stays missing, the noise of
    a missing number is missing) and the split takes them with their rows; no copy."""
    if special.columns.empty:
        return frame
    carried = frame.copy(deep=False)
    for name in special.columns:
        carried[_CODE + name] = special[name].array
    return carried


def _parted(part: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A split part as stored: the loans (without the carried codes), and the codes."""
    carried = [c for c in part.columns if str(c).startswith(_CODE)]
    if not carried:
        return part, pd.DataFrame(index=part.index)
    codes = part[carried].rename(columns=lambda c: c.removeprefix(_CODE))
    return part.drop(columns=carried), codes


def _files(plan: _SplitPlan) -> list[str]:
    """The Parquet files a dataset's rows are written to: the splits, and the special codes
    of their loans where the schema declares codes treated as missing."""
    splits: tuple[Split, ...] = ("train", "test")
    codes = [special_file(s) for s in splits] if plan.codes else []
    return [*(f"{s}.parquet" for s in splits), *codes]


@dataclass(frozen=True)
class _SplitPlan:
    """How each chunk is split into train and test rows."""

    expanded: bool
    seed: int
    test_fraction: float
    stratify: bool
    label: str
    #: The loans carry their special codes (``Validated.special``): their files are written.
    codes: bool = False

    def split(self, chunk: pd.DataFrame, number: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Chunk ``number``'s train and test rows; one stream per chunk of an expansion, the
        input's own split keeps ``seed``. Raises :class:`InvalidInput` for too few rows."""
        try:
            return split_frame(
                chunk,
                test_fraction=self.test_fraction,
                stratify=self.stratify,
                seed=[self.seed, number] if self.expanded else self.seed,
                allow_empty=self.expanded,
                label=self.label,
            )
        except ValueError as exc:  # too few rows (or of one class) for both parts
            raise InvalidInput(f"cannot split the loans into train and test: {exc}") from None


@dataclass
class _Parts:
    """The train and test files as written, with the counts the manifest states and the
    rows the preprocessing is fitted on (the training part of the first chunk)."""

    fit_rows: pd.DataFrame
    files: dict[str, FileEntry]
    train_rows: int
    test_rows: int
    rows: int
    defaults: int
    train_defaults: int

    def label_rates(self) -> LabelRates:
        return LabelRates(
            total=self.defaults / self.rows,
            train=self.train_defaults / self.train_rows,
            test=(self.defaults - self.train_defaults) / self.test_rows,
        )


def _write_parts(
    catalogue: DatasetCatalogue,
    dataset_id: str,
    chunks: Iterator[pd.DataFrame],
    plan: _SplitPlan,
    report: StageProgress,
    timings: dict[str, float],
) -> _Parts:
    """Split each chunk and append its parts to the dataset's train and test Parquet files
    (one chunk held at a time), adding the seconds spent to ``timings``. Raises
    :class:`InvalidInput` if either part would be empty."""
    label = plan.label
    totals = {"rows": 0, "defaults": 0, "train_defaults": 0}
    fit_rows: pd.DataFrame | None = None
    with ExitStack() as files_open:
        sinks = {
            file: ParquetSink(files_open.enter_context(catalogue.open_file(dataset_id, file)))
            for file in _files(plan)
        }
        clock = time.perf_counter()
        for number, chunk in enumerate(chunks):
            timings["expand"] += time.perf_counter() - clock
            clock = time.perf_counter()
            report("split", number, number + 1)
            train, test = plan.split(chunk, number)
            timings["split"] += time.perf_counter() - clock
            clock = time.perf_counter()
            parts: tuple[tuple[Split, pd.DataFrame], ...] = (("train", train), ("test", test))
            for name, part in parts:
                part, codes = _parted(part)
                if name == "train":
                    train = part
                if len(part):
                    sinks[f"{name}.parquet"].append(part)
                    if plan.codes:
                        sinks[special_file(name)].append(codes)
            timings["write"] += time.perf_counter() - clock
            totals["rows"] += len(chunk)
            totals["defaults"] += int(chunk[label].sum())
            totals["train_defaults"] += int(train[label].sum())
            if fit_rows is None:
                fit_rows = train
            del chunk, train, test
            clock = time.perf_counter()
        train_rows, test_rows = sinks["train.parquet"].rows, sinks["test.parquet"].rows
        if train_rows == 0 or test_rows == 0:
            raise InvalidInput(
                f"cannot split the loans into train and test: {totals['rows']} rows are "
                f"too few to split {1 - plan.test_fraction:.0%}/{plan.test_fraction:.0%}"
            )
        report("split", 1, 1)
        clock = time.perf_counter()
        files: dict[str, FileEntry] = {name: sink.close() for name, sink in sinks.items()}
        timings["write"] += time.perf_counter() - clock
    assert fit_rows is not None
    return _Parts(fit_rows, files, train_rows, test_rows, **totals)


#: Most training rows the preprocessing is fitted on (and the column statistics taken from).
MAX_FIT_ROWS = 1_000_000


def _fit_sample(train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The rows to fit on: all of them up to :data:`MAX_FIT_ROWS`, else a seeded sample
    (medians, Yeo-Johnson lambdas and means of a million rows are those of the population
    to well within what the model can tell apart)."""
    if len(train) <= MAX_FIT_ROWS:
        return train
    rows = np.random.default_rng([seed, 1]).choice(len(train), MAX_FIT_ROWS, replace=False)
    return train.take(np.sort(rows)).reset_index(drop=True)

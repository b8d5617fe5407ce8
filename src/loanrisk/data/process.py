"""The data-processing job: validated loans -> expanded -> split -> fitted -> stored dataset."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

import loanrisk
from loanrisk.data.datasets import SPEC, DatasetCatalogue, parquet_bytes
from loanrisk.data.expand import expand
from loanrisk.data.split import split_frame
from loanrisk.data.stats import column_stats
from loanrisk.errors import InvalidInput
from loanrisk.features.fit import fit_feature_spec
from loanrisk.schema import FEATURES, LABEL, Validated, schema_hash
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
) -> dict[str, Any]:
    """Process validated loans into a dataset on ``storage`` and return its manifest.

    ``size`` expands the data to that many rows (no expansion when it is not larger than the
    input, as in the reference). Nothing is listed until every file is written: a failure at
    any step leaves no dataset behind under the catalogue.
    """
    report = progress or (lambda stage, done, total: None)
    catalogue = DatasetCatalogue(storage, directory)
    now = datetime.now(UTC)
    dataset_id = new_dataset_id(now)
    timings: dict[str, float] = {}

    clock = time.perf_counter()
    target = size if size is not None else len(loans.frame)
    frame = expand(loans.frame, target, seed=seed, progress=lambda d, t: report("expand", d, t))
    timings["expand"] = time.perf_counter() - clock

    clock = time.perf_counter()
    report("split", 0, 1)
    try:
        train, test = split_frame(frame, test_fraction=test_fraction, seed=seed, stratify=stratify)
    except ValueError as exc:  # too few rows (or of one class) for a train and a test part
        raise InvalidInput(f"cannot split the loans into train and test: {exc}") from None
    total_rows, label_rate = len(frame), float(frame[LABEL].mean())
    del frame
    report("split", 1, 1)
    timings["split"] = time.perf_counter() - clock

    clock = time.perf_counter()
    report("fit", 0, 1)
    spec = fit_feature_spec(train)
    stats = column_stats(train)
    report("fit", 1, 1)
    timings["fit"] = time.perf_counter() - clock

    clock = time.perf_counter()
    files: dict[str, dict[str, Any]] = {}
    parts = (("train.parquet", train), ("test.parquet", test), (SPEC, None))
    try:
        for done, (name, part) in enumerate(parts):
            report("write", done, len(parts))
            data = parquet_bytes(part) if part is not None else spec.to_json().encode()
            catalogue.write_file(dataset_id, name, data)
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        timings["write"] = time.perf_counter() - clock
        manifest = {
            "id": dataset_id,
            "directory": directory,
            "source": source,
            "requested_size": size,
            "expanded": target > len(loans.frame),
            "seed": seed,
            "test_fraction": test_fraction,
            "stratified": stratify,
            "rows": {
                "input": len(loans.frame),
                "total": total_rows,
                "train": len(train),
                "test": len(test),
            },
            "label_rate": {
                "total": label_rate,
                "train": float(np.mean(train[LABEL])),
                "test": float(np.mean(test[LABEL])),
            },
            "schema_hash": schema_hash(),
            "kept_columns": [c for c in train.columns if c not in FEATURES and c != LABEL],
            "feature_spec": spec.fingerprint(),
            "feature_columns": list(spec.output_columns),
            "columns": stats,
            "quality": loans.report.to_dict(),
            "files": files,
            "timings": {k: round(v, 4) for k, v in timings.items()},
            "created_at": now.isoformat(),
            "loanrisk_version": loanrisk.__version__,
        }
        catalogue.publish(manifest)
    except BaseException:
        catalogue.delete(dataset_id)
        raise
    report("write", len(parts), len(parts))
    return manifest

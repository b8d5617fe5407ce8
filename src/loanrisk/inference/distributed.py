"""Portfolio scoring on a Dask cluster: ``loanrisk predict 's3://bucket/portfolio/*.parquet'
--dask-scheduler tcp://... --output s3://bucket/scored/``.

The client loads and verifies the model version once and hands the workers its files
(the booster's UBJSON, FeatureSpec, schema, calibration and reason catalog: bytes and JSON,
the same files the registry stores). Each worker builds the same :class:`Scorer` from them
once per process and scores its partitions of the Parquet input. The results are written by
the workers as partitioned Parquet under ``--output``, one file per input partition, in input
order: ``probability``, ``label``, ``band`` (and the id column, the reason and decline
columns when asked). They are written to ``<output>.partial`` first and moved into place once
every partition is written; a failed run removes them. Needs the ``dask`` extra.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import fsspec
import pandas as pd
import xgboost as xgb

from loanrisk.contracts import ModelManifest, OnError
from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec
from loanrisk.inference.calibration import Calibration
from loanrisk.inference.reasons import ReasonCatalog
from loanrisk.inference.scorer import Bands, Scorer
from loanrisk.registry.models import LoadedModel
from loanrisk.schema import parse_schema
from loanrisk.settings import Settings
from loanrisk.storage import storage_options


@dataclass(frozen=True)
class ModelFiles:
    """A verified version as the workers receive it: its stored files, no Python objects."""

    name: str
    version: int
    booster: bytes
    spec: str
    schema: str
    manifest: str
    calibration: str | None
    reasons: str | None
    threshold: float
    band_cutoffs: tuple[float, ...]
    band_names: tuple[str, ...]
    backend: str

    @classmethod
    def of(cls, model: LoadedModel, settings: Settings) -> ModelFiles:
        return cls(
            name=model.name, version=model.version,
            booster=bytes(model.booster.save_raw("ubj")), spec=model.spec.to_json(),
            schema=model.schema.to_json(), manifest=model.manifest.model_dump_json(),
            calibration=model.calibration.to_json() if model.calibration else None,
            reasons=model.reasons.model_dump_json() if model.reasons else None,
            threshold=settings.threshold, band_cutoffs=settings.band_cutoffs,
            band_names=settings.band_names, backend=settings.backend,
        )  # fmt: skip

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.booster + self.spec.encode() + self.schema.encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def _scorer(files: ModelFiles) -> Scorer:
    """The worker's scorer of ``files``, built once per process (and model)."""
    booster = xgb.Booster()
    booster.load_model(bytearray(files.booster))
    model = LoadedModel(
        name=files.name, version=files.version, booster=booster,
        spec=FeatureSpec.from_json(files.spec), manifest=ModelManifest.model_validate_json(
            files.manifest), report={},
        schema=parse_schema(files.schema, source=f"model {files.name!r} version {files.version}"),
        calibration=Calibration.from_json(files.calibration) if files.calibration else None,
        reasons=ReasonCatalog.model_validate_json(files.reasons) if files.reasons else None,
    )  # fmt: skip
    return Scorer(model, backend=files.backend,  # type: ignore[arg-type]
                  threshold=files.threshold,
                  bands=Bands(files.band_cutoffs, files.band_names))  # fmt: skip


def score_partition(
    part: pd.DataFrame,
    files: ModelFiles,
    *,
    on_error: OnError,
    id_column: str | None,
    explain: bool,
    decline_reasons: bool,
) -> pd.DataFrame:
    """One partition's results, in its row order (bad rows refused, or left out with
    ``on_error="skip"``)."""
    part = part.reset_index(drop=True)
    ids = part[id_column].to_numpy() if id_column else None
    features = part.drop(columns=[id_column]) if id_column else part
    results, _ = _scorer(files).score_frame(features, on_error=on_error, explain=explain,
                                            decline_reasons=decline_reasons)  # fmt: skip
    if ids is not None:
        results.insert(0, id_column or "id", ids[results["row"].to_numpy() - 1])
    results = results.drop(columns=["row"]).reset_index(drop=True)
    for column in results.columns:
        if results[column].dtype == object:
            results[column] = results[column].astype("string")
    return results


def score_on_dask(
    model: LoadedModel,
    settings: Settings,
    *,
    source: str,
    output: str,
    scheduler: str,
    on_error: OnError = "raise",
    id_column: str | None = None,
    explain: bool = False,
    decline_reasons: bool = False,
) -> dict[str, Any]:
    """Score the Parquet file(s) ``source`` (a path, a glob or a URI) on the cluster at
    ``scheduler`` and write the results under ``output``; a summary of what was done."""
    try:
        import dask
        import dask.dataframe as dd
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise InvalidInput("scoring on Dask needs the dask extra: loanrisk[dask]") from None
    if not source.endswith(".parquet"):
        raise InvalidInput("scoring on a Dask cluster reads Parquet (a file, a glob or a "
                           "directory of .parquet files)")  # fmt: skip
    files = ModelFiles.of(model, settings)
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        workers = len(client.scheduler_info()["workers"])
        frame = dd.read_parquet(source, storage_options=storage_options(settings, source))
        if id_column is not None and id_column not in frame.columns:
            raise InvalidInput(f"id column {id_column!r} is not in the input")
        sample = frame.partitions[0].head(2, compute=True)
        options: dict[str, Any] = {"id_column": id_column, "explain": explain,
                                   "decline_reasons": decline_reasons}  # fmt: skip
        meta = score_partition(sample, files, on_error="skip", **options).iloc[:0]
        scored = frame.map_partitions(
            score_partition, files, on_error=on_error, meta=meta, **options
        )
        # One pass: the scored partitions are written and counted from the same graph, into
        # a ".partial" folder that becomes ``output`` only once every partition is written.
        options = storage_options(settings, output)
        fs, final = fsspec.core.url_to_fs(output, **options)
        partial = final.rstrip("/") + ".partial"
        target = fs.unstrip_protocol(partial) if "://" in output else partial
        write = scored.to_parquet(target, storage_options=options, write_index=False,
                                  compute=False)  # fmt: skip
        try:
            _, rows, defaults = dask.compute(  # type: ignore[attr-defined,no-untyped-call]
                write, scored["label"].size, scored["label"].sum()
            )
        except BaseException:
            if fs.exists(partial):
                fs.rm(partial, recursive=True)
            raise
        fs.mv(partial, final.rstrip("/"), recursive=True)
    return {
        "scored": int(rows), "defaults": int(defaults),
        "partitions": frame.npartitions, "workers": workers, "output": output,
        "model": {"name": model.name, "version": model.version},
    }  # fmt: skip

"""Portfolio scoring on a Dask cluster: ``loanrisk predict 's3://bucket/portfolio/*.parquet'
--dask-scheduler tcp://... --output s3://bucket/scored/``.

The client reads the model version's files once, each checked against its hash, and hands
them to the workers: the booster's UBJSON, FeatureSpec, schema, calibration and reason
catalog, as bytes and JSON, the same files the registry stores. Each worker puts them in a
registry of its own, loads it as the service loads a version, and builds the same
:class:`Scorer` once per process. It then scores its partitions of the Parquet input. The
workers write the results as partitioned Parquet under ``--output``, one file per input
partition, in input order: ``probability``, ``label``, ``band``, ``grade``, ``score`` (and
the id column, the reason and decline columns when asked). They are written to
``<output>.partial`` first and moved into place once every partition is written; a failed
run removes them. Needs the ``dask`` extra.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import fsspec
import pandas as pd

from loanrisk.contracts import OnError
from loanrisk.errors import Conflict, InvalidInput
from loanrisk.inference.backends import BackendChoice
from loanrisk.inference.scorer import Bands, Scorer
from loanrisk.registry.models import ModelRegistry
from loanrisk.registry.policy import served_policy
from loanrisk.settings import Settings
from loanrisk.storage import MemoryStorage, Storage, storage_options


def results_folder(storage: Storage, output: str) -> str:
    """Where a batch job's results go when it scores on Dask: a folder named as its CSV would
    be, without ``.csv``; :class:`Conflict` when it is taken (results never replace files)."""
    folder = output.removesuffix(".csv")
    if storage.exists(folder) or storage.list(folder):
        raise Conflict(
            f"output {folder!r} exists already; results never replace files",
            details={"field": "output"},
        )
    return folder


@dataclass(frozen=True)
class ModelFiles:
    """A version as the workers receive it: its stored files (:meth:`ModelRegistry.version_files`,
    bytes, no Python objects) and how to label its loans."""

    name: str
    version: int
    files: tuple[tuple[str, bytes], ...]
    threshold: float
    band_cutoffs: tuple[float, ...]
    band_names: tuple[str, ...]
    backend: BackendChoice

    @classmethod
    def of(cls, registry: ModelRegistry, name: str, version: int, settings: Settings) -> ModelFiles:
        """The version's files, labelled with the policy the service would apply to it."""
        policy = served_policy(registry.manifest(name, version).policy, settings).policy
        return cls(
            name=name,
            version=version,
            files=tuple(registry.version_files(name, version).items()),
            threshold=policy.threshold,
            band_cutoffs=policy.band_cutoffs,
            band_names=policy.band_names,
            backend=settings.backend,
        )


@dataclass(frozen=True, slots=True)
class DaskSummary:
    """What :func:`score_on_dask` did: loans scored and over the threshold, the partitions
    and workers they were spread over, and where the results are."""

    scored: int
    defaults: int
    partitions: int
    workers: int
    output: str


@functools.lru_cache(maxsize=4)
def _scorer(files: ModelFiles) -> Scorer:
    """The worker's scorer of ``files``, built once per process (and model): the version is
    stored in a registry of its own and loaded, every file checked, as the service loads it."""
    registry = ModelRegistry(MemoryStorage("dask-worker"), "models")
    registry.add_version(files.name, files.version, dict(files.files))
    return Scorer(
        registry.load(files.name, files.version),
        backend=files.backend,
        threshold=files.threshold,
        bands=Bands(files.band_cutoffs, files.band_names),
    )


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
    results, _ = _scorer(files).score_frame(
        features, on_error=on_error, explain=explain, decline_reasons=decline_reasons
    )
    if ids is not None:
        results.insert(0, id_column or "id", ids[results["row"].to_numpy() - 1])
    results = results.drop(columns=["row"]).reset_index(drop=True)
    for column in results.columns:
        if results[column].dtype == object:
            results[column] = results[column].astype("string")
    return results


def score_on_dask(
    registry: ModelRegistry,
    name: str,
    version: int,
    settings: Settings,
    *,
    source: str,
    output: str,
    scheduler: str,
    on_error: OnError = "raise",
    id_column: str | None = None,
    explain: bool = False,
    decline_reasons: bool = False,
) -> DaskSummary:
    """Score the Parquet file(s) ``source`` (a path, a glob or a URI) on the cluster at
    ``scheduler`` and write the results under ``output``; a summary of what was done."""
    try:
        import dask
        import dask.dataframe as dd
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise InvalidInput("scoring on Dask needs the dask extra: loanrisk[dask]") from None
    if not source.endswith(".parquet"):
        raise InvalidInput(
            "scoring on a Dask cluster reads Parquet (a file, a glob or a "
            "directory of .parquet files)"
        )
    files = ModelFiles.of(registry, name, version, settings)
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        workers = len(client.scheduler_info()["workers"])
        frame = dd.read_parquet(source, storage_options=storage_options(settings, source))
        if id_column is not None and id_column not in frame.columns:
            raise InvalidInput(f"id column {id_column!r} is not in the input")
        sample = frame.partitions[0].head(2, compute=True)
        score = functools.partial(
            score_partition,
            files=files,
            id_column=id_column,
            explain=explain,
            decline_reasons=decline_reasons,
        )
        meta = score(sample, on_error="skip").iloc[:0]
        scored = frame.map_partitions(score, on_error=on_error, meta=meta)
        # One pass: the scored partitions are written and counted from the same graph, into
        # a ".partial" folder that becomes ``output`` only once every partition is written.
        written = storage_options(settings, output)
        fs, final = fsspec.core.url_to_fs(output, **written)
        partial = final.rstrip("/") + ".partial"
        target = fs.unstrip_protocol(partial) if "://" in output else partial
        write = scored.to_parquet(target, storage_options=written, write_index=False, compute=False)
        try:
            _, rows, defaults = dask.compute(  # type: ignore[attr-defined,no-untyped-call]
                write, scored["label"].size, scored["label"].sum()
            )
        except BaseException:
            if fs.exists(partial):
                fs.rm(partial, recursive=True)
            raise
        fs.mv(partial, final.rstrip("/"), recursive=True)
    return DaskSummary(int(rows), int(defaults), frame.npartitions, workers, output)

"""Training on a Dask cluster with ``xgboost.dask``: the same model, published the same way.

For data that outgrows one machine. The workers read the dataset's training Parquet straight
from the shared storage (a mounted directory, S3 or Azure; not memory), encode their own
partitions with the FeatureSpec, and XGBoost trains across them. Evaluation on the test split
and publishing go through the same code as single-process training, so the registry holds the
same kind of version. Needs the ``dask`` extra: ``pip install 'loanrisk[dask]'``.

Early stopping holds out ``validation_fraction`` of the training rows, a random split of
each partition (not stratified by label, unlike the single-process split), and publishes the
best trees only. Not supported here (yet): per-round progress and cancellation (xgboost.dask
runs the rounds on the workers).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import xgboost as xgb

from loanrisk.data.datasets import conform
from loanrisk.errors import InvalidInput
from loanrisk.features.spec import FeatureSpec
from loanrisk.features.transform import FeatureTransformer
from loanrisk.registry.manifest import DistributedRun
from loanrisk.schema import LoanSchema
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage, open_storage, storage_options
from loanrisk.training.job import (
    TrainingRequest,
    TrainingResult,
    evaluate_and_publish,
    prepare,
)


def _encode(part: pd.DataFrame, spec: FeatureSpec, schema: LoanSchema) -> pd.DataFrame:
    features = FeatureTransformer(spec).transform(conform(part, schema), dtype=np.float32)
    return pd.DataFrame(features, columns=list(spec.output_columns))


def train_distributed(
    request: TrainingRequest, settings: Settings, *, scheduler: str
) -> TrainingResult:
    """Train on the Dask cluster at ``scheduler`` (e.g. ``tcp://10.0.0.5:8786``) and publish.

    Raises :class:`InvalidInput` for an unsupported request (memory storage) and whatever the
    registry and dataset lookups raise (NotFound ...).
    """
    try:
        import dask.dataframe as dd
        import xgboost.dask as dxgb
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise InvalidInput("distributed training needs the dask extra: loanrisk[dask]") from None
    if request.calibration != "none":
        raise InvalidInput(
            "calibration is fitted on a held-out split in single-process "
            "training; Dask training does not fit one (yet)"
        )
    storage = open_storage(settings)
    if not isinstance(storage, FsspecStorage):
        raise InvalidInput("distributed training reads from shared storage, not memory")

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    prepared = prepare(request, storage)
    spec = prepared.spec
    # Dask reads the file itself: it is checked against the manifest's hash first.
    prepared.catalogue.verify_file(prepared.dataset.id, "train.parquet")
    url = f"{storage.url}/{prepared.catalogue.path(prepared.dataset.id, 'train.parquet')}"
    with Client(scheduler) as client:  # type: ignore[no-untyped-call]
        workers = len(client.scheduler_info()["workers"])
        frame = dd.read_parquet(url, storage_options=storage_options(settings, url))
        frame = frame.repartition(npartitions=max(workers, frame.npartitions))
        meta = pd.DataFrame({c: pd.Series(dtype=np.float32) for c in spec.output_columns})

        def matrix(part: dd.DataFrame) -> dxgb.DaskDMatrix:
            features = part.map_partitions(_encode, spec, prepared.schema, meta=meta)  # type: ignore[no-untyped-call]
            return dxgb.DaskDMatrix(client, features, part[prepared.schema.label_name])

        evals = []
        if request.early_stopping_rounds is not None:
            fraction = request.validation_fraction
            frame, held_out = frame.random_split(
                [1 - fraction, fraction], random_state=request.seed
            )
            evals.append((matrix(held_out), "valid"))
        train = matrix(frame)
        timings["load"] = time.perf_counter() - clock

        clock = time.perf_counter()
        output = dxgb.train(
            client,
            {**prepared.params, "nthread": settings.nthread},
            train,
            num_boost_round=request.rounds,
            evals=evals,
            early_stopping_rounds=request.early_stopping_rounds,
            xgb_model=prepared.parent.booster if prepared.parent else None,
        )
        timings["train"] = time.perf_counter() - clock
    booster: xgb.Booster = output["booster"]
    best = booster.best_iteration if request.early_stopping_rounds is not None else None
    # Same model shape as single-process training, which trains and scores on plain arrays.
    booster.feature_names = None
    booster.feature_types = None
    return evaluate_and_publish(
        request,
        prepared,
        booster,
        best_iteration=best,
        nthread=settings.nthread,
        timings=timings,
        distributed=DistributedRun(scheduler=scheduler, workers=workers),
    )

"""Portfolio scoring on a real Dask LocalCluster: the same scores as one process, row for row,
written as partitioned Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from dask.distributed import LocalCluster
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.inference.scorer import Scorer
from loanrisk.registry import ModelRegistry
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training

from ..service.test_v1 import finished
from ..test_cli import run


def test_dask_scoring_equals_single_process_scoring_row_for_row(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    storage = FsspecStorage(str(store))
    process_dataset(validate_frame(generate_sample(3_000, seed=21)), storage, source="sample")
    run_training(
        TrainingRequest(
            rounds=30, params={"max_depth": 4}, calibration="isotonic", calibration_fraction=0.45
        ),
        storage,
        nthread=1,
    )
    portfolio = tmp_path / "portfolio"
    portfolio.mkdir()
    loans = generate_sample(9_000, seed=22).drop(columns=["loan_status"])
    loans.insert(0, "loan_id", [f"L{i:05d}" for i in range(len(loans))])
    for part in range(3):
        loans.iloc[part * 3_000 : (part + 1) * 3_000].to_parquet(
            portfolio / f"part-{part}.parquet", index=False
        )

    output = tmp_path / "scored"
    done = run(
        "predict",
        str(portfolio / "*.parquet"),
        "--storage",
        str(store),
        "--output",
        str(output),
        "--dask-scheduler",
        cluster.scheduler_address,
        "--id-column",
        "loan_id",
        "--decline-reasons",
        "--backend",
        "xgboost",
    )
    assert done.returncode == 0, done.stderr
    assert "9,000 loans scored in 3 partitions on 2 workers" in done.stderr
    parts = sorted(output.glob("*.parquet"))
    assert len(parts) == 3
    scored = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)

    # XGBoost scores each row alone, so one process and the cluster agree exactly. (oneDAL's
    # last digits depend on the batch: within its 1e-5 parity with XGBoost, checked below.)
    model = ModelRegistry(storage).load("loan-default", "production")
    single, _ = Scorer(model, backend="xgboost").score_frame(
        loans.drop(columns=["loan_id"]), decline_reasons=True
    )
    assert scored["loan_id"].tolist() == loans["loan_id"].tolist()
    assert np.abs(scored["probability"].to_numpy() - single["probability"].to_numpy()).max() == 0
    assert (scored["label"].to_numpy() == single["label"].to_numpy()).all()
    assert scored["band"].astype(str).tolist() == single["band"].astype(str).tolist()
    assert scored["decline_reasons"].astype(str).tolist() == single["decline_reasons"].tolist()

    onedal = tmp_path / "scored-onedal"
    done = run(
        "predict",
        str(portfolio / "*.parquet"),
        "--storage",
        str(store),
        "--output",
        str(onedal),
        "--dask-scheduler",
        cluster.scheduler_address,
    )
    assert done.returncode == 0, done.stderr
    auto = pd.concat([pd.read_parquet(p) for p in sorted(onedal.glob("*.parquet"))])
    assert np.abs(auto["probability"].to_numpy() - single["probability"].to_numpy()).max() < 1e-5

    again = run(
        "predict",
        str(portfolio / "*.parquet"),
        "--storage",
        str(store),
        "--output",
        str(output),
        "--dask-scheduler",
        cluster.scheduler_address,
    )
    assert again.returncode == 2 and "exists" in again.stderr
    csv_input = tmp_path / "loans.csv"
    loans.to_csv(csv_input, index=False)
    other = str(tmp_path / "other")
    refused = run(
        "predict",
        str(csv_input),
        "--storage",
        str(store),
        "--output",
        other,
        "--dask-scheduler",
        cluster.scheduler_address,
    )
    assert refused.returncode == 2 and "reads Parquet" in refused.stderr


def test_the_services_batch_jobs_score_parquet_on_the_cluster_of_the_setting(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    storage = FsspecStorage(str(tmp_path))
    process_dataset(validate_frame(generate_sample(3_000, seed=23)), storage, source="sample")
    run_training(TrainingRequest(rounds=20, params={"max_depth": 4}), storage, nthread=1)
    loans = generate_sample(4_000, seed=24).drop(columns=["loan_status"])
    (tmp_path / "incoming").mkdir()
    loans.to_parquet(tmp_path / "incoming" / "book.parquet", index=False)
    loans.to_csv(tmp_path / "incoming" / "book.csv", index=False)
    settings = Settings(
        storage=str(tmp_path),
        nthread=1,
        job_heartbeat=0.2,
        job_stale_after=1.0,
        dask_scheduler=cluster.scheduler_address,
    )
    with TestClient(create_app(settings)) as client:
        body = {"source": "incoming/book.parquet", "output": "book.csv", "decline_reasons": True}
        record = finished(client, client.post("/v1/batch-predictions", json=body))
        assert record["state"] == "succeeded", record["error"]
        result = record["result"]
        assert result["output"] == "predictions/book" and result["summary"]["scored"] == 4_000
        assert result["dask"]["workers"] == 2
        again = client.post("/v1/batch-predictions", json=body)
        assert again.status_code == 409 and "'predictions/book' exists already" in again.text
        as_csv = finished(
            client, client.post("/v1/batch-predictions", json={"source": "incoming/book.csv"})
        )
        assert as_csv["state"] == "succeeded" and as_csv["result"]["output"].endswith(".csv")
    parts = sorted((tmp_path / "predictions" / "book").glob("*.parquet"))
    scored = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    assert not (tmp_path / "predictions" / "book.partial").exists()
    single, _ = Scorer(ModelRegistry(storage).load("loan-default", "production")).score_frame(
        loans, decline_reasons=True
    )
    assert np.abs(scored["probability"].to_numpy() - single["probability"].to_numpy()).max() < 1e-5
    assert scored["decline_reasons"].astype(str).tolist() == single["decline_reasons"].tolist()

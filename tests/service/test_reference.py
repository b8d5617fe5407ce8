"""Every request of the reference system (../shared/REFERENCE.md), sent as its users send it,
in both flavours, on local storage and on the S3 server, answered in the reference's shapes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loanrisk.registry import ModelRegistry
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import open_storage
from tests.builtin import EXAMPLE_LOAN, LABEL

from ..conftest import REAL_CSV

MOUNT = "/loan_app/azure-fileshare"
SIZE = "40000"  # the reference's users send 4000000; the shape of the request is the same


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "s3":
        base: Settings = request.getfixturevalue("s3_settings")
        return base.model_copy(update={"reload_interval": 0.2})
    return Settings(storage=str(tmp_path / "share"), reload_interval=0.2)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def sample_csv(rows: int = 2) -> bytes:
    frame = pd.read_csv(REAL_CSV, nrows=rows).drop(columns=[LABEL])
    return frame.to_csv(index=False).encode()


def test_azure_flavour_process_train_predict_continue(
    client: TestClient, settings: Settings
) -> None:
    with REAL_CSV.open("rb") as upload:
        processed = client.post(
            "/data_processing",
            data={"az_file_path": MOUNT, "data_directory": "data", "size": SIZE},
            files={"file": ("credit_risk_dataset.csv", upload, "text/csv")},
        )
    assert processed.status_code == 200, processed.text
    assert processed.json()["Message"] == "credit_risk_dataset.csv successfully processed and saved"
    assert processed.json()["dataset"]["rows"]["total"] == 40_000

    form = {
        "az_file_path": MOUNT,
        "data_directory": "data",
        "model_directory": "models",
        "model_name": "XGBoost",
        "continue_training": "False",
        "size": SIZE,
    }
    trained = client.post("/train", data=form)
    assert trained.status_code == 200, trained.text
    body = trained.json()
    assert body["Message"] == "XGBoost model succesfully trained and saved"
    scores = body["Validation Scores"]
    assert set(scores) >= {"precision", "recall", "f1-score", "support"}
    assert 0.85 < scores["precision"]["Non-Default"] <= 1
    assert scores["support"]["Non-Default"] + scores["support"]["Default"] == 10_000
    assert body["auc"] > 0.9

    def predict() -> dict[str, object]:
        response = client.post(
            "/predict",
            data={
                "az_file_path": MOUNT,
                "data_directory": "data",
                "model_directory": "models",
                "model_name": "XGBoost",
                "sample_directory": "samples",
            },
            files={"file": ("sample.csv", sample_csv(), "text/csv")},
        )
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result

    first, second = predict(), predict()
    assert first["Message"] == "Model Inference Complete"
    output = first["Prediction Output"]
    assert isinstance(output, dict)
    assert list(output["Probability"]) == ["0", "1"]
    assert all(0 < p < 1 for p in output["Probability"].values())
    assert all(v in ("True", "False") for v in output["Prediction"].values())
    assert first["model"] == {"name": "XGBoost", "version": 1}
    # Each request's results land in their own CSV under sample_directory.
    storage = open_storage(settings)
    assert first["results_path"] != second["results_path"]
    assert sorted(storage.list("samples")) == sorted(
        str(p["results_path"]).rsplit("/", 1)[-1] for p in (first, second)
    )
    stored = pd.read_csv(io.BytesIO(storage.read_bytes(str(first["results_path"]))))
    assert list(stored["probability"].round(6)) == [
        round(p, 6) for p in output["Probability"].values()
    ]

    with REAL_CSV.open("rb") as upload:
        newer = client.post(
            "/data_processing",
            data={"az_file_path": MOUNT, "data_directory": "data", "size": "35000"},
            files={"file": ("credit_risk_dataset.csv", upload, "text/csv")},
        )
    assert newer.status_code == 200, newer.text
    continued = client.post("/train", data={**form, "continue_training": "True", "size": "35000"})
    assert continued.status_code == 200, continued.text
    assert continued.json()["model"]["version"] == 2
    manifest = ModelRegistry(storage, "models").manifest("XGBoost", 2)
    assert manifest.parent is not None and manifest.parent.version == 1
    assert predict()["model"] == {"name": "XGBoost", "version": 2}


def test_aws_flavour_data_train_predict(client: TestClient, settings: Settings) -> None:
    storage = open_storage(settings)
    storage.write_bytes("data/credit_risk_dataset.csv", REAL_CSV.read_bytes())
    processed = client.post(
        "/data",
        json={
            "bucket": "loan-default",
            "backend": "s3",
            "key": "data/credit_risk_dataset.csv",
            "target_path": "None",
            "local_path": "None",
            "size": 40000,
        },
    )
    assert processed.status_code == 200, processed.text
    assert processed.json()["msg"] == "credit_risk_dataset.csv successfully processed and saved"

    trained = client.post(
        "/train",
        json={
            "bucket": "loan-default",
            "backend": "s3",
            "local_model_path": "None",
            "data_key": "data",
            "model_key": "model",
            "model_name": "model.joblib",
            "local_data_path": "None",
        },
    )
    assert trained.status_code == 200, trained.text
    body = trained.json()
    assert body["msg"] == "Model trained succesfully"
    scores = body["validation scores"]
    assert set(scores["Default"]) == {"precision", "recall", "f1-score", "support"}
    assert {"Non-Default", "accuracy", "macro avg", "weighted avg"} <= set(scores)
    assert 0.9 < scores["auc"] <= 1

    predicted = client.post(
        "/predict",
        json={
            "backend": "s3",
            "model_name": "model.joblib",
            "data_key": "data",
            "bucket": "loan-default",
            "model_key": "model",
            "sample": [EXAMPLE_LOAN],
            "local_model_path": "None",
            "preprocessor_path": "None",
        },
    )
    assert predicted.status_code == 200, predicted.text
    assert predicted.json()["msg"] == "Model Inference Complete"
    ((label, probability),) = predicted.json()["Prediction Output"]
    assert label == str(probability > 0.5)
    assert 0 < probability < 1

    storage.write_bytes("incoming/sample.csv", sample_csv(3))
    from_csv = client.post(
        "/predict",
        json={
            "backend": "s3",
            "model_name": "model.joblib",
            "bucket": "loan-default",
            "model_key": "model",
            "csv_payload": "incoming/sample.csv",
        },
    )
    assert from_csv.status_code == 200, from_csv.text
    assert len(from_csv.json()["Prediction Output"]) == 3
    assert client.get("/ping").json()["message"] == "Server is Running"


def test_aws_flavour_with_the_local_backend(client: TestClient, settings: Settings) -> None:
    storage = open_storage(settings)
    storage.write_bytes("raw/loans.csv", REAL_CSV.read_bytes())
    processed = client.post(
        "/data",
        json={
            "bucket": "None",
            "backend": "local",
            "key": "None",
            "local_path": "raw/loans.csv",
            "target_path": "processed",
            "size": "None",
        },
    )
    assert processed.status_code == 200, processed.text
    assert processed.json()["dataset"]["directory"] == "processed"
    trained = client.post(
        "/train",
        json={
            "bucket": "None",
            "backend": "local",
            "local_model_path": "trained",
            "data_key": "None",
            "model_key": "None",
            "model_name": "model.joblib",
            "local_data_path": "processed",
        },
    )
    assert trained.status_code == 200, trained.text
    assert ModelRegistry(storage, "trained").versions("model.joblib") == [1]
    predicted = client.post(
        "/predict",
        json={
            "backend": "local",
            "model_name": "model.joblib",
            "local_model_path": "trained",
            "preprocessor_path": "processed",
            "sample": [EXAMPLE_LOAN, EXAMPLE_LOAN],
        },
    )
    assert predicted.status_code == 200, predicted.text
    assert len(predicted.json()["Prediction Output"]) == 2

"""Paths confined to the storage, API keys and scopes, size limits, pathological uploads."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.sample import generate_sample
from loanrisk.service import create_app
from loanrisk.serving.auth import digest
from loanrisk.settings import Settings
from tests.builtin import EXAMPLE_LOAN

MOUNT = "/loan_app/azure-fileshare"
SCORE_KEY = "score-key-0123456789abcdef"
ADMIN_KEY = "admin-key-0123456789abcdef"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "share"
    path.mkdir()
    generate_sample(500).to_csv(path / "raw.csv", index=False)
    return path


@pytest.fixture
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(
        create_app(Settings(storage=str(root), max_request_bytes=4096, max_upload_bytes=200_000))
    ) as test_client:
        yield test_client


def refused(response: object, status: int = 403) -> dict[str, object]:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    body: dict[str, object] = response.json()  # type: ignore[attr-defined]
    assert set(body["error"]) == {"code", "message", "details"}  # type: ignore[arg-type]
    return body["error"]  # type: ignore[return-value]


CSV = {"file": ("loans.csv", b"person_age\n30\n", "text/csv")}


@pytest.mark.parametrize(
    "form",
    [
        {"az_file_path": "/etc", "data_directory": "data"},
        {"az_file_path": MOUNT, "data_directory": "../.."},
        {"az_file_path": MOUNT, "data_directory": "/etc"},
        {"az_file_path": f"{MOUNT}/../../etc", "data_directory": "data"},
    ],
)
def test_azure_paths_outside_the_storage_are_refused(
    client: TestClient, form: dict[str, str], root: Path
) -> None:
    error = refused(client.post("/data_processing", data=form, files=CSV))
    assert error["code"] == "path_not_allowed"
    assert refused(client.post("/train", data={**form, "model_directory": "m"}))
    assert refused(client.post("/predict", data={**form, "sample_directory": "s"}, files=CSV))
    assert not list(root.glob("**/uploads/*"))  # nothing staged for a refused request


def test_symlinks_out_of_the_storage_are_refused(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    error = refused(
        client.post(
            "/data_processing", files=CSV, data={"az_file_path": MOUNT, "data_directory": "escape"}
        )
    )
    assert "outside" in str(error["message"])
    assert refused(client.post("/data", json={"backend": "local", "local_path": "escape/x.csv"}))
    assert list(outside.iterdir()) == []


def test_aws_keys_buckets_and_model_names_are_checked(client: TestClient) -> None:
    assert refused(
        client.post(
            "/data", json={"bucket": "loan-default", "backend": "s3", "key": "../x", "size": 10}
        )
    )
    error = refused(
        client.post("/data", json={"bucket": "someone-elses", "backend": "s3", "key": "raw.csv"})
    )
    assert "loan-default" in str(error["message"])
    error = refused(
        client.post(
            "/train",
            json={
                "bucket": "loan-default",
                "backend": "s3",
                "model_name": "../../x",
                "data_key": "data",
                "model_key": "model",
            },
        ),
        422,
    )
    assert "invalid model name" in str(error["message"])
    assert refused(
        client.post(
            "/predict",
            json={
                "backend": "s3",
                "bucket": "loan-default",
                "model_key": "model",
                "csv_payload": "/etc/passwd",
            },
        )
    )
    assert refused(client.post("/v1/datasets", json={"source": "../raw.csv"}))
    assert refused(client.post("/v1/batch-predictions", json={"source": "/etc/hosts"}))
    assert refused(client.get("/v1/datasets", params={"directory": "../.."}))


def test_bad_fields_are_4xx_naming_the_field(client: TestClient) -> None:
    error = refused(
        client.post(
            "/data",
            json={"bucket": "loan-default", "backend": "s3", "key": "raw.csv", "size": "lots"},
        ),
        422,
    )
    assert error["details"]["field"] == "size"
    assert "a whole number of rows" in str(error["message"])
    error = refused(client.post("/data", json={"bucket": "loan-default", "key": "nope.csv"}), 422)
    assert "no raw CSV" in str(error["message"])
    assert refused(
        client.post("/train", content=b"<xml/>", headers={"content-type": "application/xml"}), 415
    )
    assert refused(
        client.post("/train", content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    error = refused(
        client.post(
            "/predict",
            json={
                "backend": "s3",
                "bucket": "loan-default",
                "model_name": "nothing-here",
                "sample": [EXAMPLE_LOAN],
            },
        ),
        404,
    )
    assert "no model" in str(error["message"])


def test_oversized_bodies_are_413_with_or_without_a_length(client: TestClient) -> None:
    error = refused(client.post("/v1/predict", json=[EXAMPLE_LOAN] * 100), 413)
    assert "4,096" in str(error["message"])
    big = b"x" * 300_000
    assert refused(
        client.post(
            "/data_processing",
            data={"az_file_path": MOUNT},
            files={"file": ("big.csv", big, "text/csv")},
        ),
        413,
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(30):
            yield b"y" * 10_000

    assert refused(
        client.post("/v1/predict", content=chunks(), headers={"content-type": "text/csv"}), 413
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x01\x02PK\x03\x04" * 50, "binary"),
        (b"person_age,person_income\n" + b"9" * 20_000 + b",1\n", "longer than"),
    ],
)
def test_pathological_csv_uploads_are_refused(
    client: TestClient, data: bytes, message: str
) -> None:
    response = client.post(
        "/data_processing",
        data={"az_file_path": MOUNT, "size": "None"},
        files={"file": ("loans.csv", data, "text/csv")},
    )
    assert message in str(refused(response, 422)["message"])


@pytest.fixture
def keyed(root: Path, tmp_path: Path) -> Iterator[TestClient]:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# mounted secret\nadmin:sha256:{digest(ADMIN_KEY)}\n")
    settings = Settings(
        storage=str(root),
        api_keys=(f"score:{SCORE_KEY}",),  # type: ignore[arg-type]
        api_keys_file=keys_file,
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_api_keys_and_scopes(keyed: TestClient) -> None:
    none = keyed.post("/v1/predict", json=EXAMPLE_LOAN)
    assert refused(none, 401)["code"] == "unauthenticated"
    assert none.headers["www-authenticate"] == "Bearer"
    assert refused(
        keyed.post(
            "/v1/predict",
            json=EXAMPLE_LOAN,
            headers={"Authorization": "Bearer wrong-key-0123456789"},
        ),
        401,
    )
    score = {"Authorization": f"Bearer {SCORE_KEY}"}
    admin = {"X-API-Key": ADMIN_KEY}
    # Past auth, a scoring key meets the next check: there is no model yet.
    assert refused(keyed.post("/v1/predict", json=EXAMPLE_LOAN, headers=score), 409)
    assert refused(keyed.post("/v1/predict", json=EXAMPLE_LOAN, headers=admin), 409)
    error = refused(keyed.post("/train", data={"az_file_path": MOUNT}, headers=score), 403)
    assert error["code"] == "forbidden"
    assert refused(keyed.get("/v1/jobs", headers=score), 403)
    assert keyed.get("/v1/jobs", headers=admin).status_code == 200
    assert refused(keyed.get("/v1/models"), 401)
    for open_path in ("/healthz", "/readyz", "/ping", "/metrics"):
        assert keyed.get(open_path).status_code == 200


def test_an_open_service_says_so_loudly(root: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), TestClient(create_app(Settings(storage=str(root)))):
        pass
    assert any("NO API KEYS CONFIGURED" in r.getMessage() for r in caplog.records)


def test_bad_key_configuration_stops_the_start(root: Path) -> None:
    settings = Settings(storage=str(root), api_keys=("score:short",))  # type: ignore[arg-type]
    with pytest.raises(Exception, match="at least 16 characters"), TestClient(create_app(settings)):
        pass
    assert os.environ.get("LOANRISK_API_KEYS") is None


def test_batch_outputs_stay_in_the_results_area_and_never_replace_a_file(
    client: TestClient, root: Path
) -> None:
    alias = root / "models" / "loan-default" / "aliases" / "production.json"
    alias.parent.mkdir(parents=True)
    alias.write_text('{"version": 1}')
    (root / "jobs").mkdir()
    for output in (
        "models/loan-default/aliases/production.json",
        "/models/loan-default/aliases/production.json",
        "../models/loan-default/aliases/production.json",
        f"{root}/jobs/x.json",
        "predictions/models/loan-default/aliases/production.csv",
        "data/datasets/ds-1/train.csv",
    ):
        response = client.post(
            "/v1/batch-predictions", json={"source": "raw.csv", "output": output}
        )
        assert response.status_code in (403, 422), (output, response.text)
        assert str(root) not in response.text
    assert alias.read_text() == '{"version": 1}'
    assert not (root / "predictions").exists()

    (root / "predictions").mkdir()
    (root / "predictions" / "old.csv").write_text("kept")
    for output in ("old.csv", "predictions/old.csv"):
        error = refused(
            client.post("/v1/batch-predictions", json={"source": "raw.csv", "output": output}),
            409,
        )
        assert error["details"] == {"field": "output"}
    assert (root / "predictions" / "old.csv").read_text() == "kept"

    accepted = client.post("/v1/batch-predictions", json={"source": "raw.csv", "output": "a.csv"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["params"]["output"] == "predictions/a.csv"


def test_the_reference_sample_directory_must_be_a_folder_outside_kept_areas(
    client: TestClient, root: Path
) -> None:
    (root / "taken").write_text("a file")
    form = {"az_file_path": MOUNT, "model_directory": "models", "model_name": "XGBoost"}
    error = refused(
        client.post("/predict", data={**form, "sample_directory": "taken"}, files=CSV), 422
    )
    assert error["details"] == {"field": "sample_directory"}
    refused(
        client.post(
            "/predict", data={**form, "sample_directory": "models/XGBoost/versions"}, files=CSV
        )
    )
    assert (root / "taken").read_text() == "a file"

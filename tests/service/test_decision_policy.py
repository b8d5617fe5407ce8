"""A decision policy through the service: trained with the version over HTTP, refused at the
edge when it is not one, and served (labels, bands, /readyz) unless a setting overrides it."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loanrisk.data.sample import generate_sample
from loanrisk.service import create_app
from loanrisk.settings import Settings

from .test_v1 import finished

POLICY = {"threshold": 0.15, "band_cutoffs": [0.1, 0.2, 0.4], "band_names": ["A", "B", "C", "D"]}
REFUSED = [
    ({"band_cutoffs": [0.5, 0.2]}, "band_cutoffs", "band cut-offs must increase: 0.5 then 0.2"),
    (
        {"band_cutoffs": [0.1, 1.0], "band_names": ["a", "b", "c"]},
        "band_cutoffs",
        "band cut-off 1.0 is not a probability in (0, 1)",
    ),
    (
        {"band_cutoffs": [0.1, 0.2, 0.3]},
        "band_names",
        "3 band cut-off(s) make 4 bands: give 4 band names, not 3",
    ),
    ({"band_names": ["a", "a", "b"]}, "band_names", "band names must differ from one another"),
    ({"threshold": 1.2}, "threshold", "threshold 1.2 is not a probability in (0, 1)"),
]


def settings_of(root: Path, **overrides: Any) -> Settings:
    return Settings(
        storage=str(root),
        nthread=1,
        reload_interval=0.2,
        job_heartbeat=0.2,
        job_stale_after=1.0,
        **overrides,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy") / "store"
    path.mkdir()
    generate_sample(3_000, seed=2).to_csv(path / "raw.csv", index=False)
    return path


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_of(root))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def trained(client: TestClient) -> dict[str, Any]:
    """The manifest of version 1, trained over HTTP with its own policy (and promoted: the
    model's first)."""
    processed = finished(client, client.post("/v1/datasets", json={"source": "raw.csv"}))
    assert processed["state"] == "succeeded", processed["error"]
    body = {"rounds": 30, **POLICY}
    job = finished(client, client.post("/v1/models/loan-default/versions", json=body))
    assert job["state"] == "succeeded", job["error"]
    manifest: dict[str, Any] = job["result"]["manifest"]
    return manifest


def served_model(client: TestClient, version: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        model = client.get("/readyz").json()["model"]
        if model and model["version"] == version:
            return dict(model)
        time.sleep(0.1)
    raise AssertionError(f"version {version} was not served")


def scored(client: TestClient) -> list[dict[str, Any]]:
    frame = generate_sample(200, seed=9).drop(columns=["loan_status"])
    loans = frame.astype(object).where(frame.notna(), None).to_dict("records")  # JSON: null
    response = client.post("/v1/predict", json=loans)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def band_of(probability: float, cutoffs: list[float], names: list[str]) -> str:
    return names[sum(probability >= c for c in cutoffs)]


def test_a_policy_that_is_not_one_is_refused_before_a_job_is_queued(client: TestClient) -> None:
    jobs = len(client.get("/v1/jobs").json()["jobs"])
    for body, field, message in REFUSED:
        refused = client.post("/v1/models/loan-default/versions", json={"rounds": 5, **body})
        assert refused.status_code == 422, (body, refused.text)
        error = refused.json()["error"]
        assert error["details"]["field"] == field, (body, error)
        assert error["message"] == message, (body, error)
    assert len(client.get("/v1/jobs").json()["jobs"]) == jobs


def test_a_version_trained_with_its_policy_is_served_with_it(
    client: TestClient, trained: dict[str, Any]
) -> None:
    assert trained["policy"] == POLICY
    report = client.get("/v1/models/loan-default/versions/1/report").json()
    assert report["threshold"] == 0.15 and report["policy"] == POLICY
    assert [b["band"] for b in report["bands"]] == POLICY["band_names"]
    model = served_model(client, 1)
    assert model["threshold"] == 0.15
    assert model["bands"] == {"cutoffs": POLICY["band_cutoffs"], "names": POLICY["band_names"]}
    assert model["policy_source"] == {"threshold": "version", "bands": "version"}
    results = scored(client)
    assert any(r["label"] for r in results)
    for r in results:
        assert r["label"] == (r["probability"] > 0.15)
        assert r["band"] == band_of(r["probability"], POLICY["band_cutoffs"], POLICY["band_names"])


def test_a_threshold_set_explicitly_overrides_the_versions(
    root: Path, trained: dict[str, Any]
) -> None:
    with TestClient(create_app(settings_of(root, threshold=0.9))) as overridden:
        model = served_model(overridden, 1)
        assert model["threshold"] == 0.9
        assert model["policy_source"] == {"threshold": "setting", "bands": "version"}
        for r in scored(overridden):
            assert r["label"] == (r["probability"] > 0.9)
            assert r["band"] in POLICY["band_names"]


def test_a_continued_training_keeps_its_parents_policy_unless_given_another(
    client: TestClient, trained: dict[str, Any]
) -> None:
    body = {"rounds": 5, "continue_from": "1", "promote": False, "threshold": 0.3}
    job = finished(client, client.post("/v1/models/loan-default/versions", json=body))
    assert job["state"] == "succeeded", job["error"]
    assert job["result"]["manifest"]["policy"] == {**POLICY, "threshold": 0.3}


def test_the_console_shows_the_policy_and_an_override(
    client: TestClient, root: Path, trained: dict[str, Any]
) -> None:
    page = client.get("/console/models/loan-default/versions/1")
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    assert "Decision policy" in text
    assert "over 0.15; risk bands A below 0.1, B 0.1\u20130.2, C 0.2\u20130.4, D from 0.4" in text
    assert "<caption>Risk bands of the decision policy" in page.text
    assert "Confusion matrix at threshold 0.15" in text
    with TestClient(create_app(settings_of(root, band_names=("x", "y", "z")))) as overridden:
        text = html.unescape(overridden.get("/console/models/loan-default/versions/1").text)
        assert (
            "LOANRISK_BAND_CUTOFFS/LOANRISK_BAND_NAMES are set: the service bands its loans "
            "x below 0.2, y 0.2\u20130.5, z from 0.5 instead"
        ) in text

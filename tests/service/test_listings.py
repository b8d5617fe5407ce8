"""Listings name what they skip (issue 26, "one bad entry"): a symlink leading out of the
storage, a job record that does not parse and a file whose name is no job id are left out of
``GET /v1/jobs`` and named in its ``problems`` (and the ``loanrisk_bad_items`` gauge), as
the datasets and models listings do; the good records are served. A file beside the models
is no model, and no fault of the models listing."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from loanrisk.jobs.store import JobStore
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage


def test_bad_job_entries_are_named_and_the_rest_listed(tmp_path: Path) -> None:
    root, outside = tmp_path / "store", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"id": "job-x"}')
    store = JobStore(FsspecStorage(str(root)), "jobs")
    good = store.new("train", {}, owner="a:1")
    store.save(good)
    bad = store.new("train", {}, owner="a:1")
    (root / "jobs" / f"{bad.id}.json").write_text('{"garbage": tru')
    (root / "jobs" / "notes.json").write_text("{}")
    (root / "jobs" / "job-20990101T000000Z-train-evil.json").symlink_to(outside / "secret.json")

    with TestClient(create_app(Settings(storage=str(root)))) as client:
        answer = client.get("/v1/jobs")
        assert answer.status_code == 200, answer.text
        listing = answer.json()
        assert [j["id"] for j in listing["jobs"]] == [good.id]
        problems = {p["path"]: p for p in listing["problems"]}
        assert set(problems) == {
            "jobs/job-20990101T000000Z-train-evil.json",
            f"jobs/{bad.id}.json",
            "jobs/notes.json",
        }
        link = problems["jobs/job-20990101T000000Z-train-evil.json"]
        assert link["kind"] == "link" and "outside the storage" in link["message"]
        assert problems[f"jobs/{bad.id}.json"]["kind"] == "job"
        assert all(str(tmp_path) not in p["message"] for p in listing["problems"])
        metrics = client.get("/metrics").text
        assert 'loanrisk_bad_items{kind="link",view="jobs"} 1.0' in metrics
        assert 'loanrisk_bad_items{kind="job",view="jobs"} 2.0' in metrics
        # Read alone, the link is refused, not followed.
        assert client.get("/v1/jobs/job-20990101T000000Z-train-evil").status_code == 403

        # The console's jobs page shows the same problems.
        page = client.get("/console/jobs")
        assert page.status_code == 200
        assert "jobs/notes.json" in page.text and "outside the storage" in page.text


def test_a_file_beside_the_models_is_no_model(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "models").mkdir(parents=True)
    (root / "models" / "notes.csv").write_text("a,b\n1,2\n")
    (root / "raw.csv").write_text("a,b\n1,2\n")
    with TestClient(create_app(Settings(storage=str(root)))) as client:
        for query in ("", "?model_directory=."):  # the root itself holds a file too
            answer = client.get(f"/v1/models{query}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["models"] == [], answer.text

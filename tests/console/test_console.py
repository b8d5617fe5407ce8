"""The console through the real app: login and its cookie, read-only score keys, CSRF,
promote and roll back with a reason, the upload form starting a job (with the built-in schema
or a stored one), escaping of what people typed, and the offline API documentation.
(tests/console/test_browser.py drives it in Chromium.)"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from loanrisk.data.sample import generate_sample
from loanrisk.service import create_app
from loanrisk.settings import Settings
from tests.schema.second import second_loans, second_yaml

from .conftest import ADMIN_KEY, HOSTILE_REASON, HOSTILE_SOURCE, KEYS, SCORE_KEY


@pytest.fixture
def client(fresh_history: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    settings = Settings(storage=str(fresh_history), nthread=1)
    with TestClient(create_app(settings), follow_redirects=False) as test_client:
        yield test_client


def csrf(client: TestClient, path: str = "/console/login") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, f"{path} has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, key: str) -> None:
    response = client.post(
        "/console/login", data={"key": key, "csrf": csrf(client), "next": "/console/"}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/console/"


def alias(root: Path, name: str = "production") -> dict[str, object]:
    doc: dict[str, object] = json.loads(
        (root / f"models/loan-default/aliases/{name}.json").read_text()
    )
    return doc


def test_without_a_login_every_page_redirects_to_the_login_form(client: TestClient) -> None:
    assert client.get("/").headers["location"] == "/console/"
    for path in (
        "/console/",
        "/console/datasets",
        "/console/jobs",
        "/console/monitoring",
        "/console/models/loan-default/versions/1",
    ):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/login?next={path}"
    assert client.get("/console/jobs/x/state").status_code == 401
    expired = client.post("/console/models/loan-default/aliases", data={"action": "promote"})
    assert expired.headers["location"] == "/console/login?next=/console/"


def test_a_wrong_key_is_refused_and_a_login_cookie_is_locked_down(
    client: TestClient, fresh_history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = csrf(client)
    refused = client.post("/console/login", data={"key": "not-a-key-at-all-000", "csrf": token})
    assert refused.status_code == 401 and "unknown API key" in refused.text
    assert "loanrisk_key" not in refused.headers.get("set-cookie", "")
    accepted = client.post("/console/login", data={"key": ADMIN_KEY, "csrf": token})
    cookie = accepted.headers["set-cookie"]
    assert "loanrisk_key=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # development serves plain HTTP
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    production = Settings(storage=str(fresh_history), environment="production")
    with TestClient(
        create_app(production), base_url="https://testserver", follow_redirects=False
    ) as secure:
        answer = secure.post("/console/login", data={"key": ADMIN_KEY, "csrf": csrf(secure)})
        assert answer.status_code == 303
        assert all("Secure" in c for c in answer.headers.get_list("set-cookie"))


def test_login_goes_back_only_to_a_page_of_this_site(client: TestClient) -> None:
    for target, expected in (
        ("/console/jobs", "/console/jobs"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
    ):
        response = client.post(
            "/console/login", data={"key": ADMIN_KEY, "csrf": csrf(client), "next": target}
        )
        assert response.headers["location"] == expected


def test_a_score_key_reads_but_cannot_promote(client: TestClient, fresh_history: Path) -> None:
    log_in(client, SCORE_KEY)
    page = client.get("/console/")
    assert page.status_code == 200 and "read-only" in page.text
    assert 'action="/console/models/loan-default/aliases"' not in page.text  # no forms shown
    token = csrf(client, "/console/")
    form = {"action": "promote", "version": "2", "reason": "try", "confirm": "yes"}
    response = client.post("/console/models/loan-default/aliases", data={"csrf": token, **form})
    assert response.status_code == 403 and "changes need an admin key" in response.text
    assert alias(fresh_history)["version"] == 1
    upload = client.post(
        "/console/datasets", data={"csrf": token}, files={"file": ("l.csv", b"a\n1\n", "text/csv")}
    )
    assert upload.status_code == 403


def test_an_admin_promotes_and_rolls_back_with_a_reason(
    client: TestClient, fresh_history: Path
) -> None:
    log_in(client, ADMIN_KEY)
    token = csrf(client, "/console/")
    form = {"csrf": token, "action": "promote", "version": "2", "alias": "production"}
    unconfirmed = client.post("/console/models/loan-default/aliases", data={**form, "reason": "x"})
    assert unconfirmed.status_code == 422 and "tick the box to confirm" in unconfirmed.text
    no_reason = client.post("/console/models/loan-default/aliases", data={**form, "confirm": "yes"})
    assert no_reason.status_code == 422 and "give a reason" in no_reason.text
    assert alias(fresh_history)["version"] == 1
    moved = client.post(
        "/console/models/loan-default/aliases",
        data={**form, "confirm": "yes", "reason": "quarterly refresh"},
    )
    assert moved.status_code == 303
    record = alias(fresh_history)
    assert (record["version"], record["updated_by"], record["reason"]) == (
        2,
        "alice",
        "quarterly refresh",
    )
    page = client.get(moved.headers["location"])
    assert "now points at version 2 (quarterly refresh)" in page.text
    back = client.post(
        "/console/models/loan-default/aliases",
        data={
            "csrf": token,
            "action": "rollback",
            "alias": "production",
            "reason": "bad week",
            "confirm": "yes",
        },
    )
    assert back.status_code == 303 and alias(fresh_history)["version"] == 1


def test_forged_forms_are_refused(client: TestClient, fresh_history: Path) -> None:
    log_in(client, ADMIN_KEY)
    token = csrf(client, "/console/")
    form = {"action": "promote", "version": "2", "reason": "forged", "confirm": "yes"}
    url = "/console/models/loan-default/aliases"
    assert client.post(url, data=form).status_code == 403  # no token
    assert client.post(url, data={**form, "csrf": "x" * 32}).status_code == 403  # not the cookie's
    foreign = client.post(
        url, data={**form, "csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403 and "another site" in foreign.text
    assert alias(fresh_history)["version"] == 1
    same_site = client.post(
        url, data={**form, "csrf": token}, headers={"Origin": "http://testserver"}
    )
    assert same_site.status_code == 303 and alias(fresh_history)["version"] == 2


def test_what_people_typed_is_shown_as_text(client: TestClient) -> None:
    log_in(client, ADMIN_KEY)
    models = client.get("/console/").text
    assert HOSTILE_REASON not in models and str(escape(HOSTILE_REASON)) in models
    datasets = client.get("/console/datasets").text
    assert HOSTILE_SOURCE not in datasets and str(escape(HOSTILE_SOURCE)) in datasets
    assert "script-src 'self'" in client.get("/console/").headers["content-security-policy"]
    missing = client.get("/console/models/%3Cb%3Ex/versions/1")
    assert (
        missing.status_code == 422 and "<b>x" not in missing.text and "&lt;b&gt;x" in missing.text
    )


def finished_job(client: TestClient, response: Any) -> tuple[str, dict[str, Any]]:
    """The id and final record of the job a form's answer leads to (its page)."""
    assert response.status_code == 303, response.text
    job = response.headers["location"].rsplit("/", 1)[-1]
    deadline = time.monotonic() + 60
    while (state := client.get(f"/console/jobs/{job}/state").json())["state"] not in (
        "succeeded",
        "failed",
    ):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    return job, state


def test_the_upload_form_starts_a_job_that_makes_a_dataset(client: TestClient) -> None:
    log_in(client, ADMIN_KEY)
    token = csrf(client, "/console/datasets")
    body = generate_sample(600, seed=9).to_csv(index=False).encode()
    response = client.post(
        "/console/datasets",
        data={"csrf": token},
        files={"file": ("my loans.csv", body, "text/csv")},
    )
    job, state = finished_job(client, response)
    assert state["state"] == "succeeded", state
    page = client.get(f"/console/jobs/{job}").text
    dataset = state["result"]["dataset"]["id"]
    assert f"/console/datasets/{dataset}" in page
    assert "my_loans.csv" in client.get(f"/console/datasets/{dataset}").text
    empty = client.post(
        "/console/datasets", data={"csrf": token}, files={"file": ("e.csv", b"", "text/csv")}
    )
    assert empty.status_code == 422 and "is empty" in empty.text
    bad_size = client.post(
        "/console/datasets",
        data={"csrf": token, "size": "-3"},
        files={"file": ("l.csv", body, "text/csv")},
    )
    assert bad_size.status_code == 422 and "size" in bad_size.text


def test_the_upload_form_processes_loans_of_a_stored_schema(client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    stored = client.put(
        "/v1/schemas/second",
        content=second_yaml(),
        headers={**admin, "Content-Type": "application/yaml"},
    )
    assert stored.status_code == 200, stored.text
    log_in(client, ADMIN_KEY)
    page = client.get("/console/datasets").text
    choices = re.findall(r"<option value=\"([^\"]+)\"( selected)?>", page)
    assert choices == [("credit-risk", " selected"), ("second", "")]  # the built-in by default
    token = csrf(client, "/console/datasets")
    body = second_loans(800).to_csv(index=False).encode()
    response = client.post(
        "/console/datasets",
        data={"csrf": token, "schema_name": "second"},
        files={"file": ("cards.csv", body, "text/csv")},
    )
    _, state = finished_job(client, response)
    assert state["state"] == "succeeded", state
    dataset = state["result"]["dataset"]["id"]
    manifest = client.get(f"/v1/datasets/{dataset}", headers=admin).json()
    assert manifest["schema_name"] == "second"
    assert "applied_on" in manifest["kept_columns"]
    listed = client.get("/console/datasets").text
    assert re.search(
        rf"{dataset}</a></th><td class=\"text\">cards.csv</td>"
        r"<td class=\"text\">second</td>",
        listed,
    )
    unknown = client.post(
        "/console/datasets",
        data={"csrf": token, "schema_name": "nope"},
        files={"file": ("cards.csv", body, "text/csv")},
    )
    assert unknown.status_code == 422 and "no schema &#39;nope&#39;" in unknown.text
    wrong = client.post(
        "/console/datasets",
        data={"csrf": token},  # the built-in schema
        files={"file": ("cards.csv", body, "text/csv")},
    )
    _, refused = finished_job(client, wrong)
    assert refused["state"] == "failed"
    assert "missing required column(s)" in json.dumps(refused["error"])
    log_in(client, SCORE_KEY)
    assert "schema_name" not in client.get("/console/datasets").text  # no form: read-only


def test_an_open_service_shows_the_console_without_a_login(
    fresh_history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LOANRISK_API_KEYS", raising=False)
    with TestClient(
        create_app(Settings(storage=str(fresh_history))), follow_redirects=False
    ) as client:
        page = client.get("/console/")
        assert page.status_code == 200 and "anonymous (open service)" in page.text
        assert "Log out" not in page.text


def test_the_api_documentation_uses_only_packaged_assets(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path).text
        references = re.findall(r'(?:src|href|url)\s*[=:]\s*["\']([^"\']+)', page)
        assert references and all(r.startswith("/") for r in references), references
        for asset in (r for r in references if r.startswith("/console/static/")):
            assert client.get(asset).status_code == 200, asset
    vendor = resources.files("loanrisk").joinpath("static", "vendor")
    listed = dict(
        re.findall(
            r"^\| (\S+) \| [^|]+ \| ([0-9a-f]{64}) \|$",
            vendor.joinpath("README.md").read_text(),
            re.MULTILINE,
        )
    )
    assert set(listed) == {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"}
    for name, digest in listed.items():
        assert hashlib.sha256(vendor.joinpath(name).read_bytes()).hexdigest() == digest, name


def test_the_monitoring_page_says_when_its_figures_come_from_a_sample(
    fresh_history: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    settings = Settings(
        storage=str(fresh_history), nthread=1, monitor_max_rows=1_000, log_flush_seconds=0.2
    )
    loans = generate_sample(2_500, seed=9).drop(columns=["loan_status"])
    records = loans.astype(object).where(loans.notna(), None).to_dict("records")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert (
            client.post(
                "/v1/predict", json={"records": records[:1_250]}, headers=headers
            ).status_code
            == 200
        )
        assert (
            client.post(
                "/v1/predict", json={"records": records[1_250:]}, headers=headers
            ).status_code
            == 200
        )
    with TestClient(create_app(settings), follow_redirects=False) as client:
        log_in(client, ADMIN_KEY)
        page = client.get("/console/monitoring").text
    assert re.search(r"\(2,500 loans; shares from a sample of [0-9,]+\)", page), page
    assert "Outcomes and AUC from a uniform sample of" in page

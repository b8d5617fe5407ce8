"""Every error shape right (issue 26): client input and a full disk answer 4xx or 503 in the
route family's own shape, never 500; counts and flags are strict; what a job would refuse is
refused when the request is built; anonymous callers see no storage path; job children log
JSON lines; and the OpenAPI document resolves every ``$ref``. Through a real app and a real
``loanrisk serve``."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from loanrisk.data.process import process_dataset
from loanrisk.data.sample import generate_sample
from loanrisk.schema import validate_frame
from loanrisk.service import create_app
from loanrisk.settings import Settings
from loanrisk.storage import FsspecStorage
from loanrisk.training.job import TrainingRequest, run_training
from tests.builtin import EXAMPLE_LOAN, LABEL, SCHEMA

from .conftest import free_port, wait_until_serving

ADMIN_KEY = "shapes-admin-key-0123456789"
KEYS = f'["alice=admin:{ADMIN_KEY}"]'
LOANRISK = os.path.join(os.path.dirname(sys.executable), "loanrisk")
TEXT = {c.name for c in SCHEMA.features if c.type in ("categorical", "ordinal")}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset, version 1 in production and version 2: a linear booster (published, never
    served), as a training accepted it before the edge refused such parameters."""
    root = tmp_path_factory.mktemp("shapes") / "store"
    storage = FsspecStorage(str(root))
    process_dataset(validate_frame(generate_sample(1_000, seed=4)), storage, source="sample")
    run_training(TrainingRequest(rounds=5, params={"max_depth": 3}), storage, nthread=1)
    # XGBoost warns, from a C callback, that a linear booster ignores the tree parameters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_training(
            TrainingRequest(rounds=2, params={"booster": "gblinear"}, promote=False),
            storage,
            nthread=1,
        )
    generate_sample(200, seed=5).to_csv(root / "raw.csv", index=False)
    return root


@pytest.fixture
def client(store: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(storage=str(store), nthread=1))) as test_client:
        yield test_client


def refused(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """The v1 error of ``response``: ``status``, naming ``field`` when given."""
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}, error
    if field is not None:
        named = [
            error["details"].get("field"),
            *(f["field"] for f in error["details"].get("fields", [])),
        ]
        assert any(field in str(n) for n in named) or field in error["message"], error
    return error


# -- the console: a CSRF field that is not ASCII --------------------------------------------


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found
    return found.group(1)


def test_a_csrf_field_that_is_not_ascii_is_refused_not_a_crash(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    settings = Settings(storage=str(store), nthread=1)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        _csrf(client, "/console/login")
        for token in ("é" * 32, "\u00e9", "\uff12" * 32):  # the last: fullwidth digits
            login = client.post("/console/login", data={"key": ADMIN_KEY, "csrf": token})
            assert login.status_code == 403, login.text
            assert "CSRF" in login.text
        logged_in = client.post(
            "/console/login", data={"key": ADMIN_KEY, "csrf": _csrf(client, "/console/login")}
        )
        assert logged_in.status_code == 303
        form = {"action": "promote", "version": "1", "reason": "x", "confirm": "yes"}
        alias = client.post("/console/models/loan-default/aliases", data={**form, "csrf": "ü" * 32})
        assert alias.status_code == 403 and "CSRF" in alias.text


# -- OIP: tensors, framing and versions that cannot be served, in OIP's shape ---------------


def _oip_body(loan: dict[str, Any]) -> dict[str, Any]:
    inputs = []
    for name in SCHEMA.feature_names:
        value = loan[name]
        datatype = "BYTES" if name in TEXT else "FP64"
        inputs.append({"name": name, "shape": [1], "datatype": datatype, "data": [value]})
    return {"inputs": inputs}


def oip_refused(response: Any, low: int = 400, high: int = 499) -> str:
    assert low <= response.status_code <= high, response.text
    doc = response.json()
    assert set(doc) == {"error"} and isinstance(doc["error"], str), doc
    return str(doc["error"])


def test_oip_refuses_a_huge_integer_a_foreign_digit_length_and_an_unservable_version(
    client: TestClient,
) -> None:
    url = "/v2/models/loan-default/infer"
    good = client.post(url, json=_oip_body(EXAMPLE_LOAN))
    assert good.status_code == 200, good.text

    income = json.dumps(EXAMPLE_LOAN["person_income"])
    for datatype in ("INT64", "FP64", "FP32", "INT32"):
        huge = _oip_body(EXAMPLE_LOAN)
        tensor = next(i for i in huge["inputs"] if i["name"] == "person_income")
        tensor["datatype"] = datatype
        raw = json.dumps(huge).replace(f'"data": [{income}]', f'"data": [{"9" * 401}]')
        assert "9" * 401 in raw
        answer = client.post(url, content=raw, headers={"content-type": "application/json"})
        oip_refused(answer)

    body = json.dumps(_oip_body(EXAMPLE_LOAN)).encode()
    # Headers travel as Latin-1: '²' and '¹²' are digits to str.isdigit, not to int().
    for length in ("²", "¹²", "+5", " 5", "-1", "9" * 30):
        framed = client.post(
            url,
            content=body,
            headers={
                "content-type": "application/json",
                "inference-header-content-length": length.encode("latin-1"),
            },
        )
        assert framed.status_code == 400, (length, framed.text)
        oip_refused(framed)

    linear = client.post("/v2/models/loan-default/versions/2/infer", json=_oip_body(EXAMPLE_LOAN))
    message = oip_refused(linear)
    assert "cannot be served" in message or "linear" in message, message


def test_v2_answers_its_framework_errors_in_the_oip_shape(client: TestClient) -> None:
    oip_refused(client.get("/v2/models/loan-default/nothing-here"), 404, 404)
    oip_refused(client.delete("/v2/models/loan-default/infer"), 405, 405)
    oip_refused(
        client.post(
            "/v2/models/loan-default/infer",
            content=b"{",
            headers={"content-type": "application/json"},
        ),
        400,
        400,
    )
    # and v1 keeps its own shape
    refused(client.get("/v1/nothing-here"), 404)


def test_v2_answers_a_body_over_the_limit_in_the_oip_shape(store: Path) -> None:
    settings = Settings(storage=str(store), nthread=1, max_request_bytes=2_048)
    with TestClient(create_app(settings)) as small:
        body = json.dumps(_oip_body(EXAMPLE_LOAN)).encode() + b" " * 4_000
        url = "/v2/models/loan-default/infer"
        answer = small.post(url, content=body, headers={"content-type": "application/json"})
        assert "2,048" in oip_refused(answer, 413, 413)
        v1 = small.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        refused(v1, 413)


# -- strict counts, flags and moments; refusals at the edge ---------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rounds": "3"}, "rounds"),
        ({"rounds": 3.0}, "rounds"),
        ({"rounds": True}, "rounds"),
        ({"promote": "yes"}, "promote"),
        ({"promote": 1}, "promote"),
        ({"monotone": "true"}, "monotone"),
        ({"dataset_size": "100"}, "dataset_size"),
        ({"early_stopping_rounds": "5"}, "early_stopping_rounds"),
        ({"params": {"num_class": 3}}, "params.num_class"),
        ({"params": {"booster": "gblinear"}}, "params.booster"),
        ({"params": {"objective": "multi:softprob"}}, "params.objective"),
    ],
)
def test_a_training_request_is_strict_and_refused_at_the_edge(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/models/loan-default/versions", json=body)
    refused(response, 422, field)
    assert not client.get("/v1/jobs").json()["jobs"]  # nothing was queued


def test_a_dataset_request_is_strict_and_refuses_the_label_as_a_kept_column(
    client: TestClient,
) -> None:
    refused(client.post("/v1/datasets", json={"source": "raw.csv", "size": "100"}), 422, "size")
    refused(client.post("/v1/datasets", json={"source": "raw.csv", "size": True}), 422, "size")
    for kept in ([LABEL], [LABEL.upper()], ["person_age"]):
        error = refused(
            client.post("/v1/datasets", json={"source": "raw.csv", "keep_columns": kept}),
            422,
            "keep_columns",
        )
        assert kept[0] in error["message"]
    form = client.post(
        "/v1/datasets",
        files={"file": ("raw.csv", b"a,b\n1,2\n")},
        data={"keep_columns": LABEL},
    )
    refused(form, 422, "keep_columns")
    tune = client.post("/v1/datasets/latest/studies", json={"trials": "2"})
    assert tune.status_code in (404, 422), tune.text
    assert not client.get("/v1/jobs").json()["jobs"]


def test_a_report_window_is_iso_8601_not_an_epoch(client: TestClient) -> None:
    url = "/v1/models/loan-default/drift"
    for value in ("0.5", "0", "1700000000", "1e9", "yesterday"):
        error = refused(client.get(url, params={"until": value}), 422, "until")
        assert "ISO 8601" in error["message"]
    refused(client.get(url, params={"since": "12.5"}), 422, "since")
    for good in ("2099-01-01", "2099-01-01T00:00:00Z", "2099-01-01T00:00:00+01:00"):
        assert client.get(url, params={"until": good}).status_code == 200, good


@pytest.mark.parametrize(
    ("method", "path", "query", "shape"),
    [
        ("GET", "/v1/models", "model_directory=models&model_directory=other", "v1"),
        ("POST", "/v1/predict", "explain=true&top_k=2&explain=false", "v1"),
        ("GET", "/v2/models/loan-default", "a=1&a=2", "oip"),
    ],
)
def test_a_query_parameter_given_twice_is_refused_naming_it(
    client: TestClient, method: str, path: str, query: str, shape: str
) -> None:
    name = query.split("=")[0]
    answer = client.request(method, f"{path}?{query}", content=b"")
    assert answer.status_code == 422
    error = answer.json()["error"]
    if shape == "oip":
        assert error.startswith(f"query.{name}: given more than once")
    else:
        assert error["details"] == {"field": f"query.{name}"}


def test_each_query_parameter_once_passes_the_edge(client: TestClient) -> None:
    assert client.get("/v1/models?model_directory=models").status_code == 200


def test_the_reference_train_with_no_body_trains_nothing(client: TestClient) -> None:
    for body in (b"", b"  \n"):
        response = client.post("/train", content=body, headers={"content-type": "application/json"})
        error = refused(response, 422, "body")
        assert "no fields" in error["message"]
    assert client.post("/train").status_code == 422  # no content type either
    empty_form = client.post(
        "/train", content=b"", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    refused(empty_form, 422, "body")
    assert not client.get("/v1/jobs").json()["jobs"]


def test_readiness_shows_the_storage_path_only_to_a_caller_with_a_key(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(Settings(storage=str(store), nthread=1))) as open_service:
        shown = open_service.get("/readyz").json()
        assert shown["storage"] == "file"
        assert str(store) not in open_service.get("/readyz").text
        assert str(store) not in open_service.get("/v2/health/ready").text
    monkeypatch.setenv("LOANRISK_API_KEYS", KEYS)
    with TestClient(create_app(Settings(storage=str(store), nthread=1))) as keyed:
        assert str(store) not in keyed.get("/readyz").text
        wrong = keyed.get("/readyz", headers={"Authorization": "Bearer not-a-key-0000"})
        assert str(store) not in wrong.text
        known = keyed.get("/readyz", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert known.json()["storage"] == f"file://{store}"


# -- a full disk during an upload ------------------------------------------------------------

#: Bytes a file of the server may grow to (RLIMIT_FSIZE): writes past it fail with EFBIG, as
#: on a full disk (ENOSPC) they fail for every file; the request body itself stays in memory.
FILE_LIMIT = 128 * 1024


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not death


@pytest.fixture
def disk_limited(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real ``loanrisk serve`` whose files cannot grow past :data:`FILE_LIMIT`."""
    root = tmp_path / "store"
    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as stderr:
        server = subprocess.Popen(
            [LOANRISK, "serve", "--port", str(port), "--storage", str(root)],
            env={**os.environ, "LOANRISK_NTHREAD": "1"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_limit_file_size,  # set in the child between fork and exec
        )
    try:
        wait_until_serving(server, port, "loanrisk serve", timeout=60)
        yield f"http://127.0.0.1:{port}", root
    finally:
        server.terminate()
        server.wait(30)


def test_a_full_disk_during_an_upload_answers_503_storage_error(
    disk_limited: tuple[str, Path],
) -> None:
    url, root = disk_limited
    big = generate_sample(12_000, seed=6).to_csv(index=False).encode()
    assert FILE_LIMIT < len(big) < 1024 * 1024  # over the limit, under the form's spool
    with httpx.Client(base_url=url, timeout=60) as http:
        answer = http.post("/v1/datasets", files={"file": ("loans.csv", big)})
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "storage_error" and "loans.csv" in error["message"]
        reference = http.post("/data_processing", files={"file": ("loans.csv", big)})
        assert reference.status_code == 503, reference.text
        assert not [p for p in root.rglob("*") if p.is_file() and "uploads" in p.parts]
        small = generate_sample(200, seed=6).to_csv(index=False).encode()
        assert http.post("/v1/datasets", files={"file": ("s.csv", small)}).status_code == 202


# -- the OpenAPI document resolves, and says what the routes do -----------------------------


def _refs(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield where, value
            else:
                yield from _refs(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _refs(value, f"{where}/{i}")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _concrete(path: str) -> str:
    values = {"name": "loan-default", "version": "1", "ref": "1", "alias": "production"}
    return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1), "x"), path)


def test_the_openapi_document_resolves_every_ref_and_declares_its_paths(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    refs = list(_refs(document))
    assert refs
    unresolved = []
    for where, ref in refs:
        try:
            _resolve(document, ref)
        except (KeyError, IndexError, AssertionError):
            unresolved.append(f"{where}: {ref}")
    assert not unresolved, unresolved
    assert "$defs" not in json.dumps(document["paths"])
    for name in ("Outcome", "RequestInput", "RequestOutput"):
        assert name in document["components"]["schemas"], name

    for path, operations in document["paths"].items():
        named = set(re.findall(r"{(\w+)}", path))
        for method, operation in operations.items():
            declared = {
                p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "path"
            }
            assert set(declared) == named, (method, path)
            for parameter, schema in declared.items():
                assert "pattern" in schema, (method, path, parameter)
        # 405 names every method the path answers, as the document does
        answer = client.request("PATCH", _concrete(path))
        assert answer.status_code == 405, (path, answer.status_code)
        allowed = {m.strip() for m in answer.headers["allow"].split(",")}
        assert {m.upper() for m in operations} <= allowed, (path, allowed)
        assert allowed <= {m.upper() for m in operations} | {"HEAD"}, (path, allowed)


def test_path_patterns_match_what_the_routes_accept(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    name = document["paths"]["/v1/models/{name}"]["get"]["parameters"][0]["schema"]["pattern"]
    for good in ("loan-default", "a", "v1.2_x"):
        assert re.fullmatch(name, good)
    for bad in ("..x", "a..b", "-a", "a" * 65, "a b"):
        assert not re.fullmatch(name, bad)
        assert client.get(f"/v1/models/{bad}").status_code in (404, 422)


# -- job children log one JSON line per event ------------------------------------------------

CHILD_SCRIPT = """
import sys
from loanrisk.contracts import TrainingRequest
from loanrisk.errors import LoanRiskError
from loanrisk.jobs.child import run_in_process
from loanrisk.settings import Settings

settings = Settings(storage=sys.argv[1], nthread=1)
for request in (
    # a linear booster, as a request built before the edge refused it: XGBoost warns
    TrainingRequest(rounds=2, dataset=sys.argv[2], params={"booster": "gblinear"}, promote=False),
    # a dataset whose training split is not Parquet
    TrainingRequest(rounds=2, dataset=sys.argv[3], promote=False),
):
    try:
        run_in_process(request, settings)
        print("succeeded")
    except LoanRiskError as exc:
        print(exc.code, exc.details.get("error_id", ""))
"""


def test_job_children_log_one_json_line_per_event(tmp_path: Path) -> None:
    root = tmp_path / "store"
    storage = FsspecStorage(str(root))
    good = process_dataset(validate_frame(generate_sample(400, seed=7)), storage, source="a")
    broken = process_dataset(validate_frame(generate_sample(400, seed=8)), storage, source="b")
    (split,) = root.rglob(f"{broken.id}/train.parquet")
    split.write_bytes(b"PAR1 this is not parquet PAR1")
    assert good.id != broken.id
    ran = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT, str(root), good.id, broken.id],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"},
        check=True,
    )
    outcomes = ran.stdout.split("\n")
    assert outcomes[0] == "succeeded", ran.stdout
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert lines, "the children logged nothing"
    events = []
    for line in lines:
        event = json.loads(line)  # every line is one JSON event
        assert {"time", "level", "logger", "message", "job", "pid"} <= set(event), event
        events.append(event)
    assert any(e["level"] == "warning" and e["job"] == "train" for e in events), events
    code, _, error_id = outcomes[1].partition(" ")
    if code == "internal":  # an unexpected error: logged with its id, traceback in the line
        (logged,) = [e for e in events if error_id in e["message"]]
        assert "Traceback" in logged["exception"] and logged["level"] == "error"
    else:
        assert code in ("storage_error", "invalid_input", "hash_mismatch"), ran.stdout

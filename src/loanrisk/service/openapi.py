"""The OpenAPI document, made true: every error status a route can answer, with its shape.

FastAPI documents the success answers and, for routes with typed parameters, a 422 in its
own ``{"detail": [...]}`` shape, which this service never sends. Here every operation gets
the errors it can return in the one error shape (``service/errors.py``): the client errors of
authentication, missing things, clashes and bad input; the body errors of routes that read a
body; 429 for routes that start jobs; 501 for routes that need an optional extra; and
500/503, which any route that touches the storage can answer. The schema is built once, when
first asked for; every request body that carries a loan (``/v1/predict``, the OIP infer
routes, the reference's ``/predict``) then shows the declared schema of the model the service
serves (rebuilt when it changes).

The document resolves: the ``$defs`` of a model's JSON Schema embedded in a body are moved
to ``components/schemas`` (:func:`hoist_defs`), so every ``$ref`` names a schema of the
document, and every path parameter, and every query parameter naming a model or a version,
declares the pattern its route accepts (:data:`PATH_PATTERNS`, :data:`QUERY_PATTERNS`).
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from loanrisk.contracts import STUDY_NAME
from loanrisk.oip.rest import infer_body
from loanrisk.schema import LoanSchema, builtin_schema
from loanrisk.service.bodies import JSON
from loanrisk.service.loan_docs import loan_json_schema, predict_body
from loanrisk.service.patterns import NAME, NUMBER, REF
from loanrisk.service.routes.reference.bodies import predict_example
from loanrisk.settings import Settings

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "description": "Stable machine-readable name."},
                "message": {"type": "string", "description": "What is wrong, for a person."},
                "details": {"type": "object", "description": "Fields, rows, limits, ids."},
            },
        }
    },
}
#: The Open Inference Protocol's own error shape, which its routes (``/v2``) answer in.
OIP_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong, for a person."}},
}
DESCRIPTIONS = {
    400: "the body cannot be parsed (broken JSON or multipart)",
    401: "no API key, or an unknown one",
    403: "the key lacks the scope, or a path leaves the storage",
    404: "no such route, dataset, model, version or job",
    409: "the request clashes with the current state (no model yet, busy, exists)",
    413: "the body or a count is over its limit",
    415: "a content type the route does not read",
    422: "invalid input, naming the field",
    429: "this replica's job queue, or its budget of JSON bodies being parsed, is full; "
    "retry after Retry-After seconds",
    500: "an unexpected error; quote its error id",
    501: "needs an optional extra this installation lacks (`not_installed`: the serving image "
    "has no tuning and no optimal binning); details name the extra and the image that has it",
    503: "the storage is unreachable or failing",
}
#: Routes anyone may call, answered without the storage (so without 4xx of their own).
OPEN = {"/healthz", "/ping", "/metrics", "/readyz", "/"}
#: Routes that start a job: a full queue answers 429.
JOB_ROUTES = {
    ("post", "/v1/datasets"),
    ("post", "/v1/models/{name}/versions"),
    ("post", "/v1/batch-predictions"),
    ("post", "/data"),
    ("post", "/data_processing"),
    ("post", "/train"),
}

#: Routes that need an optional extra (loanrisk.extras): where it is not installed, 501.
EXTRA_ROUTES = {
    ("get", "/v1/datasets/{dataset_id}/characteristics"),  # scorecard: optimal binning
    ("post", "/v1/datasets/{dataset_id}/studies"),  # tune
    ("post", "/v1/models/{name}/versions"),  # scorecard, for kind: scorecard
}

#: Routes that parse a JSON body of loans within the worker's budget (max_parsing_bytes):
#: a budget that stays full answers 429.
PARSING_ROUTES = {
    ("post", "/v1/predict"),
    ("post", "/predict"),
    ("post", "/v2/models/{name}/infer"),
    ("post", "/v2/models/{name}/versions/{version}/infer"),
}


#: The pattern of each path parameter: what its route accepts (others are refused, 4xx).
PATH_PATTERNS = {
    "name": NAME,
    "alias": NAME,
    "ref": REF,
    "version": NUMBER,  # OIP: a version number
    "study": STUDY_NAME,
    "dataset_id": r"^[^/.][^/]*$",
    "job_id": r"^job-(?!.*\.\.)[^/]*$",
}
#: The pattern of each query parameter naming a model or a version.
#: An empty value is the parameter's default (the served alias, the service's model).
QUERY_PATTERNS = {
    name: f"^$|{p}" for name, p in {"ref": REF, "version": REF, "model": NAME}.items()
}
QUERY_PATTERNS.update(a=REF, b=REF)  # required: no default


def declare_path_patterns(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the pattern of :data:`PATH_PATTERNS` on every path parameter and of
    :data:`QUERY_PATTERNS` on every query parameter naming a model or a version (on its
    string branch, when it may also be null)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                where, name = parameter.get("in"), parameter.get("name")
                patterns = {"path": PATH_PATTERNS, "query": QUERY_PATTERNS}.get(where, {})
                pattern = patterns.get(name)
                if pattern is None:
                    continue
                parameter_schema = parameter.setdefault("schema", {})
                branches = parameter_schema.get("anyOf", [parameter_schema])
                for branch in branches:
                    if branch.get("type", "string") == "string":
                        branch["pattern"] = pattern
    return schema


def hoist_defs(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every ``$defs`` nested in it (a pydantic model's JSON Schema used
    as a body) moved to ``components/schemas`` and its ``#/$defs/X`` references rewritten to
    point there; a name already taken by a different schema gets a numbered one."""
    components = document.setdefault("components", {}).setdefault("schemas", {})

    def free_name(name: str, definition: Any) -> str:
        """``name``, or a numbered one when a different schema has it."""
        final, n = name, 1
        while final in components and components[final] != rewrite(copy.deepcopy(definition), {}):
            n += 1
            final = f"{name}{n}"
        return final

    def rewrite(node: Any, renamed: dict[str, str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                node["$ref"] = f"#/components/schemas/{renamed.get(name, name)}"
            for value in node.values():
                rewrite(value, renamed)
        elif isinstance(node, list):
            for value in node:
                rewrite(value, renamed)
        return node

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            defs = node.pop("$defs", None)
            if isinstance(defs, dict):
                renamed = {name: free_name(name, d) for name, d in defs.items()}
                for name, definition in defs.items():
                    components[renamed[name]] = rewrite(copy.deepcopy(definition), renamed)
                rewrite(node, renamed)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document["paths"])
    return document


def _error_codes(path: str, method: str) -> list[int]:
    if path in OPEN:
        return [500, 503] if path == "/readyz" else [500]
    codes = [401, 403, 404, 409, 422, 500, 503]
    if method in ("post", "put"):
        codes += [400, 413, 415]
    if (method, path) in JOB_ROUTES or (method, path) in PARSING_ROUTES:
        codes.append(429)
    if (method, path) in EXTRA_ROUTES:
        codes.append(501)
    return sorted(codes)


#: How a request presents its API key (``serving/auth.py``: ``presented_key``).
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (LOANRISK_API_KEYS) as `Authorization: Bearer <key>`.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
#: Either scheme, on every operation that can answer 401 (a service without keys is open).
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def error_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the error answers of every operation in the one error shape, and the
    API-key schemes on every operation that needs a key."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"], components["OipError"] = ERROR, OIP_ERROR
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    oip = {"application/json": {"schema": {"$ref": "#/components/schemas/OipError"}}}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            codes = _error_codes(path, method)
            if path.startswith("/v2") and 400 not in codes:
                codes = sorted([*codes, 400])  # a version that is not a number
            for code in codes:
                entry = responses.setdefault(str(code), {"description": DESCRIPTIONS[code]})
                entry["content"] = oip if path.startswith("/v2") else content
            if 401 in codes:
                operation["security"] = SECURITY
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return schema


def _served_schema(app: FastAPI) -> LoanSchema:
    """The declared schema of the model being served (the built-in one before any loads)."""
    services = getattr(app.state, "services", None)
    scorer = services.models.served.serving() if services is not None else None
    return scorer.schema if scorer is not None else builtin_schema()


#: The OIP routes whose request bodies show a loan as tensors named after its attributes.
INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")


def describe_loans(
    document: dict[str, Any], schema: LoanSchema, settings: Settings | None
) -> dict[str, Any]:
    """``document`` with every request that carries a loan shown in ``schema``'s fields:
    ``/v1/predict`` (its body's JSON Schema and examples), the OIP infer routes (one input
    per attribute) and the reference's ``/predict`` (its ``sample``, for the served model of
    ``settings``, so that the example answers as it is)."""
    paths = document["paths"]
    paths["/v1/predict"]["post"]["requestBody"] = predict_body(schema)
    for path in INFER_PATHS:
        if path in paths:
            paths[path]["post"]["requestBody"] = infer_body(schema)
    reference = paths.get("/predict", {}).get("post")
    if reference is not None:
        served = (
            {}
            if settings is None
            else {
                "model_name": settings.model_name,
                "model_key": settings.model_directory,
                **({"bucket": settings.buckets[0]} if settings.buckets else {}),
            }
        )
        content = reference["requestBody"]["content"][JSON]
        content["example"] = predict_example(schema, **served)
        loan = loan_json_schema(schema)
        sample = {"anyOf": [loan, {"type": "array", "items": loan}]}
        content["schema"].setdefault("properties", {})["sample"] = sample
    return document


def install(app: FastAPI) -> None:
    described: dict[str, str] = {}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare_path_patterns(
                error_responses(
                    get_openapi(
                        title=app.title,
                        version=app.version,
                        description=app.description,
                        routes=app.routes,
                    )
                )
            )
        schema = _served_schema(app)
        if described.get("hash") != schema.fingerprint():
            services = getattr(app.state, "services", None)
            settings = services.settings if services is not None else None
            hoist_defs(describe_loans(app.openapi_schema, schema, settings))
            described["hash"] = schema.fingerprint()
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

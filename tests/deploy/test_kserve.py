"""The KServe manifests (deploy/kubernetes/kserve), rendered with kustomize and validated with
the KServe SDK's own models of InferenceService and ServingRuntime (a field the schema does
not know, or of the wrong type, fails), the runtime's container as a strict Kubernetes pod,
and every setting, argument, port and probe against the app."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kserve
import kubernetes.client.models
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from loanrisk.service import create_app

from .conftest import cli_context, render
from .test_manifests import ENTRYPOINT, as_pod, one, settings_from, strict

KINDS = {"InferenceService": "V1beta1InferenceService", "ServingRuntime": "V1alpha1ServingRuntime"}


PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
}
_LIST = re.compile(r"^(?:list|List)\[(.+)\]$")
_DICT = re.compile(r"^(?:dict\(str, (.+)\)|Dict\[str, (.+)\])$")


def build(data: Any, kind: str, where: str) -> Any:
    """``data`` as the SDK's (or, for embedded Kubernetes types, the Kubernetes client's)
    model ``kind``: a field the model does not declare, or a value of the wrong type, fails,
    and the models' setters check required fields and enums."""
    if match := _LIST.match(kind):
        assert isinstance(data, list), f"{where}: a list"
        return [build(v, match.group(1), f"{where}[{i}]") for i, v in enumerate(data)]
    if match := _DICT.match(kind):
        assert isinstance(data, dict), f"{where}: a map"
        inner = match.group(1) or match.group(2)
        return {k: build(v, inner, f"{where}.{k}") for k, v in data.items()}
    if kind in PRIMITIVES:
        assert isinstance(data, PRIMITIVES[kind]), f"{where}: {data!r} is not {kind}"
        return data
    cls = getattr(kserve.models, kind, None) or getattr(kubernetes.client.models, kind)
    assert isinstance(data, dict), f"{where}: an object ({kind})"
    fields = {json: attr for attr, json in cls.attribute_map.items()}
    unknown = sorted(set(data) - set(fields))
    assert not unknown, f"{where}: {kind} has no field(s) {', '.join(unknown)}"
    return cls(
        **{
            fields[k]: build(v, cls.openapi_types[fields[k]], f"{where}.{k}")
            for k, v in data.items()
        }
    )


def schema_valid(obj: dict[str, Any]) -> None:
    build(obj, KINDS[obj["kind"]], obj["kind"])


def test_the_objects_follow_kserves_schemas() -> None:
    objects = render("kserve")
    assert sorted(o["kind"] for o in objects) == ["InferenceService", "ServingRuntime"]
    for obj in objects:
        schema_valid(obj)
    service = one(objects, "InferenceService")
    typo = copy.deepcopy(service)
    typo["spec"]["predictor"]["model"]["storageURI"] = typo["spec"]["predictor"]["model"].pop(
        "storageUri"
    )
    with pytest.raises(AssertionError, match=r"has no field.*storageURI"):
        schema_valid(typo)
    wrong = copy.deepcopy(service)
    wrong["spec"]["predictor"]["minReplicas"] = "two"
    with pytest.raises(AssertionError, match="minReplicas: 'two' is not int"):
        schema_valid(wrong)


def test_the_runtime_serves_the_model_as_the_app_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    objects = render("kserve")
    runtime, service = one(objects, "ServingRuntime"), one(objects, "InferenceService")
    spec = runtime["spec"]
    strict(as_pod({"containers": spec["containers"], "volumes": spec["volumes"]}))
    model = service["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2" and "v2" in spec["protocolVersions"]
    assert {
        "name": model["modelFormat"]["name"],
        "version": model["modelFormat"]["version"],
        "autoSelect": True,
    } in spec["supportedModelFormats"]
    assert model["storageUri"].startswith("s3://")

    (container,) = spec["containers"]
    assert container["name"] == "kserve-container"  # where KServe routes and mounts the model
    env = {e["name"]: e["value"] for e in container["env"]}
    settings = settings_from(
        {k: v for k, v in env.items() if k.startswith("LOANRISK_")}, monkeypatch
    )
    assert settings.storage == "/mnt/models" and not settings.prediction_log
    serve = cli_context([*ENTRYPOINT, *container["args"]])
    assert serve.params["port"] == container["ports"][0]["containerPort"] == 8080
    assert serve.params["host"] == "0.0.0.0"  # noqa: S104 (inside the pod)
    local = settings.model_copy(
        update={
            "storage": str(tmp_path),
            "api_keys_file": None,
            "api_keys": (SecretStr("admin:" + "k" * 32),),
        }
    )
    with TestClient(create_app(local)) as client:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert client.get(container[probe]["httpGet"]["path"]).status_code == 200
            assert container[probe]["httpGet"]["port"] == 8080
    assert container["securityContext"]["readOnlyRootFilesystem"] is True

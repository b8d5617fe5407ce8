"""Every Kubernetes manifest rendered with kustomize and validated strictly for Kubernetes
1.29 and 1.32, then checked against the app: routes, ports, labels, settings, commands."""

from __future__ import annotations

import base64
import copy
import os
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from loanrisk.service import create_app
from loanrisk.serving.auth import ApiKeys
from loanrisk.settings import Settings

from .conftest import KUBERNETES, cli_context, render

VERSIONS = ("1.29.0", "1.32.0")
OVERLAYS = ("overlays/aws", "overlays/azure-sgx", "overlays/local")
TRAINING = ("overlays/aws/train", "overlays/azure-sgx/train", "overlays/local/train", "dask/train")
DRIFT = ("overlays/aws/drift", "overlays/azure-sgx/drift", "overlays/local/drift")
ALL = (*OVERLAYS, *TRAINING, *DRIFT, "dask", "dask/score")
ENTRYPOINT = ["loanrisk", "serve"]  # the image's (tests/deploy/test_dockerfile.py)
#: A Prometheus duration, as the prometheus-operator CRD's pattern for ``for``/``interval``.
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_kind(objects, kind)
    return found


def strict(obj: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def as_pod(pod_spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}, "spec": pod_spec}


@pytest.mark.parametrize("kustomization", ALL)
def test_every_object_is_valid_kubernetes(kustomization: str) -> None:
    objects = render(kustomization)
    assert objects
    for obj in objects:
        if obj["kind"] == "DaskCluster":
            check_dask_cluster(obj)
            continue
        strict(obj)  # SchemaNotFoundError (an unknown kind or version) fails the test too


def test_the_validation_is_strict_and_knows_every_kind() -> None:
    deployment = api(render("overlays/local"))
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = typo["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        strict(typo)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        strict({**deployment, "apiVersion": "apps/v2"})


def check_dask_cluster(cluster: dict[str, Any]) -> None:
    """The operator's CRD is not in Kubernetes' schemas: its embedded pod and service specs
    are validated as the built-in objects they become."""
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    spec = cluster["spec"]
    assert set(spec) == {"worker", "scheduler"}
    assert spec["worker"]["replicas"] >= 1
    strict(as_pod(spec["worker"]["spec"]))
    strict(as_pod(spec["scheduler"]["spec"]))
    strict(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "check"},
            "spec": spec["scheduler"]["service"],
        }
    )
    ports = {p["port"] for p in spec["scheduler"]["service"]["ports"]}
    assert 8786 in ports


def api(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [
        d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "loanrisk"
    ]
    return deployment


def environment(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    configmaps = {c["metadata"]["name"]: c["data"] for c in by_kind(objects, "ConfigMap")}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the pod builds them (unknown LOANRISK_* variables are refused)."""
    with monkeypatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("LOANRISK_")]:
            patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_service_matches_the_app(
    overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    objects = render(overlay)
    deployment = api(objects)
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    settings = settings_from(environment(objects, container), monkeypatch)

    # Probes hit routes the app serves (asked of the app itself, on a scratch storage), on
    # the port it listens on.
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == settings.port == 5000
    assert settings.host == "0.0.0.0"  # noqa: S104 (inside the pod, behind the Service)
    # The mounted key file is not here: a key of the test's own (production refuses none).
    key = (SecretStr("admin:" + "k" * 32),)
    local = settings.model_copy(
        update={"storage": str(tmp_path), "api_keys_file": None, "api_keys": key}
    )
    with TestClient(create_app(local)) as client:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert client.get(container[probe]["httpGet"]["path"]).status_code == 200
            assert container[probe]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert "command" not in container and "args" not in container
    assert cli_context(ENTRYPOINT).command.name == "serve"

    # The load balancer, autoscaler and disruption budget point at these pods.
    labels = pod["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (8080, "http")
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "loanrisk",
    }
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    # Safe by default: non-root, read-only root, keys always configured.
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert settings.environment == ("development" if overlay.endswith("local") else "production")
    assert str(settings.api_keys_file).startswith(
        next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "api-keys")
    )
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "loanrisk-api-keys"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # uploads spool and metrics live there; the root is read-only
    # The log's write-ahead files on a volume of the pod's own (kept through a restart).
    wal = next(m for m in container["volumeMounts"] if m["name"] == "prediction-log-wal")
    assert settings.log_write_ahead and settings.log_wal_directory == wal["mountPath"]
    assert "emptyDir" in volumes["prediction-log-wal"]

    # CPU consistent with the worker count and threads.
    limits = container["resources"]["limits"]
    cpu = float(str(limits["cpu"]).removesuffix("m")) / (1000 if "m" in str(limits["cpu"]) else 1)
    assert settings.workers <= cpu and settings.nthread <= cpu
    assert pod["spec"]["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render("overlays/aws")
    deployment = api(objects)
    assert deployment["spec"]["replicas"] == 3
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 6
    account = one(objects, "ServiceAccount")
    assert (
        deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]
    )
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::"
    )
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    settings = settings_from(environment(objects, container), monkeypatch)
    assert settings.storage.startswith("s3://loan-default/")
    assert "loan-default" in settings.buckets
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the role, never keys
        assert name not in str(objects)

    cluster = yaml.safe_load((KUBERNETES / "overlays/aws/eksctl-cluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("eksctl.io/v1alpha5", "ClusterConfig")
    (nodes,) = cluster["managedNodeGroups"]
    assert (nodes["instanceType"], nodes["desiredCapacity"]) == ("m5.large", 3)
    assert cluster["iam"]["withOIDC"] is True
    (role,) = cluster["iam"]["serviceAccounts"]
    assert role["metadata"] == {"name": account["metadata"]["name"], "namespace": "loanrisk"}
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(
        "/" + role["roleName"]
    )


def test_azure_sgx(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = render("overlays/azure-sgx")
    deployment = api(objects)
    spec = deployment["spec"]["template"]["spec"]
    (term,) = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert term["matchExpressions"] == [
        {"key": "agentpool", "operator": "In", "values": ["intelsgx"]}
    ]
    (container,) = spec["containers"]
    epc = "kubernetes.azure.com/sgx_epc_mem_in_MiB"
    assert container["resources"]["requests"][epc] == container["resources"]["limits"][epc] == "10"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "azure-fileshare")
    assert mount["mountPath"] == "/loan_app/azure-fileshare"
    settings = settings_from(environment(objects, container), monkeypatch)
    assert settings.storage == settings.mount_path == mount["mountPath"]
    claim = one(objects, "PersistentVolumeClaim")
    volume = one(objects, "PersistentVolume")
    assert (
        next(v for v in spec["volumes"] if v["name"] == "azure-fileshare")["persistentVolumeClaim"][
            "claimName"
        ]
        == claim["metadata"]["name"]
    )
    assert claim["spec"]["volumeName"] == volume["metadata"]["name"]
    for obj in (claim, volume):
        assert obj["spec"]["accessModes"] == ["ReadWriteMany"]
        assert obj["spec"]["storageClassName"] == "azurefile-csi"
    assert (
        volume["spec"]["capacity"]["storage"]
        == claim["spec"]["resources"]["requests"]["storage"]
        == "20Gi"
    )
    assert volume["spec"]["csi"]["driver"] == "file.csi.azure.com"
    assert volume["spec"]["csi"]["nodeStageSecretRef"]["name"] == "azure-storage-account"
    assert "uid=10001" in volume["spec"]["mountOptions"]  # the image's user can write
    assert deployment["spec"]["replicas"] == 1
    assert one(objects, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 5


def test_local_keys_are_digests_the_app_accepts() -> None:
    secret = one(render("overlays/local"), "Secret")
    entries = base64.b64decode(secret["data"]["api-keys"]).decode()
    lines = [line for line in entries.splitlines() if line and not line.startswith("#")]
    assert lines and all(":sha256:" in line for line in lines)
    keys = ApiKeys.from_settings(Settings(_env_file=None, api_keys=tuple(lines)))  # type: ignore[call-arg,arg-type]
    assert sorted(keys.scopes.values()) == ["admin", "score"]


@pytest.mark.parametrize("kustomization", TRAINING)
def test_training_jobs_run_real_cli_commands(
    kustomization: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job,) = by_kind(render(kustomization), "Job")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    context = cli_context([*container["command"], *container["args"]])
    assert context.command.name == "train"
    assert context.params["promote"] is True
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    threads = context.params["nthread"]
    if threads is not None:
        assert threads <= float(container["resources"]["limits"]["cpu"])
    if kustomization == "dask/train":
        assert context.params["dask_scheduler"].startswith("tcp://loanrisk-dask-scheduler.")


def test_the_dask_portfolio_scoring_job_runs_a_real_cli_command() -> None:
    (job,) = by_kind(render("dask/score"), "Job")
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    context = cli_context([*container["command"], *container["args"]])
    assert context.command.name == "predict"
    assert context.params["source"].startswith("s3://") and context.params["source"].endswith(
        ".parquet"
    )
    assert context.params["output"].startswith("s3://")
    assert context.params["dask_scheduler"].startswith("tcp://loanrisk-dask-scheduler.")
    assert spec["serviceAccountName"] == "loanrisk" and job["spec"]["backoffLimit"] == 0
    assert container["image"].split(":")[0].endswith("loanrisk-dask")


@pytest.mark.parametrize("kustomization", DRIFT)
def test_the_daily_monitoring_jobs_run_real_cli_commands(kustomization: str) -> None:
    cronjobs = {c["metadata"]["name"]: c for c in by_kind(render(kustomization), "CronJob")}
    assert set(cronjobs) == {"loanrisk-drift", "loanrisk-backtest", "loanrisk-log-compact"}
    commands = {}
    for name, cronjob in cronjobs.items():
        spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        commands[name] = cli_context([*container["command"], *container["args"]])
        assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["envFrom"] == [{"configMapRef": {"name": "loanrisk-settings"}}]
        if kustomization.endswith("aws/drift"):  # S3 through the IAM role of the account
            assert spec["serviceAccountName"] == "loanrisk"
    drift = commands["loanrisk-drift"]
    assert drift.command.name == "drift"
    assert drift.params["save"] is True and drift.params["model"].endswith("@production")
    assert commands["loanrisk-log-compact"].command.name == "compact"
    backtest = commands["loanrisk-backtest"]
    assert backtest.command.name == "backtest"
    assert backtest.params["save"] is True and backtest.params["model"].endswith("@production")


class _Rule(BaseModel):
    """One rule of a PrometheusRule, as the prometheus-operator CRD defines it (v1)."""

    model_config = ConfigDict(extra="forbid")
    alert: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]
    for_: str | None = Field(None, alias="for", pattern=DURATION)


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    interval: str | None = Field(None, pattern=DURATION)
    rules: list[_Rule]


class _RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[_Group]


def test_the_alerts_are_valid_rules_over_metrics_the_app_exports(tmp_path: Path) -> None:
    (rule,) = render("monitoring")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    # Its metadata is an ObjectMeta: validated as a built-in object's.
    strict({"apiVersion": "v1", "kind": "ConfigMap", "metadata": rule["metadata"]})
    spec = _RuleSpec.model_validate(rule["spec"])
    alerts = {r.alert: r for g in spec.groups for r in g.rules}
    assert set(alerts) == {
        "LoanriskProbabilityDrift",
        "LoanriskFeatureDrift",
        "LoanriskErrorRate",
        "LoanriskScoringLatency",
        "LoanriskTrainingFailed",
        "LoanriskPredictionLogDropping",
        "LoanriskBacktestRed",
        "LoanriskAdverseImpact",
    }
    assert "> 0.25" in alerts["LoanriskProbabilityDrift"].expr
    assert "< 0.8" in alerts["LoanriskAdverseImpact"].expr  # the four-fifths rule
    assert ">= 2" in alerts["LoanriskBacktestRed"].expr  # 2 is red
    assert all(r.labels["severity"] in ("warning", "critical") for r in alerts.values())
    # Every metric an alert reads is one the app exports (a renamed metric breaks this).
    with TestClient(create_app(Settings(storage=str(tmp_path), drift_interval=0))) as client:
        exported = client.get("/metrics").text
    families = set(re.findall(r"^# TYPE (\w+) (\w+)", exported, re.MULTILINE))
    names = {f for f, _ in families} | {f"{f}_total" for f, t in families if t == "counter"}
    names |= {f"{f}_bucket" for f, t in families if t == "histogram"}
    for alert in alerts.values():
        used = set(re.findall(r"\b(loanrisk_\w+)", alert.expr))
        assert used and used <= names, (alert.alert, used - names)


def test_the_dask_cluster_runs_what_the_dask_image_installs() -> None:
    cluster = one(render("dask"), "DaskCluster")
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    assert worker["command"][:2] == ["dask", "worker"]
    assert scheduler["command"] == ["dask", "scheduler"]
    lock = (KUBERNETES.parents[1] / "requirements" / "dask.lock").read_text()
    assert "distributed==" in lock and "dask==" in lock
    assert worker["image"] == scheduler["image"]
    assert cluster["spec"]["worker"]["spec"]["serviceAccountName"] == "loanrisk"


def pod_specs(node: Any) -> list[dict[str, Any]]:
    """Every pod spec (a mapping with ``containers``) inside a manifest object."""
    if isinstance(node, dict):
        found = [node] if isinstance(node.get("containers"), list) else []
        return found + [spec for value in node.values() for spec in pod_specs(value)]
    if isinstance(node, list):
        return [spec for item in node for spec in pod_specs(item)]
    return []


def test_every_loanrisk_workload_runs_as_the_image_test_proved_it_can() -> None:
    """tests/image runs the image as user 10001 and finds nothing writable outside its storage
    and /tmp: so every workload of it runs as that user, on a read-only root, with no
    capabilities, and mounts /tmp. Serving and the monitoring jobs use the serving image
    ``loanrisk``, the training job (which may fit a scorecard's bins) the full image
    ``loanrisk-runtime``, the Dask cluster ``loanrisk-dask``, all at the package's version
    (make image's tags)."""
    import tomllib

    version = tomllib.loads((KUBERNETES.parents[1] / "pyproject.toml").read_text())["project"][
        "version"
    ]
    images: dict[str, str] = {}
    for path in sorted(KUBERNETES.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            for pod in pod_specs(document):
                for container in pod["containers"]:
                    if not container.get("image", "").startswith("loanrisk"):
                        continue  # a sidecar's, or an overlay's patch
                    images[f"{path.relative_to(KUBERNETES)}"] = container["image"]
                    where = f"{path.relative_to(KUBERNETES)}: {container['name']}"
                    security = {**pod.get("securityContext", {}), **container["securityContext"]}
                    assert security["runAsNonRoot"] is True, where
                    assert security["runAsUser"] == 10001, where
                    assert security["readOnlyRootFilesystem"] is True, where
                    assert security["allowPrivilegeEscalation"] is False, where
                    assert security["capabilities"] == {"drop": ["ALL"]}, where
                    mounts = {m["mountPath"] for m in container["volumeMounts"]}
                    assert "/tmp" in mounts, where
    assert set(images.values()) == {
        f"loanrisk:{version}",
        f"loanrisk-runtime:{version}",
        f"loanrisk-dask:{version}",
    }
    serving = ("base/deployment.yaml", "kserve/servingruntime.yaml")
    assert {images[path] for path in serving} == {f"loanrisk:{version}"}
    assert images["jobs/train/job.yaml"] == f"loanrisk-runtime:{version}"


@pytest.mark.parametrize(
    ("overlay", "registry"),
    [
        ("overlays/aws/train", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        ("overlays/azure-sgx/train", "loanriskregistry.azurecr.io"),
    ],
)
def test_a_clouds_training_job_runs_the_full_image_from_its_registry(
    overlay: str, registry: str
) -> None:
    (job,) = by_kind(render(overlay), "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"{registry}/loanrisk-runtime:0.1.0"

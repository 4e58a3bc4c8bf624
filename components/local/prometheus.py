"""A real Prometheus on loopback, set up the way the cluster's is for one serving pod.

The pod's series get the labels the serving PodMonitor copies from its pod (service, replica set,
revision) plus the namespace and pod the Prometheus Operator adds, so the generated queries select
them as in the cluster. The generated PrometheusRules are loaded as rule files: a rule file is a
PrometheusRule's `spec` (its `groups`), which is what the operator writes for Prometheus too.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.manifests.placement import ReplicaSet

PROMETHEUS = Path("/usr/bin/prometheus")
"""Where Debian's `prometheus` package (scripts/install_prometheus.sh) puts the server."""
QUERY_TIMEOUT_S = 30


def prometheus_binary() -> Path | None:
    """The Prometheus server on PATH, else Debian's; None when neither is installed."""
    found = shutil.which("prometheus")
    if found:
        return Path(found)
    return PROMETHEUS if PROMETHEUS.exists() else None


def pod_labels(replica_set: ReplicaSet, ordinal: int = 0) -> dict[str, str]:
    """What the serving PodMonitor (and the operator) put on every series of pod `ordinal` of the set."""
    return {
        "namespace": s.SERVING_NAMESPACE,
        "pod": f"{replica_set.name}-{ordinal}",
        SERVICE_METRIC_LABEL: replica_set.service.name,
        REVISION_METRIC_LABEL: replica_set.revision,
        REPLICA_SET_METRIC_LABEL: replica_set.name,
    }


def write_rule_file(path: Path, groups: list[dict[str, Any]]) -> Path:
    """Rule groups as a Prometheus rule file (JSON, which is YAML), exactly as generated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"groups": groups}, indent=1))
    return path


def write_rule_files(directory: Path, prometheus_rules: list[dict[str, Any]]) -> list[Path]:
    """One rule file per PrometheusRule object, named after it."""
    return [write_rule_file(directory / f"{rule['metadata']['name']}.yml", rule["spec"]["groups"])
            for rule in prometheus_rules]


def write_config(path: Path, *, job: str, target: str, labels: dict[str, str], interval: str,
                 rule_files: list[Path]) -> Path:
    """prometheus.yml (as JSON): one static target `host:port` with the pod's labels, the rule files, and
    one interval for scrapes and rule evaluation."""
    path.write_text(json.dumps({
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(f) for f in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target], "labels": labels}]}],
    }, indent=1))
    return path


def prometheus_argv(binary: Path, *, config: Path, data: Path, address: str) -> list[str]:
    """The server on `address` (host:port), its TSDB in `data`."""
    return [str(binary), f"--config.file={config}", f"--storage.tsdb.path={data}", f"--web.listen-address={address}"]


def api_get(url: str, path: str, params: dict[str, str] | None = None) -> Any:
    """The `data` of a Prometheus HTTP API answer; ValueError with Prometheus' message on an error answer."""
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    try:
        with urllib.request.urlopen(f"{url}{path}{query}", timeout=QUERY_TIMEOUT_S) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as error:  # 400/422 carry the reason as JSON
        answer = json.load(error)
    if answer.get("status") != "success":
        raise ValueError(f"{path}: {answer.get('errorType')}: {answer.get('error')}")
    return answer["data"]


def ui_base(url: str) -> str:
    """Where the web UI's pages are: `/` redirects to its graph page, `/graph` upstream but `/classic/graph` in
    Debian's build (it ships only the classic UI, so `/targets` is a 404 there). Falls back to `url/`."""
    try:
        with urllib.request.urlopen(f"{url}/", timeout=QUERY_TIMEOUT_S) as response:
            landed = response.url
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return f"{url}/"
    return landed.removesuffix("graph") if landed.endswith("/graph") else f"{url}/"


def graph_url(ui: str, expr: str) -> str:
    """A link that opens `expr` in the web UI whose pages are under `ui` (see `ui_base`)."""
    return f"{ui}graph?{urllib.parse.urlencode({'g0.expr': expr, 'g0.tab': '0'})}"

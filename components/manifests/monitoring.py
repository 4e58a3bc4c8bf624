"""How Prometheus finds the serving pods: one PodMonitor per engine that exposes Prometheus metrics,
copying the pods' service and replica-set labels onto every series. The autoscaling queries and the
observability work select on those labels."""

from __future__ import annotations

from typing import Any

from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL

METRICS_PORTS = {"vllm": "http", "triton": "metrics"}
"""Engine -> the container port name its /metrics is on (vLLM serves it beside the API; Triton on 8002)."""
SCRAPE_INTERVAL = "15s"


def _label(pod_label: str) -> str:
    """Prometheus' service-discovery name of a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


def pod_monitor(engine: str) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": s.metadata(f"{engine}-engines", {"app.kubernetes.io/part-of": s.PART_OF}),
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/component": engine, "app.kubernetes.io/part-of": s.PART_OF}},
            "podMetricsEndpoints": [
                {
                    "port": METRICS_PORTS[engine],
                    "path": "/metrics",
                    "interval": SCRAPE_INTERVAL,
                    "relabelings": [
                        {"sourceLabels": [_label(s.SERVICE_LABEL)], "targetLabel": SERVICE_METRIC_LABEL},
                        {"sourceLabels": [_label(s.REPLICA_SET_LABEL)], "targetLabel": REPLICA_SET_METRIC_LABEL},
                        {"sourceLabels": [_label(s.REVISION_LABEL)], "targetLabel": REVISION_METRIC_LABEL},
                    ],
                }
            ],
        },
    }

"""How Prometheus finds the serving pods: one PodMonitor per engine that exposes Prometheus metrics,
copying the pods' service and replica-set labels onto every series. The autoscaling queries and the
observability work select on those labels.

Also the names the metrics stack and the engines must agree on: the monitoring namespace, the Grafana
dashboard label, the Prometheus volume's StorageClass and the OpenTelemetry collector's OTLP endpoints."""

from __future__ import annotations

from typing import Any

from components.catalog import Catalog
from components.manifests import metric_names as m
from components.manifests import serving as s
from components.manifests.autoscaling import REPLICA_SET_METRIC_LABEL, REVISION_METRIC_LABEL, SERVICE_METRIC_LABEL
from components.spec.models import ServiceSpec

METRICS_PORTS = {"vllm": "http", "triton": "metrics", "ray-serve": "metrics"}
"""Engine -> the container port name its /metrics is on (vLLM serves it beside the API; Triton on 8002;
Ray's metrics agent on 8080, a port named `metrics` on the head here and one KubeRay adds to every
worker, so one PodMonitor covers the head and all worker groups)."""
SCRAPE_INTERVAL = "15s"

MONITORING_NAMESPACE = "monitoring"
"""Where the metrics stack and the collector run (charts.yaml's namespace for them; a test keeps the two equal)."""
GRAFANA_DASHBOARD_LABEL = "grafana_dashboard"
GRAFANA_DASHBOARD_LABEL_VALUE = "1"
"""Grafana's sidecar loads every ConfigMap carrying this label, in any namespace."""
GRAFANA_DATASOURCE_UID = "prometheus"
"""The uid of the Prometheus datasource kube-prometheus-stack provisions in Grafana."""

PROMETHEUS_STORAGE_CLASS = "inferfleet-gp3"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"

OTEL_COLLECTOR_SERVICE = "opentelemetry-collector"
"""The collector's Service name (the chart's fullname, pinned by fullnameOverride)."""
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
OTLP_TRACES_GRPC_ENDPOINT = f"http://{OTEL_COLLECTOR_SERVICE}.{MONITORING_NAMESPACE}.svc:{OTLP_GRPC_PORT}"
"""vLLM's `--otlp-traces-endpoint`: its exporter speaks OTLP over gRPC; `http://` means no TLS in-cluster."""
OTLP_TRACES_HTTP_ENDPOINT = f"http://{OTEL_COLLECTOR_SERVICE}.{MONITORING_NAMESPACE}.svc:{OTLP_HTTP_PORT}" + "/v1/traces"
"""Triton's OpenTelemetry tracer exports OTLP over HTTP to a full traces URL."""
TRITON_TRACE_RATE = 100
"""Triton traces one request in this many: every request would cost latency and collector load."""


def _label(pod_label: str) -> str:
    """Prometheus' service-discovery name of a pod label."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)


def llm_metrics(service: ServiceSpec, catalog: Catalog) -> m.LlmMetrics | None:
    """The vLLM series the service's pods expose, by how they serve the model; None for a Triton model
    on a backend other than vLLM (an encoder), which reports only Triton's own counters."""
    if service.engine == "vllm":
        return m.VLLM_SERVER
    if service.engine == "ray-serve":
        return m.RAY_SERVE_LLM
    architecture = catalog.architecture_for(service.model)
    if architecture is not None and service.triton_backend(architecture.kind) == "vllm":
        return m.TRITON_VLLM_BACKEND
    return None


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


def prometheus_storage_class() -> dict[str, Any]:
    """An encrypted gp3 class through the EBS CSI driver for Prometheus' volume. EKS clusters of 1.30 and
    later mark no StorageClass default and their `gp2` uses the in-tree name, so the volume names its own
    class. Bound where the pod lands (EBS volumes are zonal); expandable, so storageGiB can grow."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": PROMETHEUS_STORAGE_CLASS, "labels": {"app.kubernetes.io/part-of": s.PART_OF}},
        "provisioner": EBS_CSI_PROVISIONER,
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
        "reclaimPolicy": "Delete",
    }


def vllm_trace_arguments() -> dict[str, str]:
    """vLLM engine arguments (dashed, without `--`) that send its request spans to the collector."""
    return {"otlp-traces-endpoint": OTLP_TRACES_GRPC_ENDPOINT}


def triton_trace_arguments(service_name: str) -> list[str]:
    """tritonserver flags that turn on OpenTelemetry tracing of sampled requests to the collector,
    spans named for the service."""
    return [
        "--trace-config=mode=opentelemetry",
        f"--trace-config=rate={TRITON_TRACE_RATE}",
        "--trace-config=level=TIMESTAMPS",
        f"--trace-config=opentelemetry,url={OTLP_TRACES_HTTP_ENDPOINT}",
        f"--trace-config=opentelemetry,resource=service.name={service_name}",
    ]

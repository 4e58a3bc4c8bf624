"""Scraping and tracing objects: the engines' PodMonitors (Ray's included) pass the vendored CRD and select
the pods the engine manifests label; the Prometheus StorageClass passes Kubernetes' schema; the trace
flags are ones the pinned engines take; the names the metrics stack and the engines share agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.kubernetes.addons import OTEL_COLLECTOR, PROMETHEUS_STACK, otel_collector_values
from components.spec.models import ObservabilitySpec
from components.kubernetes.charts import chart
from components.manifests import ray_serve
from components.manifests.autoscaling import PROMETHEUS_URL
from components.manifests.monitoring import (
    METRICS_PORTS,
    MONITORING_NAMESPACE,
    OTEL_COLLECTOR_SERVICE,
    OTLP_TRACES_GRPC_ENDPOINT,
    OTLP_TRACES_HTTP_ENDPOINT,
    pod_monitor,
    prometheus_storage_class,
    triton_trace_arguments,
    vllm_trace_arguments,
)
from components.manifests.stack import shared_objects
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.validators import validate_object

VLLM_OPTIONS = Path(__file__).resolve().parents[2] / "components" / "catalog" / "data" / "vllm_options.json"


@pytest.mark.parametrize("engine", sorted(METRICS_PORTS))
def test_every_engine_pod_monitor_passes_the_crd(engine):
    validate_object(pod_monitor(engine), KUBERNETES_VERSION)


def test_ray_pod_monitor_scrapes_the_metrics_port_of_head_and_workers(prod, catalog):
    spec, _ = prod
    (service,) = [s for s in spec.services if s.engine == "ray-serve"]
    monitor = pod_monitor("ray-serve")
    selector = monitor["spec"]["selector"]["matchLabels"]
    head = ray_serve.head_group(service, catalog)
    assert selector.items() <= head["template"]["metadata"]["labels"].items()
    assert {"name": "metrics", "containerPort": 8080} in head["template"]["spec"]["containers"][0]["ports"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "metrics"


def test_shared_objects_carry_a_pod_monitor_per_engine_in_use(planned):
    spec, _ = planned
    monitors = {obj["metadata"]["name"] for obj in shared_objects(spec) if obj["kind"] == "PodMonitor"}
    assert monitors == {f"{service.engine}-engines" for service in spec.services}


def test_prometheus_storage_class_passes_kubernetes_schema():
    storage_class = prometheus_storage_class()
    validate_object(storage_class, KUBERNETES_VERSION)
    assert storage_class["parameters"]["type"] == "gp3"


def test_vllm_trace_flag_is_an_option_of_the_pinned_vllm():
    options = json.loads(VLLM_OPTIONS.read_text())["options"]
    for flag, endpoint in vllm_trace_arguments().items():
        assert f"--{flag}" in options
        assert endpoint == OTLP_TRACES_GRPC_ENDPOINT


def test_triton_traces_sampled_requests_over_otlp_http():
    flags = triton_trace_arguments("reranker")
    assert all(flag.startswith("--trace-config=") for flag in flags)
    assert "--trace-config=mode=opentelemetry" in flags
    assert f"--trace-config=opentelemetry,url={OTLP_TRACES_HTTP_ENDPOINT}" in flags
    assert "--trace-config=opentelemetry,resource=service.name=reranker" in flags
    assert OTLP_TRACES_HTTP_ENDPOINT.endswith(":4318/v1/traces")


def test_the_metrics_stack_the_collector_and_their_clients_agree_on_names():
    assert chart(PROMETHEUS_STACK).namespace == MONITORING_NAMESPACE
    assert chart(OTEL_COLLECTOR).namespace == MONITORING_NAMESPACE
    assert f".{MONITORING_NAMESPACE}.svc" in PROMETHEUS_URL
    assert otel_collector_values(ObservabilitySpec())["fullnameOverride"] == OTEL_COLLECTOR_SERVICE
    for endpoint in (OTLP_TRACES_GRPC_ENDPOINT, OTLP_TRACES_HTTP_ENDPOINT):
        assert endpoint.startswith(f"http://{OTEL_COLLECTOR_SERVICE}.{MONITORING_NAMESPACE}.svc:")

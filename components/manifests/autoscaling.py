"""KEDA ScaledObjects for the burst replica sets, on the engines' own load signals.

The burst set's replica count is the load above what the floor absorbs, in replicas:
    ceil(max(0, load - floor_replicas x per_replica_target) / per_replica_target)
where load is requests running plus waiting (vLLM, and Triton's vLLM backend) or pending (Triton) over the service's stable revision
(the canary and shadow are fixed-size and not counted). Counting
waiting requests makes a queue scale the service out; counting running ones keeps the count steady once
the queue has drained (a queue-only signal scales in as soon as it has scaled out). A burst set of
another GPU shape (the fallback) scales only while the set before it has pods it cannot place; without a
floor it also wakes from zero on the gateway's unroutable requests only while that set cannot place pods.

Ray Serve scales itself (Serve autoscaling on ongoing requests per replica, the Ray autoscaler for the
worker pods), so it gets no ScaledObject: two autoscalers on one workload would fight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog
from components.manifests import metric_names as m
from components.manifests import serving as s
from components.manifests.placement import ReplicaSet
from components.spec.models import ServiceSpec

PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
"""The Prometheus the metrics stack runs (the operator's governing Service of its Prometheus)."""
SERVICE_METRIC_LABEL = "inferfleet_service"
REPLICA_SET_METRIC_LABEL = "inferfleet_replica_set"
REVISION_METRIC_LABEL = "inferfleet_revision"
"""Target labels the serving PodMonitor copies from the pods' labels (components/manifests/monitoring.py)."""
POLLING_SECONDS = 15
COOLDOWN_SECONDS = 600
SCALE_DOWN_WINDOW_SECONDS = 600
"""A GPU replica takes minutes to start; hold capacity ten minutes after load falls before releasing it."""
SCALE_DOWN_PODS_PER_MINUTES = (1, 2)
"""Scale in one replica every two minutes at most."""


@dataclass(frozen=True)
class LoadSignal:
    """A PromQL expression of a service's load and the load one replica is sized to carry."""

    expression: str
    per_replica: int


def load_signal(replica_set: ReplicaSet, catalog: Catalog) -> LoadSignal | None:
    """vLLM's running plus waiting requests (also for Triton's vLLM backend, which reports vLLM's own
    gauges and hands every request straight to it), Triton's pending requests for batched backends."""
    service = replica_set.service
    selector = (
        f'{{namespace="{s.SERVING_NAMESPACE}",{SERVICE_METRIC_LABEL}="{service.name}",{REVISION_METRIC_LABEL}="stable"}}'
    )
    if service.engine == "vllm" or (service.engine == "triton" and _triton_backend(service, catalog) == "vllm"):
        expression = f"sum({m.VLLM_NUM_REQUESTS_RUNNING}{selector}) + sum({m.VLLM_NUM_REQUESTS_WAITING}{selector})"
        return LoadSignal(expression, max(1, replica_set.plan.planned_concurrency))
    if service.engine == "triton":
        batch = service.triton.max_batch_size if service.triton else 32
        return LoadSignal(f"sum({m.TRITON_PENDING_REQUESTS}{selector})", batch)
    return None


def _triton_backend(service: ServiceSpec, catalog: Catalog) -> str:
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    return service.triton_backend(architecture.kind)


def _pending_pods(replica_set_name: str) -> str:
    """Pods of that replica set the scheduler cannot place (no node with room, no node to add)."""
    return (
        f'sum(kube_pod_status_phase{{namespace="{s.SERVING_NAMESPACE}",phase="Pending",'
        f'pod=~"{replica_set_name}-[a-z0-9]+-[a-z0-9]+|{replica_set_name}-[0-9]+(-[0-9]+)?"}}) > 0'
    )


def burst_query(replica_set: ReplicaSet, floor_replicas: int, catalog: Catalog) -> tuple[str, int]:
    """The query whose value, divided by the returned per-replica target, is the set's replica count."""
    signal = load_signal(replica_set, catalog)
    assert signal is not None and replica_set.role == "burst"
    above_floor = f"clamp_min(({signal.expression}) - {floor_replicas * signal.per_replica}, 0)"
    if replica_set.fallback_of:
        above_floor = f"({above_floor}) and on() ({_pending_pods(replica_set.fallback_of)})"
    return above_floor, signal.per_replica


def wake_query(replica_set: ReplicaSet) -> str:
    """At zero replicas no engine reports load: requests the gateway could not route to the service
    (Envoy's `upstream_cx_none_healthy`) wake it. Those first requests get 503 while a node starts. They
    wake a fallback too, but only while the set before it has pods it cannot place: while none of the
    service's replicas runs, the fallback's load signal is empty and could never start it."""
    cluster = f"httproute/{s.SERVING_NAMESPACE}/{replica_set.service.name}/.*"
    query = f'sum(rate(envoy_cluster_upstream_cx_none_healthy{{envoy_cluster_name=~"{cluster}"}}[2m]))'
    if replica_set.fallback_of:
        query = f"({query}) and on() ({_pending_pods(replica_set.fallback_of)})"
    return query


def _prometheus_trigger(name: str, query: str, threshold: int) -> dict[str, Any]:
    return {
        "type": "prometheus",
        "name": name,
        "metricType": "AverageValue",
        "metadata": {
            "serverAddress": PROMETHEUS_URL,
            "query": query,
            "threshold": str(threshold),
            "activationThreshold": "0",
        },
    }


def scaled_object(
    replica_set: ReplicaSet, target: dict[str, str], floor_replicas: int, catalog: Catalog
) -> dict[str, Any]:
    """KEDA scales `target` (the set's Deployment or LeaderWorkerSet) between its bounds. It alone owns the
    count: the target has no `spec.replicas` (serving.replica_count), and `minReplicaCount` is what holds
    the set at its minimum, from creation on."""
    query, per_replica = burst_query(replica_set, floor_replicas, catalog)
    pods, minutes = SCALE_DOWN_PODS_PER_MINUTES
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": s.metadata(replica_set.name, s.replica_set_labels(replica_set)),
        "spec": {
            "scaleTargetRef": {"apiVersion": target["apiVersion"], "kind": target["kind"], "name": replica_set.name},
            "minReplicaCount": replica_set.replicas_min,
            "maxReplicaCount": replica_set.replicas_max,
            "pollingInterval": POLLING_SECONDS,
            "cooldownPeriod": COOLDOWN_SECONDS,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleDown": {
                            "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_SECONDS,
                            "policies": [{"type": "Pods", "value": pods, "periodSeconds": minutes * 60}],
                        }
                    }
                }
            },
            "triggers": [_prometheus_trigger("load", query, per_replica)]
            + ([_prometheus_trigger("wake", wake_query(replica_set), 1)] if floor_replicas == 0 else []),
        },
    }

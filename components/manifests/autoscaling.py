"""KEDA ScaledObjects for the burst replica sets, on the engines' own load signals.

The first burst set's replica count is the load above what the floor absorbs, in replicas:
    ceil(max(0, load - floor_replicas x per_replica_target) / per_replica_target)
where load is requests running plus waiting (vLLM, and Triton's vLLM backend) or pending (Triton) over the service's stable revision
(the canary and shadow are fixed-size and not counted). Counting
waiting requests makes a queue scale the service out; counting running ones keeps the count steady once
the queue has drained (a queue-only signal scales in as soon as it has scaled out).

A later burst set of the chain (components/manifests/placement.py; another GPU shape, or the on-demand
pools after the spot ones) is the fallback of the set before it and does not read the load: its replica
count is the number of that set's replicas that Cluster Autoscaler could not place for
FALLBACK_AFTER_SECONDS (kube-state-metrics: pods whose PodScheduled condition is false, created that long
ago), one for one. So the chain runs no more than the first set's count in all (that count less what
the last set cannot place either), within the burst budget; and a fallback's replicas do not shrink the
count that starts them: the load they serve is still the load the first set is sized on, and its unplaced
pods stay pending until a node of its own pools takes them. The fallback then scales in at the burst's
pace (SCALE_DOWN_WINDOW_SECONDS, KEDA's cooldown to zero), so for those minutes the chain runs more than
the first set's count: the newly placed replicas are still loading their model. The count is there
whether or not any of the service's replicas runs, so a fallback of a service without a floor starts
from zero on it too.

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
FALLBACK_AFTER_SECONDS = 300
"""How long a replica of the set before a fallback stays unplaced before the fallback runs one for it: long
enough for Cluster Autoscaler to have tried that set's own pools. CA looks for unschedulable pods every
10 s (`--scan-interval`) and asks the pool's Auto Scaling group for a node; a spot launch AWS cannot fill
fails in the group's activities within a minute or two, which CA reads as an out-of-capacity error: it
drops the request and backs the group off (`--initial-node-group-backoff-duration`, 5 min) instead of
waiting out `--max-node-provision-time` (15 min, for nodes that launch and never join). Five minutes
covers that attempt and most healthy GPU node starts (the pod is unscheduled until its node has joined
and advertises its GPUs); a slower healthy start costs at most a fallback replica held until the scale-in
window releases it. The delay adds up along a chain: prod's chat reaches its fourth set (on-demand) no
sooner than three delays after its first set asked for a spot node."""


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


def _pod_pattern(replica_set: ReplicaSet) -> str:
    """The names of the set's pods, as a PromQL regex (anchored). A Deployment's pods are
    `<set>-<pod-template-hash>-<5 random characters>`; a LeaderWorkerSet's (a replica wider than a node)
    are `<set>-<group>` (the leader) and `<set>-<group>-<index>` (its workers). The fixed five characters
    keep a Deployment's pattern off the pods of the sets named `<set>-<n>` after it. A LeaderWorkerSet's
    cannot tell its group 2's worker 1 from the leader of group 1 of a LeaderWorkerSet `<set>-2` (names
    alone cannot: the two would also share the StatefulSet name `<set>-2`); kube-state-metrics copies no
    replica-set label to pod series here (KUBE_STATE_METRICS_LABELS in components/kubernetes/addons.py)."""
    if replica_set.plan.nodes_per_replica > 1:
        return f"{replica_set.name}-[0-9]+(-[0-9]+)?"
    return f"{replica_set.name}-[a-z0-9]+-[a-z0-9]{{5}}"


def unplaced_query(previous: ReplicaSet) -> str:
    """The number of `previous`'s replicas not placed for FALLBACK_AFTER_SECONDS: its pods the scheduler
    has tried and could not place (no node with room, none added), created that long ago; the pods of
    one LeaderWorkerSet group count once. 0 when there are none, so the query always has a value."""
    selector = f'namespace="{s.SERVING_NAMESPACE}",pod=~"{_pod_pattern(previous)}"'
    unscheduled = f'max by (namespace, pod) ({m.KUBE_POD_SCHEDULED}{{{selector},condition="false"}}) == 1'
    created = f"max by (namespace, pod) ({m.KUBE_POD_CREATED}{{{selector}}})"
    waiting = f"({unscheduled}) and on(namespace, pod) ((time() - {created}) > {FALLBACK_AFTER_SECONDS})"
    if previous.plan.nodes_per_replica > 1:
        group = f'label_replace({waiting}, "group", "$1", "pod", "{previous.name}-([0-9]+)(-[0-9]+)?")'
        waiting = f"count by (group) ({group})"
    return f"count({waiting}) or vector(0)"


def burst_query(replica_set: ReplicaSet, floor_replicas: int, catalog: Catalog) -> tuple[str, int]:
    """The query whose value, divided by the returned per-replica target, is the first burst set's replica
    count: the load above what the floor carries."""
    signal = load_signal(replica_set, catalog)
    assert signal is not None and replica_set.role == "burst"
    return f"clamp_min(({signal.expression}) - {floor_replicas * signal.per_replica}, 0)", signal.per_replica


def wake_query(replica_set: ReplicaSet) -> str:
    """At zero replicas no engine reports load: requests the gateway could not route to the service
    (Envoy's `upstream_cx_none_healthy`) wake it. Those first requests get 503 while a node starts."""
    cluster = f"httproute/{s.SERVING_NAMESPACE}/{replica_set.service.name}/.*"
    return f'sum(rate(envoy_cluster_upstream_cx_none_healthy{{envoy_cluster_name=~"{cluster}"}}[2m]))'


def triggers(replica_set: ReplicaSet, floor_replicas: int, catalog: Catalog,
             previous: ReplicaSet | None = None) -> list[dict[str, Any]]:
    """A fallback's: one replica per replica of `previous` (the set it falls back from) left unplaced. The
    chain's first set's: its load above the floor, and without a floor the gateway's wake signal."""
    if replica_set.fallback_of is not None:
        assert previous is not None and previous.name == replica_set.fallback_of, replica_set.name
        return [_prometheus_trigger("unplaced", unplaced_query(previous), 1)]
    query, per_replica = burst_query(replica_set, floor_replicas, catalog)
    wake = [_prometheus_trigger("wake", wake_query(replica_set), 1)] if floor_replicas == 0 else []
    return [_prometheus_trigger("load", query, per_replica), *wake]


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
    replica_set: ReplicaSet, target: dict[str, str], floor_replicas: int, catalog: Catalog,
    previous: ReplicaSet | None = None,
) -> dict[str, Any]:
    """KEDA scales `target` (the set's Deployment or LeaderWorkerSet) between its bounds. It alone owns the
    count: the target has no `spec.replicas` (serving.replica_count), and `minReplicaCount` is what holds
    the set at its minimum, from creation on. `previous`: the set a fallback falls back from."""
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
            "triggers": triggers(replica_set, floor_replicas, catalog, previous),
        },
    }

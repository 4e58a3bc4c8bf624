"""Warm GPU headroom: placeholder pods that hold GPUs on joined nodes until a real replica needs them.

The placeholders run under a PriorityClass below every real workload, so the scheduler preempts them
the moment a serving pod is pending and that pod starts on a node that is already up. The evicted
placeholders go pending in turn, and Cluster Autoscaler grows the pool to place them again: the
headroom is restored in the background instead of the next replica waiting for a node. They never
preempt anything themselves (`preemptionPolicy: Never`). Priority -10 is also Cluster Autoscaler's
default `--expendable-pods-priority-cutoff`, the lowest priority it still scales up for.
"""

from __future__ import annotations

import math
from typing import Any

from components.manifests.scheduling import pool_labels, pool_taints
from components.spec.models import GpuPoolSpec, StackSpec

NAMESPACE = "inferfleet-system"
PRIORITY_CLASS = "inferfleet-headroom"
PRIORITY = -10
GPU_RESOURCE = "nvidia.com/gpu"
PAUSE_IMAGE = (
    "registry.k8s.io/pause:3.10"
    "@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a"
)
"""Tag and digest: the digest is the one public manifests pin for pause:3.10 (e.g. Cilium's Dockerfile)."""
PAUSE_USER = 65535
"""The pause image's own non-root user."""
POD_RESOURCES = {"cpu": "10m", "memory": "16Mi"}
COMPONENT_LABELS = {"app.kubernetes.io/name": "inferfleet-headroom", "app.kubernetes.io/part-of": "inferfleet"}


def headroom_pods(headroom_gpus: int, gpus_per_node: int) -> tuple[int, int]:
    """(replicas, GPUs per pod): each pod asks for at most one node's GPUs, so every placeholder fits
    on one node, and there are enough of them to cover the headroom (rounded up to whole pods)."""
    if headroom_gpus < 1 or gpus_per_node < 1:
        raise ValueError("headroom_pods: headroom_gpus and gpus_per_node must be positive")
    per_pod = min(headroom_gpus, gpus_per_node)
    return math.ceil(headroom_gpus / per_pod), per_pod


def priority_class() -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": PRIORITY_CLASS, "labels": dict(COMPONENT_LABELS)},
        "value": PRIORITY,
        "globalDefault": False,
        "preemptionPolicy": "Never",
        "description": "GPU headroom placeholders: preempted by any real workload, never preempting one.",
    }


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            "labels": {**COMPONENT_LABELS, "pod-security.kubernetes.io/enforce": "restricted"},
        },
    }


def headroom_deployment(pool: GpuPoolSpec, gpus_per_node: int) -> dict[str, Any]:
    """The placeholders of one pool, pinned to it with the same labels and taints its nodes carry."""
    replicas, per_pod = headroom_pods(pool.headroom_gpus, gpus_per_node)
    selector = {**COMPONENT_LABELS, "inferfleet.io/headroom-pool": pool.name}
    resources = {**POD_RESOURCES, GPU_RESOURCE: str(per_pod)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"headroom-{pool.name}", "namespace": NAMESPACE, "labels": dict(selector)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(selector)},
            "template": {
                "metadata": {"labels": dict(selector)},
                "spec": {
                    "priorityClassName": PRIORITY_CLASS,
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "nodeSelector": pool_labels(pool),
                    "tolerations": [taint.toleration() for taint in pool_taints(pool)],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PAUSE_USER,
                        "runAsGroup": PAUSE_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "pause",
                            "image": PAUSE_IMAGE,
                            "resources": {"requests": dict(resources), "limits": dict(resources)},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def headroom_objects(spec: StackSpec, gpus_per_node: dict[str, int]) -> list[dict[str, Any]]:
    """Namespace, PriorityClass and one Deployment per pool with `headroomGpus > 0`; nothing at all
    when no pool asks for headroom."""
    pools = [pool for pool in spec.gpu_pools if pool.headroom_gpus > 0]
    if not pools:
        return []
    missing = [pool.name for pool in pools if pool.name not in gpus_per_node]
    if missing:
        raise ValueError(f"gpus_per_node: no GPU count for pools {missing}")
    return [namespace(), priority_class(), *(headroom_deployment(pool, gpus_per_node[pool.name]) for pool in pools)]

"""Cluster Autoscaler's configuration from the spec: which GPU pool it grows first, and its Helm values.

The priority expander picks, among the node groups that could hold a pending pod, the one whose name
matches the highest priority. The priorities come from the services' own pool preference, so the
autoscaler grows the pool a service asked for first rather than a random one.
"""

from __future__ import annotations

import re
from typing import Any

from components.manifests.scheduling import system_node_selector
from components.spec.models import StackSpec

SERVICE_ACCOUNT = "cluster-autoscaler"
PRIORITY_STEP = 10
"""Gap between two priority levels, so a hand edit can slot a group between two generated ones."""
SCALE_DOWN_DELAY_AFTER_ADD = "10m"
"""GPU nodes take minutes to join and load weights; do not remove capacity just added."""
_CAPACITY_ORDER = {"spot": 0, "onDemand": 1}


def _best_position(spec: StackSpec) -> dict[str, int]:
    """For each pool, the earliest position any service gives it in its `pools` list (0 = first choice)."""
    best: dict[str, int] = {}
    for service in spec.services:
        for position, pool in enumerate(service.pools):
            best[pool] = min(position, best.get(pool, position))
    return best


def priority_expander_priorities(spec: StackSpec, asg_name_of: dict[str, str]) -> dict[int, list[str]]:
    """The priority expander's `priorities` map (higher number = grown first).

    Rule: every spot pool ranks above every on-demand pool (spot first, on-demand fallback). Within
    one capacity type, a pool ranks by the best position any service gives it in its `pools` list:
    a pool some service names first beats one that is only ever a second choice; pools no service
    names come last. Pools with the same capacity type and best position share a level, so the
    expander picks among them at random. Levels are PRIORITY_STEP apart, the lowest at PRIORITY_STEP.

    Values are anchored, escaped regexes of the pools' Auto Scaling group names.
    """
    missing = [pool.name for pool in spec.gpu_pools if pool.name not in asg_name_of]
    if missing:
        raise ValueError(f"asg_name_of: no Auto Scaling group name for pools {missing}")
    best = _best_position(spec)
    unnamed = max(best.values(), default=0) + 1
    tiers: dict[tuple[int, int], list[str]] = {}
    for pool in spec.gpu_pools:
        key = (_CAPACITY_ORDER[pool.capacity_type], best.get(pool.name, unnamed))
        tiers.setdefault(key, []).append(f"^{re.escape(asg_name_of[pool.name])}$")
    ordered = sorted(tiers)
    return {PRIORITY_STEP * (len(ordered) - index): tiers[key] for index, key in enumerate(ordered)}


def cluster_autoscaler_values(
    cluster_name: str, region: str, role_arn: str, priorities: dict[int, list[str]]
) -> dict[str, Any]:
    """Helm values of the kubernetes/autoscaler `cluster-autoscaler` chart: auto-discovery of the
    cluster's tagged groups, IRSA, the priority expander, and the pod on the system pool."""
    return {
        "cloudProvider": "aws",
        "awsRegion": region,
        "autoDiscovery": {"clusterName": cluster_name},
        "rbac": {
            "serviceAccount": {
                "create": True,
                "name": SERVICE_ACCOUNT,
                "annotations": {"eks.amazonaws.com/role-arn": role_arn},
            }
        },
        "extraArgs": {
            "expander": "priority",
            "balance-similar-node-groups": True,
            "skip-nodes-with-system-pods": False,
            "scale-down-delay-after-add": SCALE_DOWN_DELAY_AFTER_ADD,
        },
        # The chart writes this map into the priority expander's ConfigMap; its keys must be strings.
        "expanderPriorities": {str(priority): patterns for priority, patterns in sorted(priorities.items())},
        "nodeSelector": system_node_selector(),
        "priorityClassName": "system-cluster-critical",
    }

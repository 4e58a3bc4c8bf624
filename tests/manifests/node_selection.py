"""Whether a pod's node selection admits a node with given labels, as kube-scheduler's NodeAffinity filter
judges it: every `nodeSelector` pair, and one of the required affinity's `nodeSelectorTerms` whose
expressions all hold (k8s.io/component-helpers/scheduling/corev1/nodeaffinity). Labels only: taints and
resources are the schedulability check's."""

from __future__ import annotations

from typing import Any


def _expression_holds(expression: dict[str, Any], labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator in ("Gt", "Lt"):
        if key not in labels:
            return False
        value, bound = int(labels[key]), int(values[0])
        return value > bound if operator == "Gt" else value < bound
    raise ValueError(f"unknown node selector operator {operator}")


def admits(pod_spec: dict[str, Any], labels: dict[str, str]) -> bool:
    """True when a node with these labels passes the pod's nodeSelector and required node affinity."""
    if any(labels.get(key) != value for key, value in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    )
    if not required:
        return True
    return any(_term_holds(term, labels) for term in required["nodeSelectorTerms"])


def _term_holds(term: dict[str, Any], labels: dict[str, str]) -> bool:
    """An empty term matches no node (the NodeSelectorTerm API documentation)."""
    expressions = term.get("matchExpressions") or []
    return bool(expressions) and all(_expression_holds(e, labels) for e in expressions)

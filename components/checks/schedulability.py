"""Every pod template the program applies fits at least one node shape the program creates.

A template that fits no shape stays Pending for ever: Cluster Autoscaler will not scale a group whose node
template would refuse it either, so nothing ever comes. Each template is judged against each shape
(components.checks.node_shapes) with kube-scheduler's filters, in the order the default profile runs them
(k8s.io/kubernetes pkg/scheduler/apis/config/v1/default_plugins.go), and the first that refuses is named:

- TaintToleration: every NoSchedule and NoExecute taint must be tolerated (PreferNoSchedule only scores);
  a toleration matches as k8s.io/api/core/v1 toleration.go `ToleratesTaint` decides.
- NodeAffinity: `nodeSelector` (every pair equal) and the required node affinity, as
  k8s.io/component-helpers/scheduling/corev1/nodeaffinity decides: terms ORed, expressions ANDed,
  `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt` with labels.Requirement's semantics.
- NodeResourcesFit: the pod's requests (k8s.io/component-helpers/resource `PodRequests`) within the
  shape's allocatable for cpu, memory and nvidia.com/gpu.

Templates: Deployments, StatefulSets, ReplicaSets, Jobs, CronJobs, bare Pods, RayService / RayCluster head
and worker groups, LeaderWorkerSet leader and worker templates. A DaemonSet's pods go to every node its
selector and tolerations admit, so it must fit every such shape, and admit at least one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.catalog import Catalog
from components.checks import Problem
from components.checks.node_shapes import CHECK, NodeShape, node_shapes
from components.checks.quantities import format_bytes, format_cpu, parse_quantity
from components.manifests.scheduling import Taint
from components.manifests.serving import GPU_RESOURCE

CHECKED_RESOURCES = ("cpu", "memory", GPU_RESOURCE)
"""The resources whose allocatable the shapes know; others (ephemeral-storage, hugepages) are not judged."""
ENFORCED_EFFECTS = ("NoSchedule", "NoExecute")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
NO_SHAPES = "the program creates no node group"
POD_LEVEL_RESOURCES = ("cpu", "memory")
"""What pod-level `spec.resources` may set (PodLevelResources, beta and on by default since 1.34)."""
SIDECAR_RESTART_POLICY = "Always"
"""An init container with `restartPolicy: Always` is a sidecar: it keeps running beside the containers."""


@dataclass(frozen=True)
class PodTemplate:
    subject: str
    """The object and the template, e.g. `RayService inferfleet-serving/rag head`."""
    spec: Mapping[str, Any]
    every_admitting_shape: bool = False
    """DaemonSet: must fit every shape whose taints and affinity admit it."""


def check(resources: Sequence[dict[str, Any]], manifests: Sequence[dict[str, Any]], catalog: Catalog) -> list[Problem]:
    """The problems of the node shapes themselves, then one per pod template that no shape takes."""
    shapes, problems = node_shapes(resources, catalog)
    for template in pod_templates(manifests):
        try:
            problems += _template_problems(template, shapes)
        except ValueError as error:  # a quantity the API server would refuse too
            problems.append(Problem(CHECK, template.subject, f"unreadable resources: {error}"))
    return problems


def _template_problems(template: PodTemplate, shapes: Sequence[NodeShape]) -> list[Problem]:
    if template.every_admitting_shape:
        return _daemon_set_problems(template, shapes)
    verdicts = [(shape, refusal(template.spec, shape)) for shape in shapes]
    if any(reason is None for _, reason in verdicts):
        return []
    detail = "; ".join(f"{shape.name}: {reason}" for shape, reason in verdicts) or NO_SHAPES
    return [Problem(CHECK, template.subject, f"fits no node shape: {detail}")]


def _daemon_set_problems(template: PodTemplate, shapes: Sequence[NodeShape]) -> list[Problem]:
    """The DaemonSet controller places a pod on every node whose taints and affinity admit it; there the
    pod must also fit the node's allocatable, or it stays Pending."""
    spec = template.spec
    admitting = [
        shape for shape in shapes
        if untolerated_taint(spec.get("tolerations") or [], shape.taints) is None
        and node_affinity_refusal(spec, shape.labels) is None
    ]
    if not admitting:
        return [Problem(CHECK, template.subject, "no node shape admits it: it runs nowhere")]
    requests = pod_requests(spec)
    short = [(shape, insufficient_resources(requests, shape.allocatable)) for shape in admitting]
    return [Problem(CHECK, template.subject, f"{shape.name}: {reason}") for shape, reason in short if reason]


def refusal(spec: Mapping[str, Any], shape: NodeShape) -> str | None:
    """Why kube-scheduler would refuse a pod of `spec` on a node of `shape` (the first filter that does), or
    None when every filter passes."""
    return (
        untolerated_taint(spec.get("tolerations") or [], shape.taints)
        or node_affinity_refusal(spec, shape.labels)
        or insufficient_resources(pod_requests(spec), shape.allocatable)
    )


# --- TaintToleration -------------------------------------------------------------------------------


def tolerates(toleration: Mapping[str, Any], taint: Taint) -> bool:
    """k8s.io/api/core/v1 toleration.go `ToleratesTaint`: an empty effect matches every effect, an empty key
    (with Exists) every key; operator Equal (or empty) compares values, Exists ignores them."""
    if toleration.get("effect") and toleration["effect"] != taint.effect:
        return False
    if toleration.get("key") and toleration["key"] != taint.key:
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Equal":
        return str(toleration.get("value") or "") == taint.value
    return operator == "Exists"


def untolerated_taint(tolerations: Sequence[Mapping[str, Any]], taints: Sequence[Taint]) -> str | None:
    """The TaintToleration filter: the first NoSchedule/NoExecute taint no toleration tolerates."""
    for taint in taints:
        if taint.effect in ENFORCED_EFFECTS and not any(tolerates(t, taint) for t in tolerations):
            return f"untolerated taint {taint.kubelet_flag()}"
    return None


# --- NodeAffinity ----------------------------------------------------------------------------------


def requirement_refusal(requirement: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """Why one matchExpressions requirement does not match `labels`, or None when it does. Semantics of
    k8s.io/apimachinery labels.Requirement.Matches (what nodeaffinity builds from each expression): NotIn and
    DoesNotExist match an absent label; Gt and Lt need the label and one value, both integers. An invalid
    requirement (say In without values) makes nodeaffinity reject its whole term."""
    key, operator = str(requirement.get("key", "")), requirement.get("operator")
    values = [str(v) for v in requirement.get("values") or []]
    shown = f"{key} {operator}" + (f" {values}" if values else "")
    present = key in labels
    if (operator in ("In", "NotIn") and not values) or (operator in ("Exists", "DoesNotExist") and values):
        return f"invalid requirement {shown}"
    if operator in ("Gt", "Lt"):
        if len(values) != 1 or not _is_int(values[0]):
            return f"invalid requirement {shown}"
        matched = present and _is_int(labels[key]) and (
            int(labels[key]) > int(values[0]) if operator == "Gt" else int(labels[key]) < int(values[0]))
    elif operator == "In":
        matched = present and labels[key] in values
    elif operator == "NotIn":
        matched = not present or labels[key] not in values
    elif operator == "Exists":
        matched = present
    elif operator == "DoesNotExist":
        matched = not present
    else:
        return f"invalid requirement {shown}: unknown operator"
    if matched:
        return None
    return f"{shown} not matched ({f'{key}={labels[key]}' if present else f'no {key} label'})"


def _is_int(text: str) -> bool:
    """What Go's strconv.ParseInt(text, 10, 64) accepts (no spaces or underscores, unlike Python's int)."""
    return _INTEGER.match(text) is not None


def term_refusal(term: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """One nodeSelectorTerm: its expressions ANDed. An empty term matches nothing (nodeaffinity); terms on
    `matchFields` (metadata.name) cannot match a node shape, whose name is not known before it exists."""
    expressions = term.get("matchExpressions") or []
    if term.get("matchFields"):
        return "matchFields on the node's name cannot be judged on a node shape"
    if not expressions:
        return "empty nodeSelectorTerm matches no node"
    reasons = (requirement_refusal(expression, labels) for expression in expressions)
    return next((reason for reason in reasons if reason), None)


def node_affinity_refusal(spec: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
    """The NodeAffinity filter: every nodeSelector pair, and at least one required term."""
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != str(value):
            found = f"{key}={labels[key]}" if key in labels else f"no {key} label"
            return f"nodeSelector {key}={value} not matched ({found})"
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    reasons = [term_refusal(term, labels) for term in required.get("nodeSelectorTerms") or []]
    if any(reason is None for reason in reasons):
        return None
    return "node affinity " + (" or ".join(reasons) if reasons else "has no nodeSelectorTerms")


# --- NodeResourcesFit ------------------------------------------------------------------------------


def container_requests(container: Mapping[str, Any]) -> dict[str, Decimal]:
    """A container's (or a pod spec's own) requests after API defaulting: a resource with a limit and no
    request requests its limit (k8s.io/kubernetes pkg/apis/core/v1/defaults.go SetDefaults_Pod), which is
    how GPU limits count."""
    resources = container.get("resources") or {}
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {name: parse_quantity(value) for name, value in merged.items()}


def _add(total: dict[str, Decimal], more: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {name: total.get(name, Decimal(0)) + more.get(name, Decimal(0)) for name in {*total, *more}}


def _max(left: Mapping[str, Decimal], right: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {name: max(left.get(name, Decimal(0)), right.get(name, Decimal(0))) for name in {*left, *right}}


def pod_requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """k8s.io/component-helpers/resource `PodRequests`: max(sum(containers) + sidecars, the largest init
    container plus the sidecars started before it), where pod-level resources (`spec.resources`, cpu and
    memory only) replace that sum, plus the pod's overhead."""
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        total = _add(total, container_requests(container))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for container in spec.get("initContainers") or []:
        requests = container_requests(container)
        if container.get("restartPolicy") == SIDECAR_RESTART_POLICY:
            total = _add(total, requests)
            sidecars = _add(sidecars, requests)
            init_peak = _max(init_peak, sidecars)
        else:
            init_peak = _max(init_peak, _add(requests, sidecars))
    requests = _max(total, init_peak)
    pod_level = container_requests(spec)
    requests.update({name: value for name, value in pod_level.items() if name in POD_LEVEL_RESOURCES})
    overhead = {name: parse_quantity(value) for name, value in (spec.get("overhead") or {}).items()}
    return _add(requests, overhead)


def insufficient_resources(requests: Mapping[str, Decimal], allocatable: Mapping[str, Decimal]) -> str | None:
    """The NodeResourcesFit filter for the checked resources: every one the pod requests beyond allocatable
    (a resource the node lacks has allocatable 0)."""
    zero = Decimal(0)
    short = [
        f"{name} (requests {_shown(name, requests[name])}, allocatable {_shown(name, allocatable.get(name, zero))})"
        for name in CHECKED_RESOURCES
        if requests.get(name, zero) > allocatable.get(name, zero)
    ]
    return f"insufficient {', '.join(short)}" if short else None


def _shown(name: str, amount: Decimal) -> str:
    if name == "cpu":
        return format_cpu(amount)
    if name == "memory":
        return format_bytes(amount)
    return f"{amount.normalize():f}"


# --- Templates -------------------------------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Job", "DaemonSet")
RAY_CLUSTER_FIELDS = {"RayService": "rayClusterConfig", "RayJob": "rayClusterSpec"}
"""Where KubeRay's RayService and RayJob hold their RayCluster spec (ray.io/v1)."""


def pod_templates(manifests: Sequence[Mapping[str, Any]]) -> Iterator[PodTemplate]:
    """Every pod template among the applied objects, named by object and template."""
    for obj in manifests:
        kind, spec = obj.get("kind"), obj.get("spec") or {}
        metadata = obj.get("metadata") or {}
        name = f"{kind} {metadata.get('namespace', 'default')}/{metadata.get('name')}"
        if kind in WORKLOAD_KINDS:
            yield PodTemplate(name, _spec(spec.get("template")), kind == "DaemonSet")
        elif kind == "CronJob":
            yield PodTemplate(name, _spec(((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")))
        elif kind == "Pod":
            yield PodTemplate(name, spec)
        elif kind in ("RayService", "RayCluster", "RayJob"):
            cluster = spec if kind == "RayCluster" else spec.get(RAY_CLUSTER_FIELDS[kind]) or {}
            yield PodTemplate(f"{name} head", _spec((cluster.get("headGroupSpec") or {}).get("template")))
            for group in cluster.get("workerGroupSpecs") or []:
                yield PodTemplate(f"{name} worker group {group.get('groupName')}", _spec(group.get("template")))
        elif kind == "LeaderWorkerSet":
            lws = spec.get("leaderWorkerTemplate") or {}
            worker = _spec(lws.get("workerTemplate"))  # the leader's too when it has no leaderTemplate
            yield PodTemplate(f"{name} leader", _spec(lws["leaderTemplate"]) if lws.get("leaderTemplate") else worker)
            yield PodTemplate(f"{name} worker", worker)


def _spec(template: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (template or {}).get("spec") or {}

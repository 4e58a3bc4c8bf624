"""Autoscaler ownership: nothing a KEDA ScaledObject or an HPA scales also sets the replica count it owns.

Under server-side apply a field the program sets is the program's: every `pulumi up` puts `spec.replicas`
back to the manifest's value, undoing what the autoscaler chose (a scaled-out burst drops to its minimum
mid-peak; pulumi-kubernetes issues 2491, 2569, 3312). The HPA documentation says to leave `spec.replicas`
out of what an autoscaler scales. Three ways it goes wrong, each a Problem:

- a scaled object sets `spec.replicas` (the program and the autoscaler both own the count);
- an autoscaler's `scaleTargetRef` names no object the program applies (it scales nothing; KEDA keeps
  the ScaledObject not ready, an HPA reports FailedGetScale);
- a workload leaves `spec.replicas` out but nothing scales it (the API server runs it at 1, whatever the
  plan said), or two autoscalers scale one object (they fight; KEDA's webhook refuses the second).

Targets are matched as the controllers resolve them: API group (any version), kind, the autoscaler's own
namespace, name. KEDA's `scaleTargetRef` defaults `apiVersion` to apps/v1 and `kind` to Deployment (KEDA's
ScaledObject specification); the HPA's `CrossVersionObjectReference` requires kind and name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import Catalog
from components.checks import Manifests, Problem, Resources

CHECK = "autoscaler-ownership"
DEFAULT_NAMESPACE = "default"
"""Where an object with no namespace lands: the provider's default namespace."""
DEFAULT_TARGET_API_VERSION = "apps/v1"
DEFAULT_TARGET_KIND = "Deployment"
AUTOSCALERS = {("keda.sh", "ScaledObject"), ("autoscaling", "HorizontalPodAutoscaler")}
"""(API group, kind) of the objects that own a target's replica count."""
REPLICATED = {
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "ReplicaSet"),
    ("leaderworkerset.x-k8s.io", "LeaderWorkerSet"),
}
"""Workloads whose `spec.replicas` the API server defaults to 1 when left out."""


@dataclass(frozen=True)
class ObjectRef:
    """An object as a controller finds it: API group (not version), kind, namespace, name."""

    group: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def _group(api_version: str) -> str:
    """`apps/v1` -> `apps`; the core group's `v1` -> ``."""
    return api_version.rpartition("/")[0]


def ref_of(obj: dict[str, Any]) -> ObjectRef:
    metadata = obj.get("metadata") or {}
    return ObjectRef(
        _group(str(obj.get("apiVersion", ""))),
        str(obj.get("kind", "")),
        str(metadata.get("namespace") or DEFAULT_NAMESPACE),
        str(metadata.get("name", "")),
    )


def is_autoscaler(obj: dict[str, Any]) -> bool:
    return (_group(str(obj.get("apiVersion", ""))), obj.get("kind")) in AUTOSCALERS


def scale_target(autoscaler: dict[str, Any]) -> ObjectRef:
    """The object a ScaledObject or HPA scales, in the autoscaler's namespace (neither can reach another)."""
    target = (autoscaler.get("spec") or {}).get("scaleTargetRef") or {}
    return ObjectRef(
        _group(str(target.get("apiVersion") or DEFAULT_TARGET_API_VERSION)),
        str(target.get("kind") or DEFAULT_TARGET_KIND),
        ref_of(autoscaler).namespace,
        str(target.get("name", "")),
    )


def sets_replicas(obj: dict[str, Any]) -> bool:
    """Whether the manifest claims `spec.replicas` (a null is no claim: server-side apply drops it)."""
    return (obj.get("spec") or {}).get("replicas") is not None


def _owners(manifests: Manifests) -> dict[ObjectRef, list[ObjectRef]]:
    """Target -> the autoscalers that scale it, in manifest order."""
    owners: dict[ObjectRef, list[ObjectRef]] = {}
    for obj in manifests:
        if is_autoscaler(obj):
            owners.setdefault(scale_target(obj), []).append(ref_of(obj))
    return owners


def _target_problems(
    target: ObjectRef, owners: list[ObjectRef], applied: dict[ObjectRef, dict[str, Any]]
) -> list[Problem]:
    named = " and ".join(str(owner) for owner in owners)
    obj = applied.get(target)
    if obj is None:
        return [Problem(CHECK, str(owner), f"scales {target}, which the program does not apply") for owner in owners]
    problems = []
    if sets_replicas(obj):
        problems.append(Problem(
            CHECK, str(target),
            f"sets spec.replicas ({obj['spec']['replicas']}) but {named} scales it: every apply resets the "
            "count the autoscaler chose; leave spec.replicas out and let minReplicaCount hold the minimum",
        ))
    if len(owners) > 1:
        problems.append(Problem(CHECK, str(target), f"is scaled by {named}: two autoscalers fight over its count"))
    return problems


def _unowned_problems(manifests: Manifests, owners: dict[ObjectRef, list[ObjectRef]]) -> list[Problem]:
    problems = []
    for obj in manifests:
        ref = ref_of(obj)
        if (ref.group, ref.kind) in REPLICATED and not sets_replicas(obj) and ref not in owners:
            problems.append(Problem(
                CHECK, str(ref), "leaves spec.replicas out but no ScaledObject or HPA scales it: it runs at the "
                "API server's default of 1 replica",
            ))
    return problems


def check(resources: Resources, manifests: Manifests, catalog: Catalog) -> list[Problem]:
    """Every ownership problem among the Kubernetes objects the program applies (resources and catalog
    are not needed: the facts are all in the objects)."""
    applied = {ref_of(obj): obj for obj in manifests}
    owners = _owners(manifests)
    problems = [problem for target, scalers in owners.items() for problem in _target_problems(target, scalers, applied)]
    return problems + _unowned_problems(manifests, owners)

"""The node shapes the program creates, read from the recorded resources themselves (not from the spec):
labels, taints and allocatable CPU, memory and GPUs of one node of each pool and instance type.

- The system pool is an EKS managed node group: labels, taints and instance types are its inputs.
- A GPU pool is an Auto Scaling group: labels and taints are its Cluster Autoscaler node-template tags
  (what CA assumes a node of the group carries when it scales it from zero; the kubelet's
  `--node-labels` / `--register-with-taints` come from the same function, components.manifests.scheduling),
  instance types are its mixed instances policy's overrides or its launch template's `instanceType`.

Allocatable is what the kubelet of an EKS AL2023 node advertises: capacity minus kube-reserved minus the
hard eviction threshold (Kubernetes "Reserve Compute Resources for System Daemons"), with the figures
nodeadm writes into the kubelet configuration (constants below, with their sources; maxPods per instance type
is the catalog's, components/catalog/data/instances.yaml).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from components.catalog import Catalog, InstanceType
from components.checks import Problem
from components.manifests.scheduling import POOL_LABEL, Taint
from components.manifests.serving import GPU_RESOURCE

CHECK = "schedulability"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
AUTO_SCALING_GROUP = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_TEMPLATE_LABEL = "k8s.io/cluster-autoscaler/node-template/label/"
NODE_TEMPLATE_TAINT = "k8s.io/cluster-autoscaler/node-template/taint/"
NODE_TEMPLATE_GPUS = f"k8s.io/cluster-autoscaler/node-template/resources/{GPU_RESOURCE}"
"""Cluster Autoscaler's AWS node-template tags (cluster-autoscaler/cloudprovider/aws/README.md,
"Auto-Discovery Setup"): `label/<key>` = value, `taint/<key>` = `value:Effect`, `resources/<name>` = amount."""
EKS_DEFAULT_INSTANCE_TYPE = "t3.medium"
MANAGED_TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}
"""The EKS API's spelling of taint effects (CreateNodegroup `Taint.effect`) -> Kubernetes'."""
OS_LABEL = "kubernetes.io/os"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
EKS_CAPACITY_LABEL = "eks.amazonaws.com/capacityType"
"""Well-known labels every node here gets: the kubelet sets the OS (all AMIs here are Linux), the AWS cloud
provider the instance type, and EKS labels managed nodes with their capacity type. Not modelled:
`kubernetes.io/arch` (the catalog has no architecture), zone, region and hostname."""

# --- Allocatable on EKS AL2023 (nodeadm, awslabs/amazon-eks-ami nodeadm/internal/kubelet/config.go) ---
KUBE_RESERVED_CPU_BANDS = ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50), (4000, None, 25))
"""getCPUMillicoresToReserve: (from, to millicores, reserved in 1/10000) = 6% of the first core, 1% of the
second, 0.5% of the third and fourth, 0.25% of every further core; integer division per band."""
KUBE_RESERVED_MEMORY_BASE_MIB = 255
KUBE_RESERVED_MEMORY_PER_POD_MIB = 11
"""GetMemoryMebibytesToReserve: kube-reserved memory = 11Mi x maxPods + 255Mi (maxPods: the catalog's
InstanceType.max_pods)."""
EVICTION_HARD_MEMORY_MIB = 100
"""nodeadm's kubelet `evictionHard: memory.available: 100Mi` (also the kubelet's own default)."""
VM_MEMORY_OVERHEAD = Decimal("0.075")
"""The kubelet's memory capacity is the kernel's MemTotal, below the instance's nominal memory (firmware,
kernel). Not in the catalog; this is Karpenter's default estimate of that gap (`VM_MEMORY_OVERHEAD_PERCENT`,
0.075, karpenter.sh settings), so the check does not pass a pod that only fits the nominal figure."""


@dataclass(frozen=True)
class NodeShape:
    """One node of a pool with one instance type, as kube-scheduler sees it."""

    pool: str
    instance_type: str
    labels: Mapping[str, str]
    taints: tuple[Taint, ...]
    allocatable: Mapping[str, Decimal]
    """cpu in cores, memory in bytes, nvidia.com/gpu in devices."""

    @property
    def name(self) -> str:
        return f"{self.pool} ({self.instance_type})"


def kube_reserved_cpu_millicores(vcpu: int) -> int:
    """nodeadm's kube-reserved CPU for `vcpu` cores, band by band with its integer arithmetic."""
    total = vcpu * 1000
    reserved = 0
    for start, end, per_10000 in KUBE_RESERVED_CPU_BANDS:
        if total > start:
            reserved += (min(total, end if end is not None else total) - start) * per_10000 // 10000
    return reserved


def kube_reserved_memory_mib(pods: int) -> int:
    """nodeadm's kube-reserved memory in MiB for a node allowed `pods` pods."""
    return KUBE_RESERVED_MEMORY_PER_POD_MIB * pods + KUBE_RESERVED_MEMORY_BASE_MIB


def allocatable(instance: InstanceType) -> dict[str, Decimal]:
    """Node Allocatable = capacity - kube-reserved - eviction threshold (nodeadm sets no system-reserved)."""
    mib = Decimal(2**20)
    capacity = Decimal(str(instance.memory_gib)) * 2**30 * (1 - VM_MEMORY_OVERHEAD)
    reserved = (kube_reserved_memory_mib(instance.max_pods) + EVICTION_HARD_MEMORY_MIB) * mib
    return {
        "cpu": Decimal(instance.vcpu * 1000 - kube_reserved_cpu_millicores(instance.vcpu)) / 1000,
        "memory": capacity - reserved,
        GPU_RESOURCE: Decimal(instance.gpu_count),
    }


def node_shapes(resources: Sequence[dict[str, Any]], catalog: Catalog) -> tuple[list[NodeShape], list[Problem]]:
    """Every (pool, instance type) the program's node groups can launch, by pool name; and what keeps one
    from being known (an instance type outside the catalog, a group whose instance types cannot be told)."""
    templates = [r for r in resources if r.get("type") == LAUNCH_TEMPLATE]
    shapes: list[NodeShape] = []
    problems: list[Problem] = []
    for resource in resources:
        if resource.get("type") == NODE_GROUP:
            found = _managed_node_group(resource, templates)
        elif resource.get("type") == AUTO_SCALING_GROUP:
            found = _auto_scaling_group(resource, templates)
        else:
            continue
        if found.trouble:
            problems.append(Problem(CHECK, f"node group {resource.get('name')}", found.trouble))
        for type_name in found.instance_types:
            instance = catalog.instance_types.get(type_name)
            subject = f"node shape {found.pool} ({type_name})"
            if instance is None:
                problems.append(Problem(CHECK, subject, "instance type not in the catalog: its vCPUs, memory "
                                                        "and GPUs are unknown"))
                continue
            if found.gpus_tag is not None and found.gpus_tag != instance.gpu_count:
                problems.append(Problem(CHECK, subject, f"Cluster Autoscaler's node-template tag says "
                                                        f"{found.gpus_tag} {GPU_RESOURCE}, the instance has "
                                                        f"{instance.gpu_count}"))
            shapes.append(found.shape(instance))
    # The engine registers resources in no fixed order: sort by pool (a pool keeps its types' order).
    return sorted(shapes, key=lambda shape: shape.pool), sorted(problems, key=lambda problem: problem.subject)


@dataclass(frozen=True)
class _Group:
    """What one node group's recorded inputs say about its nodes."""

    pool: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    instance_types: list[str]
    gpus_tag: int | None = None
    trouble: str | None = None

    def shape(self, instance: InstanceType) -> NodeShape:
        well_known = {OS_LABEL: "linux", INSTANCE_TYPE_LABEL: instance.name}
        return NodeShape(self.pool, instance.name, {**well_known, **self.labels}, self.taints, allocatable(instance))


def _managed_node_group(resource: dict[str, Any], templates: list[dict[str, Any]]) -> _Group:
    """Labels and taints as given to EKS; instance types from `instanceTypes`, else from the launch template,
    else EKS's default (CreateNodegroup: `instanceTypes` defaults to t3.medium)."""
    inputs = resource.get("inputs") or {}
    labels = {str(k): str(v) for k, v in (inputs.get("labels") or {}).items()}
    labels.setdefault(EKS_CAPACITY_LABEL, str(inputs.get("capacityType") or "ON_DEMAND"))
    taints = tuple(_managed_taint(taint) for taint in inputs.get("taints") or [])
    pool = labels.get(POOL_LABEL, resource.get("name", ""))
    types = [str(t) for t in inputs.get("instanceTypes") or []]
    if types or not inputs.get("launchTemplate"):
        return _Group(pool, labels, taints, types or [EKS_DEFAULT_INSTANCE_TYPE])
    template = _launch_template(resource, inputs["launchTemplate"], templates)
    instance_type = ((template or {}).get("inputs") or {}).get("instanceType")
    if not instance_type:
        return _Group(pool, labels, taints, [], trouble="no instanceTypes and no instance type in a launch template")
    return _Group(pool, labels, taints, [str(instance_type)])


def _managed_taint(taint: dict[str, Any]) -> Taint:
    effect = str(taint.get("effect", ""))
    return Taint(str(taint.get("key", "")), str(taint.get("value") or ""), MANAGED_TAINT_EFFECTS.get(effect, effect))


def _auto_scaling_group(resource: dict[str, Any], templates: list[dict[str, Any]]) -> _Group:
    inputs = resource.get("inputs") or {}
    tags = {str(t.get("key")): str(t.get("value", "")) for t in inputs.get("tags") or [] if isinstance(t, dict)}
    labels = {k.removeprefix(NODE_TEMPLATE_LABEL): v for k, v in tags.items() if k.startswith(NODE_TEMPLATE_LABEL)}
    taints = []
    for key, value_effect in tags.items():
        if key.startswith(NODE_TEMPLATE_TAINT):
            value, _, effect = value_effect.rpartition(":")
            taints.append(Taint(key.removeprefix(NODE_TEMPLATE_TAINT), value, effect))
    gpus_tag = int(tags[NODE_TEMPLATE_GPUS]) if tags.get(NODE_TEMPLATE_GPUS, "").isdigit() else None
    types, trouble = _group_instance_types(resource, templates)
    return _Group(labels.get(POOL_LABEL, resource.get("name", "")), labels, tuple(taints), types, gpus_tag, trouble)


def _group_instance_types(resource: dict[str, Any], templates: list[dict[str, Any]]) -> tuple[list[str], str | None]:
    """The mixed instances policy's overrides, else the launch template's instance type."""
    inputs = resource.get("inputs") or {}
    mixed = (inputs.get("mixedInstancesPolicy") or {}).get("launchTemplate") or {}
    overrides = mixed.get("overrides") or []
    if any("instanceRequirements" in o for o in overrides):
        return [], "attribute-based instance type selection (instanceRequirements) is not modelled"
    types = [str(o["instanceType"]) for o in overrides if o.get("instanceType")]
    if types:
        return types, None
    reference = inputs.get("launchTemplate") or mixed.get("launchTemplateSpecification")
    if not reference:
        return [], "neither a launch template nor a mixed instances policy: its instance types are unknown"
    template = _launch_template(resource, reference, templates)
    if template is None:
        return [], "cannot tell which of the program's launch templates it launches"
    instance_type = (template.get("inputs") or {}).get("instanceType")
    if not instance_type:
        return [], f"its launch template {template.get('name')} names no instance type and no override does"
    return [str(instance_type)], None


def _launch_template(group: dict[str, Any], reference: dict[str, Any], templates: list[dict[str, Any]]) -> dict | None:
    """The launch template a group refers to. Its id is known only once created, so the recorded reference
    is followed the way the engine does: the template the group depends on (its id is an input), else the
    one with the referenced name, else the one sharing the group's parent component."""
    depends_on = set((group.get("options") or {}).get("dependsOn") or [])
    name = reference.get("name") or reference.get("launchTemplateName")
    for candidates in (
        [t for t in templates if t.get("urn") in depends_on],
        [t for t in templates if name and (t.get("inputs") or {}).get("name") == name],
        [t for t in templates if t.get("parent") and t.get("parent") == group.get("parent")],
    ):
        if len(candidates) == 1:
            return candidates[0]
    return None

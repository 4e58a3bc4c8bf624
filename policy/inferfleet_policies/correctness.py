"""Correctness policies: what the program wires together must agree. Pods select pools that exist,
autoscaler bounds add up to the spec's replicas, and nothing floats (charts and AMIs pinned)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from .common import (
    HELM_CHART,
    HELM_RELEASE,
    LAUNCH_TEMPLATE,
    SERVICE_LABEL,
    Resource,
    all_objects,
    object_id,
    pod_templates,
    pool_capacity_types,
    pools_selected,
)
from .framework import resource_policy, stack_policy

EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")
IMAGE_ID = "imageId"
SERVICES_KEY = "services"
"""Policy config: {service: {min, max}} from the stack spec; `inferfleet render` fills it in."""
PINNED_AMIS_KEY = "pinnedAmiIds"
"""Policy config: the AMI ids the spec pins (cluster.gpuAmiId); `inferfleet render` fills it in."""
STABLE = "stable"
"""Canary and shadow replica sets are extra capacity outside the spec's replicas."""
REVISION_LABEL = "inferfleet.io/revision"

Violation = tuple[str, str | None]


def node_selection_matches_pool(resources: list[Resource], _config: Any) -> Iterator[Violation]:
    """Every pod that selects a pool (inferfleet.io/pool) selects pools some node group announces:
    otherwise the pod stays Pending forever and the autoscaler has no group to grow."""
    pools = pool_capacity_types(resources)
    for obj in all_objects(resources):
        for template in pod_templates(obj):
            unknown = sorted((pools_selected(template.spec) or set()) - pools.keys())
            if unknown:
                yield f"{template.owner} selects pool(s) {', '.join(unknown)} that no node group provides", None


def _scaled_objects(objects: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Deployment name -> the ScaledObject that scales it."""
    return {str(((obj.get("spec") or {}).get("scaleTargetRef") or {}).get("name")): obj
            for obj in objects if obj.get("kind") == "ScaledObject"}


def _stable_deployments(objects: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for obj in objects:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if obj.get("kind") == "Deployment" and SERVICE_LABEL in labels and labels.get(REVISION_LABEL) == STABLE:
            yield obj


def autoscaler_bounds(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """Each ScaledObject scales a Deployment that exists, with minReplicaCount <= maxReplicaCount; and
    a Deployment-served service's fixed plus autoscaled replicas span exactly the spec's
    replicas.min..max (config `services`): bounds that drift from the spec break the capacity plan."""
    objects = all_objects(resources)
    scaled = _scaled_objects(objects)
    deployments = {str((obj.get("metadata") or {}).get("name")) for obj in objects if obj.get("kind") == "Deployment"}
    for target, obj in sorted(scaled.items()):
        spec = obj.get("spec") or {}
        if target not in deployments:
            yield f"{object_id(obj)} scales Deployment {target}, which does not exist", None
        if int(spec.get("minReplicaCount") or 0) > int(spec.get("maxReplicaCount") or 0):
            yield f"{object_id(obj)} has minReplicaCount above maxReplicaCount", None
    spans: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for deployment in _stable_deployments(objects):
        name = str(deployment["metadata"]["name"])
        service = str(deployment["metadata"]["labels"][SERVICE_LABEL])
        autoscaler = (scaled.get(name) or {}).get("spec")
        fixed = int((deployment.get("spec") or {}).get("replicas") or 0)
        low, high = (int(autoscaler.get("minReplicaCount") or 0), int(autoscaler.get("maxReplicaCount") or 0)) \
            if autoscaler else (fixed, fixed)
        spans[service][0] += low
        spans[service][1] += high
    for service, wanted in sorted((config.get(SERVICES_KEY) or {}).items()):
        if service in spans and spans[service] != [wanted.get("min"), wanted.get("max")]:
            low, high = spans[service]
            yield (f"service {service} scales {low}..{high} replicas; the spec says "
                   f"{wanted.get('min')}..{wanted.get('max')}"), None


def charts_pinned(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Every Helm chart is pinned to an exact version: a range or a missing version installs whatever
    the repository publishes next, untested."""
    version = str(props.get("version") or "")
    if not EXACT_VERSION.match(version):
        yield f"chart {props.get('chart')} is not pinned to an exact version (version: {version or 'none'})"


def amis_pinned(_type: str, props: Mapping[str, Any], config: Mapping[str, Any], args: Any) -> Iterator[str]:
    """GPU node AMIs are pinned: the spec's cluster.gpuAmiId (config pinnedAmiIds), or an AMI resolved
    once and then held by ignoreChanges on imageId. An AMI that follows the latest SSM parameter
    replaces every GPU node, warm pools included, on a routine deploy."""
    image = str(props.get(IMAGE_ID) or "")
    held = IMAGE_ID in (getattr(getattr(args, "opts", None), "ignore_changes", None) or [])
    pinned = AMI_ID.match(image) and image in (config.get(PINNED_AMIS_KEY) or [])
    if not held and not pinned:
        yield f"launch template imageId {image!r} is neither the spec's pinned AMI nor held by ignoreChanges"


POLICIES = [
    stack_policy("node-selection-matches-pool", node_selection_matches_pool),
    stack_policy("autoscaler-bounds", autoscaler_bounds, {SERVICES_KEY: {
        "type": "object",
        "additionalProperties": {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}},
    }}),
    resource_policy("charts-pinned", (HELM_CHART, HELM_RELEASE), charts_pinned),
    resource_policy("amis-pinned", (LAUNCH_TEMPLATE,), amis_pinned,
                    {PINNED_AMIS_KEY: {"type": "array", "items": {"type": "string"}}}),
]

"""Correctness policies: what the program wires together must agree. Pods select pools that exist,
autoscaler bounds add up to the spec's replicas, and nothing floats (charts and AMIs pinned)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from .common import (
    FALLBACK_OF_ANNOTATION,
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


def _bounds(deployment: Mapping[str, Any], autoscaler: Mapping[str, Any] | None) -> tuple[int, int]:
    """(min, max) replicas of a Deployment: its ScaledObject's bounds, or its fixed count."""
    if autoscaler:
        return int(autoscaler.get("minReplicaCount") or 0), int(autoscaler.get("maxReplicaCount") or 0)
    fixed = int((deployment.get("spec") or {}).get("replicas") or 0)
    return fixed, fixed


def _fallback_links(stable: Mapping[str, Mapping[str, Any]],
                    scaled: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], list[Violation]]:
    """Deployment -> the Deployment it falls back from (FALLBACK_OF_ANNOTATION), for the links that hold:
    both autoscaled stable Deployments of the same service. A link that does not hold is a violation and
    leaves the Deployment counted on its own. A set with two fallbacks is one too: both would scale on the
    same replicas it cannot place (a chain is one line of sets)."""
    links: dict[str, str] = {}
    problems: list[Violation] = []
    for name, deployment in sorted(stable.items()):
        metadata = deployment.get("metadata") or {}
        target = (metadata.get("annotations") or {}).get(FALLBACK_OF_ANNOTATION)
        if target is None:
            continue
        target = str(target)
        service = metadata["labels"][SERVICE_LABEL]
        other = stable.get(target)
        if name not in scaled:
            problems.append((f"Deployment/{name} falls back from {target} but no ScaledObject scales it", None))
        elif other is None or other["metadata"]["labels"][SERVICE_LABEL] != service or target not in scaled:
            problems.append((f"Deployment/{name} falls back from {target}, which is no autoscaled stable "
                             f"Deployment of service {service}", None))
        else:
            links[name] = target
    followers: dict[str, list[str]] = defaultdict(list)
    for name, target in sorted(links.items()):
        followers[target].append(name)
    for target, names in sorted(followers.items()):
        if len(names) > 1:
            problems.append((f"Deployment/{target} has more than one fallback set: {', '.join(names)}", None))
    return links, problems


def _chain_start(name: str, links: Mapping[str, str]) -> str | None:
    """The first Deployment of `name`'s fallback chain; None when the links go round in a cycle."""
    seen = {name}
    while name in links:
        name = links[name]
        if name in seen:
            return None
        seen.add(name)
    return name


def autoscaler_bounds(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """Each ScaledObject scales a Deployment that exists, with minReplicaCount <= maxReplicaCount; and
    a Deployment-served service's fixed plus autoscaled replicas span exactly the spec's
    replicas.min..max (config `services`): bounds that drift from the spec break the capacity plan.

    A chain of fallback sets counts as one budget: a fallback (FALLBACK_OF_ANNOTATION) runs one replica
    per replica of the set before it left unplaced, so the chain's first set's bounds are the chain's, and
    a fallback may reach no further (minReplicaCount 0, maxReplicaCount at most the first set's)."""
    objects = all_objects(resources)
    scaled = _scaled_objects(objects)
    deployments = {str((obj.get("metadata") or {}).get("name")) for obj in objects if obj.get("kind") == "Deployment"}
    for target, obj in sorted(scaled.items()):
        spec = obj.get("spec") or {}
        if target not in deployments:
            yield f"{object_id(obj)} scales Deployment {target}, which does not exist", None
        if int(spec.get("minReplicaCount") or 0) > int(spec.get("maxReplicaCount") or 0):
            yield f"{object_id(obj)} has minReplicaCount above maxReplicaCount", None
    stable = {str(obj["metadata"]["name"]): obj for obj in _stable_deployments(objects)}
    bounds = {name: _bounds(obj, (scaled.get(name) or {}).get("spec")) for name, obj in stable.items()}
    links, problems = _fallback_links(stable, scaled)
    yield from problems
    spans: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, deployment in sorted(stable.items()):
        service = str(deployment["metadata"]["labels"][SERVICE_LABEL])
        start = _chain_start(name, links)
        if start is None:
            yield f"Deployment/{name} is in a cycle of fallback sets", None
            start = name
        if start == name:
            spans[service][0] += bounds[name][0]
            spans[service][1] += bounds[name][1]
        elif bounds[name][0] > 0 or bounds[name][1] > bounds[start][1]:
            yield (f"Deployment/{name} scales {bounds[name][0]}..{bounds[name][1]} replicas as a fallback in "
                   f"{start}'s chain, whose budget is at most {bounds[start][1]}: a fallback holds none of its own "
                   f"(min 0) and no more than its chain's first set"), None
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

"""Reliability policies for prod services that promise availability (an `slo.availability`, which the
serving objects carry as an annotation): enough replicas, disruption budgets, zone spread, startup probes,
and a floor that does not stand on spot capacity. A prod service without an availability SLO (a batch
scorer, an experiment) is not held to them. They read the serving objects of every ConfigGroup together
(a RayService and its PodDisruptionBudgets are applied by different groups)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping
from typing import Any

from .common import (
    SERVICE_LABEL,
    SPOT,
    ZONE_KEY,
    PodTemplate,
    Resource,
    all_objects,
    is_prod,
    pod_templates,
    pool_capacity_types,
    pools_selected,
    requests_gpu,
)
from .framework import stack_policy

MIN_PROD_REPLICAS = 2
"""One replica is an outage at every node drain, spot interruption or rollout."""
REVISION_LABEL = "inferfleet.io/revision"
STABLE = "stable"
"""Canary and shadow replica sets are extra capacity, not the floor an SLO rests on."""
RAY_KINDS = ("RayService", "RayCluster")

Violation = tuple[str, str | None]


def serving_templates(resources: list[Resource]) -> list[PodTemplate]:
    """Pod templates that serve a model under an availability SLO: labelled with their service, holding a
    GPU container, and owned by a workload that states the SLO."""
    return [
        template
        for obj in all_objects(resources)
        for template in pod_templates(obj)
        if SERVICE_LABEL in template.labels
        and template.availability_slo is not None
        and any(requests_gpu(c) for c in template.spec.get("containers") or [])
    ]


def _stable(template: PodTemplate) -> bool:
    return template.labels.get(REVISION_LABEL) == STABLE


def min_replicas(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """A prod service with an availability SLO keeps at least 2 replicas that never scale away (its floor),
    so one node drain, spot interruption or rollout does not take it down."""
    if not is_prod(config):
        return
    floors: dict[str, int] = defaultdict(int)
    for template in filter(_stable, serving_templates(resources)):
        floors[str(template.labels[SERVICE_LABEL])] += int(template.fixed_replicas or 0)
    for service, floor in sorted(floors.items()):
        if floor < MIN_PROD_REPLICAS:
            yield f"service {service} keeps {floor} replica(s); prod needs at least {MIN_PROD_REPLICAS}", None


def _selected_by(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(key) == value for key, value in match.items())


def pdb_present(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """Every replica set of a prod service with an availability SLO has a PodDisruptionBudget: without one
    a node upgrade may evict every replica at once."""
    if not is_prod(config):
        return
    selectors = [(obj.get("spec") or {}).get("selector") or {}
                 for obj in all_objects(resources) if obj.get("kind") == "PodDisruptionBudget"]
    for template in serving_templates(resources):
        if not any(_selected_by(selector, template.labels) for selector in selectors):
            yield f"{template.owner} has no PodDisruptionBudget", None


def zone_spread(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """The pods of a prod service with an availability SLO spread over zones (a topology spread
    constraint on topology.kubernetes.io/zone), so one AZ outage leaves replicas serving."""
    if not is_prod(config):
        return
    for template in serving_templates(resources):
        keys = {c.get("topologyKey") for c in template.spec.get("topologySpreadConstraints") or []}
        if ZONE_KEY not in keys:
            yield f"{template.owner} does not spread over zones ({ZONE_KEY})", None


def startup_probes(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """The serving containers of a prod service with an availability SLO have a startup probe sized to
    model load: without one the liveness probe kills an engine that is still loading weights, forever. Ray
    workers are exempt: Ray Serve's controller health-checks its replicas and gates traffic itself."""
    if not is_prod(config):
        return
    for template in serving_templates(resources):
        if template.kind in RAY_KINDS:
            continue
        for container in template.spec.get("containers") or []:
            if requests_gpu(container) and not container.get("startupProbe"):
                yield f"{template.owner}/{container.get('name')} has no startup probe", None


def on_demand_floor(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[Violation]:
    """A prod service with an availability SLO runs its minimum replicas on on-demand pools; spot is for
    burst only, because spot
    can be reclaimed all at once and the floor is what the availability SLO rests on. Canary and shadow
    replicas are extra capacity, not the floor, and may run on spot."""
    if not is_prod(config):
        return
    capacity = pool_capacity_types(resources)
    for template in filter(_stable, serving_templates(resources)):
        if not template.fixed_replicas:
            continue
        pools = pools_selected(template.spec) or set()
        spot = sorted(pool for pool in pools if capacity.get(pool) == SPOT)
        if spot or not pools:
            where = f"spot pools {', '.join(spot)}" if spot else "any node"
            yield f"{template.owner} keeps {template.fixed_replicas} replica(s) that may land on {where}", None


POLICIES = [
    stack_policy("min-replicas", min_replicas),
    stack_policy("pdb-present", pdb_present),
    stack_policy("zone-spread", zone_spread),
    stack_policy("startup-probes", startup_probes),
    stack_policy("on-demand-floor", on_demand_floor),
]

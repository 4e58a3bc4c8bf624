"""The plan of a whole stack: each service sized per pool, replicas placed, pools and fleet costed.

Placement: a service's floor (`replicas.min`) runs on its first on-demand pool, so interruptions
never take it below the floor; the rest of its peak goes to its first spot pool (burst). Without
a spot pool, everything runs on the floor pool; without an on-demand pool, on the first pool.
Other pools the service names are fallbacks: sized, but planned with no replicas (the
autoscaler's priority expander uses them when the preferred ones have no capacity).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.catalog import Catalog, InstanceType
from components.planner import constants as c
from components.planner.cost import fixed_usd_per_hour, pool_usd_per_hour, system_pool_usd_per_hour
from components.planner.parallelism import ServiceOnPool, choose_replica
from components.planner.sizing import ReplicaSizing, serves_slo_alone, size_replica
from components.spec.models import GpuPoolSpec, ServiceSpec, StackSpec

Role = Literal["floor", "burst", "floorAndBurst", "fallback"]


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> dict:
        """The plan with figures rounded for reading: 3 decimals, and whole numbers past 1,000."""
        return _rounded(self.model_dump(by_alias=True, mode="json"))


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value) if abs(value) >= 1000 else round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


class ServicePoolPlan(_Out):
    name: str
    pool: str
    engine: str
    role: Role
    instance_type: str
    capacity_type: str
    gpus_per_replica: int
    nodes_per_replica: int
    tensor_parallel_size: int
    pipeline_parallel_size: int
    weights_gib: float = Field(alias="weightsGiB")
    kv_cache_tokens_per_replica: int
    max_concurrent_sequences: int
    planned_concurrency: int
    max_output_tokens_per_second_per_replica: float
    requests_per_second_per_replica: float
    ttft_ms: float | None
    itl_ms: float | None
    replicas_min: int
    replicas_needed: int
    slo_feasible: bool
    reasons: list[str]


class PoolPlan(_Out):
    name: str
    instance_type: str
    capacity_type: str
    gpus_per_node: int
    min_size: int
    max_size: int
    nodes_at_min_replicas: int
    nodes_at_peak: int
    hourly_usd_min: float
    hourly_usd_max: float
    hourly_usd_at_min_replicas: float
    hourly_usd_at_peak: float


class CostPlan(_Out):
    fixed_hourly_usd: float
    hourly_usd_min: float
    hourly_usd_max: float
    hourly_usd_at_min_replicas: float
    hourly_usd_at_peak: float
    monthly_usd_min: float
    monthly_usd_max: float
    peak_output_tokens_per_second: float
    usd_per_million_output_tokens: float | None


class StackPlan(_Out):
    environment: str
    services: list[ServicePoolPlan]
    pools: list[PoolPlan]
    cost: CostPlan


def _roles(service: ServiceSpec, pools: dict[str, GpuPoolSpec]) -> dict[str, Role]:
    chosen = [pools[name] for name in service.pools]
    floor = next((p for p in chosen if p.capacity_type == "onDemand"), chosen[0])
    burst = next((p for p in chosen if p.capacity_type == "spot"), floor)
    roles: dict[str, Role] = {name: "fallback" for name in service.pools}
    if floor.name == burst.name:
        roles[floor.name] = "floorAndBurst"
    else:
        roles[floor.name] = "floor"
        roles[burst.name] = "burst"
    return roles


def _place(service: ServiceSpec, roles: dict[str, Role], sizing: dict[str, ReplicaSizing]) -> tuple[dict[str, int], list[str]]:
    """Replicas per pool at peak, and why the service cannot meet its peak within its bounds."""
    peak = service.workload.peak_requests_per_second
    placed = dict.fromkeys(roles, 0)
    floor = next(name for name, role in roles.items() if role in ("floor", "floorAndBurst"))
    burst = next(name for name, role in roles.items() if role in ("burst", "floorAndBurst"))
    placed[floor] = service.replicas.min
    remaining = peak - service.replicas.min * sizing[floor].requests_per_second
    reasons = []
    if remaining > 1e-9:
        rate = sizing[burst].requests_per_second
        if rate <= 0:
            reasons.append(f"the peak cannot be served: burst pool {burst} cannot meet the SLO")
        else:
            placed[burst] += math.ceil(remaining / rate - 1e-9)
    total = sum(placed.values())
    if total > service.replicas.max:
        reasons.append(f"peak {peak:g} req/s needs {total} replicas but replicas.max is {service.replicas.max}")
    return placed, reasons


def _nodes(replicas: int, gpus_per_replica: int, gpus_per_node: int) -> float:
    """Nodes a pool needs for these replicas; fractional when replicas share nodes (summed, then rounded up)."""
    if gpus_per_replica >= gpus_per_node:
        return replicas * math.ceil(gpus_per_replica / gpus_per_node)
    return replicas * gpus_per_replica / gpus_per_node


FLOOR_ROLES = ("floor", "floorAndBurst")


def _plan_service(
    service: ServiceSpec, pools: dict[str, GpuPoolSpec], catalog: Catalog
) -> tuple[list[ServicePoolPlan], dict[str, float], dict[str, float]]:
    """The service's entry per pool, and the nodes it needs on each pool at peak and at its floor."""
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    roles = _roles(service, pools)
    replicas, sizing = {}, {}
    for name in service.pools:
        target = ServiceOnPool(service, architecture, _template(pools[name], catalog), pools[name].max_size)
        replica = choose_replica(target, catalog, lambda r: serves_slo_alone(service, r))
        assert replica is not None, "validated stacks fit every pool they name"
        replicas[name], sizing[name] = replica, size_replica(service, replica)
    placed, service_reasons = _place(service, roles, sizing)
    entries, at_peak, at_floor = [], {}, {}
    for name in service.pools:
        replica, size, role = replicas[name], sizing[name], roles[name]
        gpus_per_node = _template(pools[name], catalog).gpu_count
        floor = service.replicas.min if role in FLOOR_ROLES else 0
        at_peak[name] = _nodes(placed[name], replica.gpus, gpus_per_node)
        at_floor[name] = _nodes(floor, replica.gpus, gpus_per_node)
        used = placed[name] > 0 or role != "fallback"
        entries.append(
            ServicePoolPlan(
                name=service.name,
                pool=name,
                engine=service.engine,
                role=role,
                instance_type=pools[name].instance_types[0],
                capacity_type=pools[name].capacity_type,
                gpus_per_replica=replica.gpus,
                nodes_per_replica=math.ceil(replica.gpus / gpus_per_node),
                tensor_parallel_size=replica.tensor_parallel,
                pipeline_parallel_size=replica.pipeline_parallel,
                weights_gib=replica.weight_bytes / c.GIB,
                kv_cache_tokens_per_replica=size.kv_cache_tokens,
                max_concurrent_sequences=size.max_concurrent_sequences,
                planned_concurrency=size.planned_concurrency,
                max_output_tokens_per_second_per_replica=size.max_output_tokens_per_second,
                requests_per_second_per_replica=size.requests_per_second,
                ttft_ms=_ms(size.ttft_s),
                itl_ms=_ms(size.itl_s),
                replicas_min=floor,
                replicas_needed=placed[name],
                slo_feasible=size.slo_met and not (used and service_reasons),
                reasons=size.reasons or (service_reasons if used else []),
            )
        )
    return entries, at_peak, at_floor


def _template(pool: GpuPoolSpec, catalog: Catalog) -> InstanceType:
    """The instance type a pool is planned and priced on: its first (the autoscaler's node template)."""
    return catalog.instance_types[pool.instance_types[0]]


def plan_stack(spec: StackSpec, catalog: Catalog) -> StackPlan:
    pools = {pool.name: pool for pool in spec.gpu_pools}
    entries: list[ServicePoolPlan] = []
    nodes_at_peak: dict[str, float] = dict.fromkeys(pools, 0.0)
    nodes_at_floor: dict[str, float] = dict.fromkeys(pools, 0.0)
    for service in spec.services:
        service_entries, at_peak, at_floor = _plan_service(service, pools, catalog)
        entries += service_entries
        for name in at_peak:
            nodes_at_peak[name] += at_peak[name]
            nodes_at_floor[name] += at_floor[name]
    pool_plans = _pool_plans(spec, catalog, nodes_at_floor, nodes_at_peak)
    by_name = {pool.name: pool for pool in pool_plans}
    for entry in entries:
        pool_plan = by_name[entry.pool]
        if entry.replicas_needed and pool_plan.nodes_at_peak > pool_plan.max_size:
            entry.slo_feasible = False
            entry.reasons.append(
                f"pool {entry.pool} needs {pool_plan.nodes_at_peak} nodes at peak but its maxSize is {pool_plan.max_size}"
            )
    return StackPlan(
        environment=spec.environment, services=entries, pools=pool_plans, cost=_cost(spec, catalog, pool_plans)
    )


def _ms(seconds: float | None) -> float | None:
    if seconds is None or math.isinf(seconds):
        return None
    return seconds * 1000


def _pool_plans(
    spec: StackSpec, catalog: Catalog, nodes_at_floor: dict[str, float], nodes_needed: dict[str, float]
) -> list[PoolPlan]:
    """Each pool at its min and max size, with the services at their minimum replicas, and at peak."""
    plans = []
    for pool in spec.gpu_pools:
        at_floor = min(pool.max_size, max(pool.min_size, math.ceil(nodes_at_floor[pool.name] - 1e-9)))
        at_peak = max(pool.min_size, math.ceil(nodes_needed[pool.name] - 1e-9))
        plans.append(
            PoolPlan(
                name=pool.name,
                instance_type=pool.instance_types[0],
                capacity_type=pool.capacity_type,
                gpus_per_node=_template(pool, catalog).gpu_count,
                min_size=pool.min_size,
                max_size=pool.max_size,
                nodes_at_min_replicas=at_floor,
                nodes_at_peak=at_peak,
                hourly_usd_min=pool_usd_per_hour(catalog, pool, pool.min_size),
                hourly_usd_max=pool_usd_per_hour(catalog, pool, pool.max_size),
                hourly_usd_at_min_replicas=pool_usd_per_hour(catalog, pool, at_floor),
                hourly_usd_at_peak=pool_usd_per_hour(catalog, pool, min(at_peak, pool.max_size)),
            )
        )
    system = spec.cluster.system_pool
    plans.append(
        PoolPlan(
            name="system",
            instance_type=system.instance_types[0],
            capacity_type="onDemand",
            gpus_per_node=0,
            min_size=system.min_size,
            max_size=system.max_size,
            nodes_at_min_replicas=system.min_size,
            nodes_at_peak=system.min_size,
            hourly_usd_min=system_pool_usd_per_hour(catalog, spec, system.min_size),
            hourly_usd_max=system_pool_usd_per_hour(catalog, spec, system.max_size),
            hourly_usd_at_min_replicas=system_pool_usd_per_hour(catalog, spec, system.min_size),
            hourly_usd_at_peak=system_pool_usd_per_hour(catalog, spec, system.min_size),
        )
    )
    return plans


def _cost(spec: StackSpec, catalog: Catalog, pools: list[PoolPlan]) -> CostPlan:
    fixed = fixed_usd_per_hour(catalog, spec)
    hours = catalog.prices.hours_per_month.value
    low = fixed + sum(p.hourly_usd_min for p in pools)
    high = fixed + sum(p.hourly_usd_max for p in pools)
    at_floor = fixed + sum(p.hourly_usd_at_min_replicas for p in pools)
    at_peak = fixed + sum(p.hourly_usd_at_peak for p in pools)
    tokens = sum(s.workload.peak_requests_per_second * s.workload.output_tokens for s in spec.services)
    return CostPlan(
        fixed_hourly_usd=fixed,
        hourly_usd_min=low,
        hourly_usd_max=high,
        hourly_usd_at_min_replicas=at_floor,
        hourly_usd_at_peak=at_peak,
        monthly_usd_min=low * hours,
        monthly_usd_max=high * hours,
        peak_output_tokens_per_second=tokens,
        usd_per_million_output_tokens=at_peak / (tokens * 3600 / 1e6) if tokens > 0 else None,
    )

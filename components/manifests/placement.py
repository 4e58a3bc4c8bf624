"""Where a service's replicas run, as replica sets: the on-demand floor, the burst, and its revisions.

- The floor holds `replicas.min` replicas on the service's on-demand pools of the floor's shape, never
  on spot, so interruptions cannot take the service below its floor. It is not autoscaled.
- The burst scales from 0 to `replicas.max - replicas.min` on the queue signal. It may run on every
  pool of its shape, spot first in the service's order, on-demand after: pods prefer the pools in
  order, and Cluster Autoscaler's priority expander adds spot nodes first and on-demand nodes when
  spot has no capacity.
- Pools of another shape (another node type or parallelism) get their own burst set with that pool's plan;
  it scales only while the set before it has replicas it cannot place (its fallback).
- A canary or shadow revision is a fixed-size set on the pools of the first burst set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.manifests.scheduling import POOL_LABEL, pool_taints
from components.planner.plan import FLOOR_ROLES, ServicePoolPlan, StackPlan
from components.spec.models import GpuPoolSpec, RevisionSpec, ServiceSpec, StackSpec

Revision = Literal["stable", "canary", "shadow"]
Role = Literal["floor", "burst", "canary", "shadow"]

PREFERENCE_WEIGHTS = (100, 50, 25, 12, 6, 3, 1)
"""Node-affinity weights of a replica set's pools in preference order (the scheduler sums weights)."""


@dataclass(frozen=True)
class ReplicaSet:
    """Replicas of one service with one shape (GPUs, tensor and pipeline parallelism)."""

    name: str
    service: ServiceSpec
    role: Role
    pools: tuple[GpuPoolSpec, ...]
    plan: ServicePoolPlan
    replicas_min: int
    replicas_max: int
    fallback_of: str | None = None
    """The replica set whose unplaceable replicas make this one scale (None: scales on the queue alone)."""
    revision_spec: RevisionSpec | None = None
    tracing: bool = False
    """The engine sends request spans to the stack's OpenTelemetry collector."""

    @property
    def revision(self) -> Revision:
        return self.role if self.role in ("canary", "shadow") else "stable"  # type: ignore[return-value]

    @property
    def autoscaled(self) -> bool:
        return self.role == "burst"

    @property
    def engine_args(self) -> dict[str, Any]:
        """The service's engine arguments, with the revision's on top."""
        extra = self.revision_spec.engine_args if self.revision_spec else {}
        return {**self.service.engine_args, **extra}

    @property
    def model_revision(self) -> str | None:
        if self.revision_spec and self.revision_spec.model_revision:
            return self.revision_spec.model_revision
        return self.service.model.revision


Shape = tuple[str, int, int, int, int]


def _shape(entry: ServicePoolPlan) -> Shape:
    """Pools share a replica set only when the plan sized them alike: the same node type (the pool's
    template) and the same parallelism, hence the same engine arguments and resource requests."""
    return (
        entry.instance_type,
        entry.gpus_per_replica,
        entry.nodes_per_replica,
        entry.tensor_parallel_size,
        entry.pipeline_parallel_size,
    )


def replica_sets(service: ServiceSpec, spec: StackSpec, plan: StackPlan) -> list[ReplicaSet]:
    """The service's replica sets: floor (when replicas.min > 0), one burst set per shape, revisions."""
    pools = {pool.name: pool for pool in spec.gpu_pools}
    entries = {e.pool: e for e in plan.services if e.name == service.name}
    ordered = [entries[name] for name in service.pools]
    shapes: dict[Shape, list[ServicePoolPlan]] = {}
    for entry in ordered:
        shapes.setdefault(_shape(entry), []).append(entry)

    sets: list[ReplicaSet] = []
    tracing = spec.observability.collects_traces
    floor_entry = next(e for e in ordered if e.role in FLOOR_ROLES)
    if service.replicas.min > 0:
        same_shape = shapes[_shape(floor_entry)]
        on_demand = [e for e in same_shape if e.capacity_type == "onDemand"] or [floor_entry]
        sets.append(
            ReplicaSet(
                name=f"{service.name}-floor",
                service=service,
                tracing=tracing,
                role="floor",
                pools=tuple(pools[e.pool] for e in on_demand),
                plan=on_demand[0],
                replicas_min=service.replicas.min,
                replicas_max=service.replicas.min,
            )
        )
    burst_max = service.replicas.max - service.replicas.min
    previous: str | None = None
    if burst_max > 0:
        for index, group in enumerate(shapes.values()):
            name = f"{service.name}-burst" if index == 0 else f"{service.name}-burst-{index + 1}"
            sets.append(
                ReplicaSet(
                    name=name,
                    service=service,
                    tracing=tracing,
                    role="burst",
                    pools=tuple(pools[e.pool] for e in group),
                    plan=group[0],
                    replicas_min=0,
                    replicas_max=burst_max,
                    fallback_of=previous,
                )
            )
            previous = name
    first_group = next(iter(shapes.values()))
    for role, revision in (("canary", service.canary), ("shadow", service.shadow)):
        if revision is not None:
            sets.append(
                ReplicaSet(
                    name=f"{service.name}-{role}",
                    service=service,
                    tracing=tracing,
                    role=role,  # type: ignore[arg-type]
                    pools=tuple(pools[e.pool] for e in first_group),
                    plan=first_group[0],
                    replicas_min=revision.replicas,
                    replicas_max=revision.replicas,
                    revision_spec=revision,
                )
            )
    return sets


def node_affinity(pools: tuple[GpuPoolSpec, ...]) -> dict[str, Any]:
    """Only these pools, preferred in order (no preference to state when there is one)."""
    affinity: dict[str, Any] = {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [p.name for p in pools]}]}
            ]
        }
    }
    if len(pools) > 1:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {
                "weight": PREFERENCE_WEIGHTS[min(i, len(PREFERENCE_WEIGHTS) - 1)],
                "preference": {"matchExpressions": [{"key": POOL_LABEL, "operator": "In", "values": [pool.name]}]},
            }
            for i, pool in enumerate(pools)
        ]
    return affinity


def tolerations(pools: tuple[GpuPoolSpec, ...]) -> list[dict[str, str]]:
    """Exactly the taints of these pools (the same function made the nodes' taints)."""
    seen: dict[tuple[str, str, str], dict[str, str]] = {}
    for pool in pools:
        for taint in pool_taints(pool):
            seen.setdefault((taint.key, taint.value, taint.effect), taint.toleration())
    return list(seen.values())

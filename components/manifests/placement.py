"""Where a service's replicas run, as replica sets: the on-demand floor, the burst, and its revisions.

- The floor holds `replicas.min` replicas on the service's on-demand pools of the floor's shape, never
  on spot, so interruptions cannot take the service below its floor. It is not autoscaled.
- The burst scales from 0 to `replicas.max - replicas.min` on the queue signal, as a chain of burst sets.
  Pools share a set only when they have one shape (node type and parallelism: one plan, one pod
  template) and one capacity type; every spot set comes before every on-demand set, spot sets in the
  order of the service's `pools`, then on-demand sets in that order. prod's chat, pools [h100-spot,
  h200-spot, a100-spot, h100-ondemand], bursts on `chat-burst` (h100-spot), then `chat-burst-2`
  (h200-spot), `chat-burst-3` (a100-spot) and last `chat-burst-4` (h100-ondemand). A set of several
  pools prefers them in the service's order.
- The first set scales on the load; each later set is the fallback of the one before it
  (`fallback_of`): it runs one replica per replica of that set that could not be placed for a while
  (components/manifests/autoscaling.py), so the chain runs the first set's count in all and an on-demand
  node is added only once no spot pool could place the replicas. Spot and on-demand pools are in separate
  sets for that: a pending pod fits only its own set's pools, so Cluster Autoscaler's priority expander
  (spot first) cannot answer a spot set's pending pod with an on-demand node of the same shape before
  the spot fallbacks of other shapes were tried. (Ray Serve, whose autoscaler knows no order of groups,
  puts the spot and on-demand sets of one node type back in one worker group: ray_serve.py.)
- A canary or shadow revision is a fixed-size set on the pools of the service's first shape, spot and
  on-demand together (the pools of the first burst set and of the on-demand set of that shape).
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


def burst_groups(ordered: list[ServicePoolPlan]) -> list[list[ServicePoolPlan]]:
    """The pools of the burst sets, in chain order: one group per shape and capacity type, every spot
    group before every on-demand group, each kind in the order of its first pool in `ordered` (the
    service's `pools`), and within a group the pools in that order."""
    groups: dict[tuple[bool, Shape], list[ServicePoolPlan]] = {}
    for entry in ordered:
        groups.setdefault((entry.capacity_type != "spot", _shape(entry)), []).append(entry)
    return [groups[key] for key in sorted(groups, key=lambda key: key[0])]


def replica_sets(service: ServiceSpec, spec: StackSpec, plan: StackPlan) -> list[ReplicaSet]:
    """The service's replica sets: floor (when replicas.min > 0), the chain of burst sets (one per shape
    and capacity type, spot first), revisions."""
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
        for index, group in enumerate(burst_groups(ordered)):
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

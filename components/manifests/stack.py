"""Every serving object of a stack, grouped by what must exist in the cluster before it is applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.catalog import Catalog
from components.manifests import serving as s
from components.manifests.autoscaling import load_signal, scaled_object
from components.manifests.monitoring import METRICS_PORTS, pod_monitor
from components.manifests.placement import replica_sets
from components.manifests.traffic import http_route
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec

WORKLOAD_KINDS = {"Deployment", "LeaderWorkerSet"}
BUILT_IN_GROUPS = {"", "apps", "policy", "batch", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io"}
"""API groups the API server serves without an operator's CRDs."""


@dataclass
class ServiceObjects:
    """One service's objects: `core` (built-in kinds) first, then each custom kind after its operator."""

    core: list[dict[str, Any]] = field(default_factory=list)
    custom: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """kind -> objects (RayService, LeaderWorkerSet, ScaledObject, HTTPRoute)."""

    def add(self, obj: dict[str, Any]) -> None:
        group = obj["apiVersion"].rpartition("/")[0]
        if group in BUILT_IN_GROUPS:
            self.core.append(obj)
        else:
            self.custom.setdefault(obj["kind"], []).append(obj)

    def all(self) -> list[dict[str, Any]]:
        return self.core + [obj for objects in self.custom.values() for obj in objects]


def engine_objects(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    if service.engine == "vllm":
        from components.manifests.vllm import vllm_objects

        return vllm_objects(service, spec, plan, catalog)
    if service.engine == "triton":
        from components.manifests.triton import triton_objects

        return triton_objects(service, spec, plan, catalog)
    from components.manifests.ray_serve import ray_serve_objects

    return ray_serve_objects(service, spec, plan, catalog)


def service_objects(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> ServiceObjects:
    """The engine's workloads and Services, the burst sets' ScaledObjects and the service's HTTPRoute.
    The ServiceAccount is not here: its role ARN is only known once the platform exists."""
    result = ServiceObjects()
    workloads = engine_objects(service, spec, plan, catalog)
    for obj in workloads:
        result.add(obj)
    targets = {obj["metadata"]["name"]: obj for obj in workloads if obj["kind"] in WORKLOAD_KINDS}
    sets = replica_sets(service, spec, plan)
    floor = sum(r.replicas_min for r in sets if r.role == "floor")
    by_name = {r.name: r for r in sets}
    for replica_set in sets:
        if replica_set.autoscaled and load_signal(replica_set, catalog) is not None and replica_set.name in targets:
            previous = by_name[replica_set.fallback_of] if replica_set.fallback_of else None
            result.add(scaled_object(replica_set, targets[replica_set.name], floor, catalog, previous))
    result.add(http_route(service))
    return result


def shared_objects(spec: StackSpec) -> list[dict[str, Any]]:
    """The serving namespace and, with the metrics stack, a PodMonitor per engine in use."""
    objects = [s.namespace()]
    if spec.observability.enabled:
        engines = dict.fromkeys(service.engine for service in spec.services if service.engine in METRICS_PORTS)
        objects += [pod_monitor(engine) for engine in engines]
    return objects

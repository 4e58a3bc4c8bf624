"""Which vLLM service of which stack a local run serves, and what the manifests generate for it.

The arguments and the labels come from one replica set (the service's first, as the manifests order
them), so the local server runs what that set's pods run and its series carry that set's labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.catalog import Catalog, load_catalog
from components.local.processes import LocalError
from components.manifests import alerts
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.vllm import vllm_args
from components.planner import plan_stack
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec
from components.stack import load_stack

LOCAL_ENGINE = "vllm"
"""The one engine with a CPU build that serves here; Ray Serve and Triton need GPUs or their own images."""


@dataclass(frozen=True)
class LocalService:
    """One vLLM service of a valid stack, planned, with the replica set whose pods the local run stands in for."""

    stack_path: Path
    spec: StackSpec
    plan: StackPlan
    catalog: Catalog
    service: ServiceSpec
    replica_set: ReplicaSet

    @property
    def container_args(self) -> list[str]:
        """The vLLM arguments the manifests give this replica set's containers (before the CPU mapping)."""
        return vllm_args(self.replica_set, self.catalog)

    def prometheus_rules(self) -> list[dict[str, Any]]:
        """The PrometheusRule objects the stack ships that bear on this service: its own and the fleet's."""
        wanted = {f"inferfleet-{self.service.name}", "inferfleet-fleet"}
        return [rule for rule in alerts.prometheus_rules(self.spec, self.plan, self.catalog)
                if rule["metadata"]["name"] in wanted]


def local_service(stack_path: Path, service_name: str | None) -> LocalService:
    """The named vLLM service of the stack (default: its first vLLM service).

    StackError (located problems) when the stack is invalid; LocalError when the service is missing or
    is not a vLLM service, naming the ones that could run.
    """
    if not stack_path.is_file():
        raise LocalError(f"no stack file at {stack_path}")
    catalog = load_catalog()
    spec = load_stack(stack_path, catalog).spec
    runnable = [svc for svc in spec.services if svc.engine == LOCAL_ENGINE]
    names = ", ".join(svc.name for svc in runnable) or "none"
    if service_name is None:
        if not runnable:
            raise LocalError(f"{stack_path} has no {LOCAL_ENGINE} service to run locally")
        service = runnable[0]
    else:
        found = [svc for svc in spec.services if svc.name == service_name]
        if not found:
            raise LocalError(f"{stack_path} has no service named {service_name!r}; its {LOCAL_ENGINE} services: {names}")
        service = found[0]
        if service.engine != LOCAL_ENGINE:
            raise LocalError(f"service {service_name!r} runs on {service.engine}; only {LOCAL_ENGINE} services run "
                             f"locally (on CPU). {stack_path}'s {LOCAL_ENGINE} services: {names}")
    plan = plan_stack(spec, catalog)
    sets = replica_sets(service, spec, plan)
    if not sets:
        raise LocalError(f"service {service.name!r} has no replica set in {stack_path}'s plan (no pool fits it?)")
    return LocalService(stack_path, spec, plan, catalog, service, sets[0])

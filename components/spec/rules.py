"""Cross-field rules that need only the spec itself (the catalog-aware ones live in the planner).

Each rule yields every problem it finds, so a user sees all of them in one run.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Iterator

from components.spec.models import StackSpec
from components.spec.network import SubnetPlanError, plan_subnets
from components.spec.problems import Problem

Rule = Callable[[StackSpec], Iterator[Problem]]


def unique_names(spec: StackSpec) -> Iterator[Problem]:
    for collection, items in (
        ("gpuPools", [pool.name for pool in spec.gpu_pools]),
        ("services", [service.name for service in spec.services]),
    ):
        yield from _duplicates(items, lambda index, collection=collection: (collection, index, "name"), f"{collection[:-1]} name")
    yield from _duplicates(spec.aws.availability_zones, lambda index: ("aws", "availabilityZones", index), "AZ")
    for s, service in enumerate(spec.services):
        yield from _duplicates(service.pools, lambda index, s=s: ("services", s, "pools", index), "pool")


def _duplicates(items: list[str], path_of: Callable[[int], tuple], what: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item in seen:
            yield Problem(path_of(index), f"duplicate {what} {item!r}")
        seen.add(item)


def pools_exist(spec: StackSpec) -> Iterator[Problem]:
    known = list(dict.fromkeys(pool.name for pool in spec.gpu_pools))
    for s, service in enumerate(spec.services):
        for p, name in enumerate(service.pools):
            if name not in known:
                yield Problem(("services", s, "pools", p), f"no GPU pool named {name!r}; pools: {', '.join(known)}")


def min_not_above_max(spec: StackSpec) -> Iterator[Problem]:
    system = spec.cluster.system_pool
    bounds = [(("cluster", "systemPool", "minSize"), system.min_size, system.max_size, "maxSize")]
    bounds += [(("gpuPools", i, "minSize"), pool.min_size, pool.max_size, "maxSize") for i, pool in enumerate(spec.gpu_pools)]
    bounds += [(("services", i, "replicas", "min"), svc.replicas.min, svc.replicas.max, "max") for i, svc in enumerate(spec.services)]
    for path, low, high, high_name in bounds:
        if low > high:
            yield Problem(path, f"{low} is above {high_name} {high}")


def warm_pools_on_single_type_on_demand(spec: StackSpec) -> Iterator[Problem]:
    """AWS refuses a warm pool on a group with spot instances or a mixed instances policy."""
    for i, pool in enumerate(spec.gpu_pools):
        if pool.warm_pool is None:
            continue
        path = ("gpuPools", i, "warmPool")
        if pool.capacity_type != "onDemand":
            yield Problem(path, "a warm pool needs capacityType onDemand: AWS refuses warm pools on groups with spot instances")
        elif len(pool.instance_types) != 1:
            yield Problem(path, "a warm pool needs exactly one instance type: AWS refuses warm pools with a mixed instances policy")
        if pool.warm_pool.state == "Hibernated" and pool.warm_pool.reuse_on_scale_in:
            yield Problem(
                (*path, "reuseOnScaleIn"),
                "must be false with state Hibernated: hibernation loses the instance store that holds a "
                "joined node's kubelet, containerd and weight cache",
            )
        headroom = pool.max_size - pool.min_size
        if 0 <= headroom < pool.warm_pool.size:
            yield Problem(
                (*path, "size"),
                f"{pool.warm_pool.size} warm instances but the pool can only grow by {headroom} "
                f"(maxSize {pool.max_size} - minSize {pool.min_size}); the extra ones would never serve",
            )


def warm_pools_need_al2023(spec: StackSpec) -> Iterator[Problem]:
    """The warm-pool user data defers nodeadm's join; Bottlerocket joins from its settings at boot."""
    if spec.cluster.gpu_ami_family == "al2023-nvidia":
        return
    for i, pool in enumerate(spec.gpu_pools):
        if pool.warm_pool is not None:
            yield Problem(("gpuPools", i, "warmPool"), "warm pools need cluster.gpuAmiFamily al2023-nvidia")


def vpc_cidr_fits_subnets(spec: StackSpec) -> Iterator[Problem]:
    try:
        plan_subnets(spec.network.vpc_cidr, len(spec.aws.availability_zones))
    except SubnetPlanError as error:
        yield Problem(("network", "vpcCidr"), str(error))


def zones_in_region(spec: StackSpec) -> Iterator[Problem]:
    for i, zone in enumerate(spec.aws.availability_zones):
        suffix = zone.removeprefix(spec.aws.region)
        if suffix == zone or len(suffix) != 1 or not suffix.isalpha():
            yield Problem(("aws", "availabilityZones", i), f"{zone!r} is not an AZ of region {spec.aws.region} (e.g. {spec.aws.region}a)")


def public_access_cidrs_valid(spec: StackSpec) -> Iterator[Problem]:
    cluster = spec.cluster
    for i, cidr in enumerate(cluster.public_access_cidrs):
        try:
            ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as error:
            yield Problem(("cluster", "publicAccessCidrs", i), f"not a valid IPv4 CIDR: {error}")
    if cluster.public_access_cidrs and cluster.endpoint_access == "private":
        yield Problem(("cluster", "publicAccessCidrs"), "has no effect with endpointAccess private")


def workload_fits_max_model_len(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        total = service.workload.input_tokens + service.workload.output_tokens
        if service.max_model_len is not None and total > service.max_model_len:
            yield Problem(
                ("services", i, "workload"),
                f"inputTokens + outputTokens = {total} exceeds maxModelLen {service.max_model_len}; such requests would be refused",
            )


def availability_needs_replicas(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        if service.slo and service.slo.availability and service.replicas.min < 1:
            yield Problem(
                ("services", i, "replicas", "min"),
                "a service with an availability SLO cannot scale to zero; set min to 1 or more",
            )


def tracing_endpoint_needs_tracing(spec: StackSpec) -> Iterator[Problem]:
    observability = spec.observability
    if observability.tracing_endpoint is not None and not observability.tracing:
        yield Problem(("observability", "tracingEndpoint"), "needs tracing: true (no collector runs to forward spans)")


def deploy_gate_needs_built_images(spec: StackSpec) -> Iterator[Problem]:
    if spec.deploy_gate.enabled and not spec.images.build:
        yield Problem(("deployGate", "enabled"), "needs images.build: true (the gate runs the project's gate image)")


def tag_keys_valid(spec: StackSpec) -> Iterator[Problem]:
    """Tag keys that differ only in case collide in several AWS APIs (e.g. Auto Scaling tags)."""
    counts = Counter(key.lower() for key in spec.tags)
    for key in spec.tags:
        if counts[key.lower()] > 1:
            yield Problem(("tags", key), "tag keys must differ by more than letter case")
        if key.lower().startswith("aws:"):
            yield Problem(("tags", key), "the aws: prefix is reserved for AWS")


SPEC_FIELDS_NOT_ENGINE_ARGS = {
    "tensor-parallel-size": "tensorParallelSize",
    "pipeline-parallel-size": "pipelineParallelSize",
    "max-model-len": "maxModelLen",
    "model": "model.name",
    "served-model-name": "model.name",
    "dtype": "model.dtype",
    "revision": "model.revision",
}
"""Flags the spec owns: the plan and the manifests read the spec field, so engineArgs may not fight it."""


def _fraction(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 1


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


PLANNED_ENGINE_ARGS = {
    "gpu-memory-utilization": (_fraction, "a number in (0, 1]"),
    "max-num-seqs": (_positive_int, "a positive integer"),
    "max-num-batched-tokens": (_positive_int, "a positive integer"),
    "kv-cache-dtype": (lambda v: v in ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"), "auto, fp8, fp8_e4m3 or fp8_e5m2"),
}
"""Engine flags the planner reads; the rest are checked against vLLM's own parser by the serving manifests."""


def engine_args_consistent(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        for revision, engine_args in service.engine_args_by_revision():
            prefix = ("services", i, *([revision] if revision else []), "engineArgs")
            for key, value in engine_args.items():
                flag = key.replace("_", "-")
                path = (*prefix, key)
                if flag in SPEC_FIELDS_NOT_ENGINE_ARGS:
                    owner = "modelRevision" if flag == "revision" and revision else SPEC_FIELDS_NOT_ENGINE_ARGS[flag]
                    where = f"services.{i}.{revision}" if revision else f"services.{i}"
                    yield Problem(path, f"set {where}.{owner} instead: the spec owns it")
                elif flag in PLANNED_ENGINE_ARGS and not PLANNED_ENGINE_ARGS[flag][0](value):
                    yield Problem(path, f"should be {PLANNED_ENGINE_ARGS[flag][1]} (got {value!r})")


ENGINE_SECTIONS = {"pipeline": "ray-serve", "triton": "triton"}
"""Service keys that only one engine reads."""


def engine_sections_match(spec: StackSpec) -> Iterator[Problem]:
    for i, service in enumerate(spec.services):
        for key, engine in ENGINE_SECTIONS.items():
            if getattr(service, key) and service.engine != engine:
                yield Problem(("services", i, key), f"only read by engine {engine}, but the service's engine is {service.engine}")
        stages = [stage.name for stage in service.pipeline]
        yield from _duplicates(stages, lambda s, i=i: ("services", i, "pipeline", s, "name"), "pipeline stage")
        for s, stage in enumerate(service.pipeline):
            if stage.replicas.min > stage.replicas.max:
                yield Problem(("services", i, "pipeline", s, "replicas", "min"), f"{stage.replicas.min} is above max {stage.replicas.max}")


def revisions_differ(spec: StackSpec) -> Iterator[Problem]:
    """A canary or shadow identical to the service would split traffic and test nothing."""
    for i, service in enumerate(spec.services):
        for key in ("canary", "shadow"):
            revision = getattr(service, key)
            if revision is None:
                continue
            same_model = revision.model_revision in (None, service.model.revision)
            if same_model and not revision.engine_args:
                yield Problem(("services", i, key), "differs from the service in nothing: give modelRevision or engineArgs")
            if service.engine == "ray-serve" and revision.model_revision not in (None, service.model.revision):
                yield Problem(
                    ("services", i, key, "modelRevision"),
                    "ray-serve serves one revision per RayService; canary the engineArgs, or use a second service",
                )


def private_endpoint_needs_runner(spec: StackSpec) -> Iterator[Problem]:
    """With a private API endpoint only something inside the VPC can create Kubernetes objects."""
    if spec.cluster.endpoint_access == "private" and spec.cluster.deploy_runner is None:
        yield Problem(
            ("cluster", "endpointAccess"),
            "private: the workloads stack must run inside the VPC; give cluster.deployRunner (its stateBackend) "
            "so the platform creates the runner that deploys it",
        )


SPEC_RULES: tuple[Rule, ...] = (
    unique_names,
    pools_exist,
    min_not_above_max,
    warm_pools_on_single_type_on_demand,
    warm_pools_need_al2023,
    vpc_cidr_fits_subnets,
    zones_in_region,
    public_access_cidrs_valid,
    workload_fits_max_model_len,
    availability_needs_replicas,
    tag_keys_valid,
    engine_args_consistent,
    engine_sections_match,
    revisions_differ,
    tracing_endpoint_needs_tracing,
    deploy_gate_needs_built_images,
    private_endpoint_needs_runner,
)


def check_spec(spec: StackSpec) -> list[Problem]:
    return [problem for rule in SPEC_RULES for problem in rule(spec)]

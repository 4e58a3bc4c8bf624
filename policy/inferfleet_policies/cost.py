"""Cost policies: GPU groups within a per-environment budget, the fleet's worst-case $/h under a
ceiling, cost-allocation tags everywhere, and warm pools no larger than a group can use."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from .common import (
    AUTOSCALING_GROUP,
    LAUNCH_TEMPLATE,
    SPOT,
    Resource,
    as_list,
    environment_of,
    tags_of,
)
from .framework import ANY_TYPE, resource_policy, stack_policy

GPU_BUDGET_PER_GROUP = {"dev": 8, "staging": 32, "prod": 48}
"""GPUs one Auto Scaling group may reach at its max size (p5.48xlarge has 8): a typo in maxSize
must not be able to order a rack of H100s."""
MAX_USD_PER_HOUR = {"dev": 50.0, "staging": 400.0, "prod": 2500.0}
"""The plan's worst-case $/h (every pool at max size: on-demand price for on-demand pools, spot price for
spot pools, plus the system pool and fixed costs) must stay under this ceiling."""
REQUIRED_COST_TAGS = ("owner", "costCenter")
TAGGABLE_PREFIXES = ("aws:",)
NOT_TAGGABLE = frozenset({
    "aws:autoscaling/lifecycleHook:LifecycleHook", "aws:cloudwatch/eventTarget:EventTarget",
    "aws:ec2/route:Route", "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy", "aws:eks/accessEntry:AccessEntry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation",
    "aws:iam/rolePolicy:RolePolicy", "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:kms/alias:Alias", "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning", "aws:sqs/queuePolicy:QueuePolicy",
})
"""AWS resource types that take no tags (sub-resources and attachments)."""
NAME_TAG = "Name"
GPU_BUDGET_KEY = "maxGpusPerGroup"
USD_CEILING_KEY = "maxUsdPerHour"


@lru_cache(maxsize=1)
def _instance_types() -> Mapping[str, Any]:
    """The project's catalog: GPUs per instance type and prices (facts kept once, in components/catalog)."""
    from components.catalog import load_catalog

    return load_catalog().instance_types


def group_instance_types(group: Mapping[str, Any], templates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Instance types an Auto Scaling group may launch: its mixed-instances overrides, else its launch
    template's type (templates keyed by Name tag: the template id is unknown until AWS creates it)."""
    mixed = group.get("mixedInstancesPolicy") or {}
    overrides = (mixed.get("launchTemplate") or {}).get("overrides") or []
    if overrides:
        return [str(o.get("instanceType")) for o in overrides if o.get("instanceType")]
    template = templates.get(tags_of(group).get(NAME_TAG, "")) or {}
    return as_list(template.get("instanceType"))


def _gpu_groups(resources: list[Resource]) -> Iterator[tuple[Resource, list[Any], bool]]:
    """(group, catalog rows of its GPU instance types, spot?) for every group that launches GPUs."""
    catalog = _instance_types()
    templates = {tags_of(r.props).get(NAME_TAG, ""): r.props for r in resources if r.type == LAUNCH_TEMPLATE}
    for group in (r for r in resources if r.type == AUTOSCALING_GROUP):
        rows = [catalog[t] for t in group_instance_types(group.props, templates) if t in catalog]
        rows = [row for row in rows if row.gpu_count > 0]
        if rows:
            spot = bool(group.props.get("mixedInstancesPolicy"))
            yield group, rows, spot


def _per_environment(config: Mapping[str, Any], key: str, defaults: Mapping[str, float]) -> float:
    value = config.get(key)
    return float(value) if isinstance(value, (int, float)) else defaults[environment_of(config)]


def gpu_budget(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    """Every GPU Auto Scaling group's max size, in GPUs of its largest instance type, is within the
    environment's per-group GPU budget (config maxGpusPerGroup): a typo in maxSize must not order a
    rack of H100s."""
    budget = _per_environment(config, GPU_BUDGET_KEY, GPU_BUDGET_PER_GROUP)
    for group, rows, _spot in _gpu_groups(resources):
        gpus = int(group.props.get("maxSize") or 0) * max(row.gpu_count for row in rows)
        if gpus > budget:
            yield f"group {group.name} may reach {gpus} GPUs; the budget is {budget:g} per group", group.urn


PLATFORM = "inferfleet:index:Platform"
PLAN_MAX_KEY = "hourlyUsdMax"


def _planned_max(resources: list[Resource]) -> float | None:
    """The plan's worst-case $/h as the Platform component records it (components/platform.py)."""
    for resource in resources:
        if resource.type == PLATFORM:
            value = (resource.props.get("plan") or {}).get(PLAN_MAX_KEY)
            if isinstance(value, (int, float)):
                return float(value)
    return None


def _groups_at_max(resources: list[Resource]) -> float:
    total = 0.0
    for group, rows, spot in _gpu_groups(resources):
        hourly = max(row.usd_per_hour(SPOT if spot else "on-demand") for row in rows)
        total += int(group.props.get("maxSize") or 0) * hourly
    return total


def max_hourly_cost(resources: list[Resource], config: Mapping[str, Any]) -> Iterator[tuple[str, str | None]]:
    """The plan's worst case (every pool at its maximum size, the system pool, the control plane and NAT)
    costs no more per hour than the environment's ceiling (config maxUsdPerHour): autoscaling bounds are a
    spending commitment. A program without the plan's record is judged by its GPU groups at max size on
    their dearest instance types."""
    ceiling = _per_environment(config, USD_CEILING_KEY, MAX_USD_PER_HOUR)
    planned = _planned_max(resources)
    total, what = (planned, "the plan's worst case") if planned is not None else (_groups_at_max(resources),
                                                                                "GPU groups at max size")
    if total > ceiling:
        yield f"{what} costs ${total:,.0f}/h; the ceiling is ${ceiling:,.0f}/h", None


def cost_tags(resource_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """Every taggable AWS resource carries the cost-allocation tags owner and costCenter, so the bill
    splits by team (GPU instances inherit them from their group and launch template)."""
    if not resource_type.startswith(TAGGABLE_PREFIXES) or resource_type in NOT_TAGGABLE:
        return
    tags = tags_of(props)
    missing = [tag for tag in REQUIRED_COST_TAGS if not tags.get(tag)]
    if missing:
        yield f"missing cost tag(s) {', '.join(missing)}"


def warm_pool_size(_type: str, props: Mapping[str, Any], _config: Any, _args: Any) -> Iterator[str]:
    """A warm pool is no larger than its group can use: its stopped instances beyond maxSize - minSize
    (or prepared capacity above maxSize) can never enter service but still pay for their EBS volumes."""
    warm = props.get("warmPool")
    if not warm:
        return
    min_size, max_size = int(props.get("minSize") or 0), int(props.get("maxSize") or 0)
    headroom = max_size - min_size
    if int(warm.get("minSize") or 0) > headroom:
        yield f"warm pool minSize {warm.get('minSize')} exceeds the group's headroom {headroom} (maxSize - minSize)"
    prepared = warm.get("maxGroupPreparedCapacity")
    if prepared is not None and int(prepared) > max_size:
        yield f"warm pool maxGroupPreparedCapacity {prepared} exceeds the group's maxSize {max_size}"


POLICIES = [
    stack_policy("gpu-budget", gpu_budget, {GPU_BUDGET_KEY: {"type": "number", "minimum": 0}}),
    stack_policy("max-hourly-cost", max_hourly_cost, {USD_CEILING_KEY: {"type": "number", "minimum": 0}}),
    resource_policy("cost-tags", ANY_TYPE, cost_tags),
    resource_policy("warm-pool-size", (AUTOSCALING_GROUP,), warm_pool_size),
]

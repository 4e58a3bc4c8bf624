"""Cost policies on the prod render."""

from __future__ import annotations

from pathlib import Path

import yaml

from components.catalog import load_catalog
from components.planner import plan_stack
from tests.policy.conftest import render_stack

ASG = "aws:autoscaling/group:Group"
POLICIES = ["gpu-budget", "max-hourly-cost", "cost-tags", "warm-pool-size"]


def test_prod_as_rendered_is_silent(prod, dev):
    for policy in POLICIES:
        assert prod.violations(policy) == [], policy
        assert dev.violations(policy) == [], policy


def test_group_over_gpu_budget_fires(prod):
    resources = prod.changed(ASG, lambda r: r.inputs.update(maxSize=40), only_first=False)
    found = prod.violations("gpu-budget", resources)
    assert found and all(v.type == ASG for v in found)


def test_a_plan_over_the_hourly_ceiling_fires(tmp_path):
    """Raise prod's H100 pools in the spec: the plan's worst case, recorded on the Platform component,
    breaks prod's ceiling, and the message quotes the plan's own figure."""
    raw = yaml.safe_load(Path("stacks/prod.yaml").read_text())
    for pool in raw["gpuPools"]:
        if pool["name"].startswith("h100"):
            pool["maxSize"] = 40
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(raw))
    bigger = render_stack(str(path))
    planned = plan_stack(bigger.spec, load_catalog()).cost.hourly_usd_max
    (violation,) = bigger.violations("max-hourly-cost")
    assert violation.enforcement == "mandatory"
    assert f"the plan's worst case costs ${round(planned, 2):,.0f}/h" in violation.message


def test_without_the_plans_record_the_gpu_groups_at_max_size_are_judged(prod):
    def forget_plan(resource):
        resource.inputs.pop("plan")

    resources = prod.changed("inferfleet:index:Platform", forget_plan)
    assert prod.violations("max-hourly-cost", resources) == []
    oversized = [r for r in resources if r.type == ASG]
    for group in oversized:
        group.inputs["maxSize"] = 40
    (violation,) = prod.violations("max-hourly-cost", resources)
    assert "GPU groups at max size" in violation.message


def test_missing_cost_tag_fires(prod):
    resources = prod.changed("aws:s3/bucket:Bucket", lambda r: r.inputs["tags"].pop("costCenter"))
    (violation,) = prod.violations("cost-tags", resources)
    assert violation.type == "aws:s3/bucket:Bucket" and "costCenter" in violation.message


def test_oversized_warm_pool_fires(prod):
    def oversize(resource):
        if resource.inputs.get("warmPool"):
            resource.inputs["warmPool"].update(minSize=4, maxGroupPreparedCapacity=9)

    resources = prod.changed(ASG, oversize, only_first=False)
    assert len(prod.violations("warm-pool-size", resources)) == 2

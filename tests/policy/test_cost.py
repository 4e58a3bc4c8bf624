"""Cost policies on the prod render."""

from __future__ import annotations

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


def test_fleet_over_hourly_ceiling_fires(prod):
    resources = prod.changed(ASG, lambda r: r.inputs.update(maxSize=40), only_first=False)
    (violation,) = prod.violations("max-hourly-cost", resources)
    assert "ceiling" in violation.message and violation.enforcement == "mandatory"


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

"""The whole program (`components.platform.deploy`) for each example stack, as `inferfleet render` runs it."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from fnmatch import fnmatchcase

import pytest

from components.aws.tags import stack_tags
from components.catalog import load_catalog
from components.render import render
from components.stack import load_stack
from tests.manifests.conftest import KUBERNETES_VERSION
from tests.manifests.validators import validate_object

STACKS = ["dev", "staging", "prod"]


@pytest.fixture(scope="module", params=STACKS)
def rendered(request):
    source = load_stack(f"stacks/{request.param}.yaml")
    return source.spec, render(source, load_catalog())


def of_type(resources, token):
    return [r for r in resources if r.type == token]


def _aws_class(token: str):
    _, module_path, kind = token.split(":")
    module = importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}")
    return getattr(module, kind, None)


def taggable(token: str) -> bool:
    """Whether the pulumi-aws resource takes `tags` (the provider's own schema, not a list kept here)."""
    if not token.startswith("aws:") or token.startswith("pulumi:providers"):
        return False
    cls = _aws_class(token)
    return cls is not None and "tags" in inspect.signature(cls._internal_init).parameters


def test_two_subnets_per_availability_zone(rendered):
    spec, result = rendered
    subnets = of_type(result.resources, "aws:ec2/subnet:Subnet")
    zones = sorted(s.inputs["availabilityZone"] for s in subnets)
    assert zones == sorted(spec.aws.availability_zones * 2)


def test_nat_gateways_follow_the_mode(rendered):
    spec, result = rendered
    expected = 1 if spec.network.nat_gateways == "single" else len(spec.aws.availability_zones)
    assert len(of_type(result.resources, "aws:ec2/natGateway:NatGateway")) == expected


def test_warm_pools_only_on_on_demand_pools_that_ask(rendered):
    spec, result = rendered
    groups = of_type(result.resources, "aws:autoscaling/group:Group")
    warm = {g.name for g in groups if g.inputs.get("warmPool")}
    asked = {g.name for g in groups for p in spec.gpu_pools if p.warm_pool and g.name.startswith(f"{spec.environment}-{p.name}")}
    assert warm == asked
    for pool in spec.gpu_pools:
        if pool.warm_pool:
            assert pool.capacity_type == "onDemand"


def test_warm_pool_groups_have_a_launch_hook_the_node_role_may_complete(rendered):
    spec, result = rendered
    groups = of_type(result.resources, "aws:autoscaling/group:Group")
    hooked = [g for g in groups if g.inputs.get("initialLifecycleHooks")]
    assert {g.name for g in hooked} == {g.name for g in groups if g.inputs.get("warmPool")}
    (node_role,) = [r for r in of_type(result.resources, "aws:iam/role:Role") if r.name.endswith("-cluster-node-role")]
    granted = [
        statement["Resource"]
        for policy in of_type(result.resources, "aws:iam/rolePolicy:RolePolicy")
        if node_role.urn in policy.options["dependsOn"]
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        if "autoscaling:CompleteLifecycleAction" in statement["Action"]
    ]
    (patterns,) = granted
    for group in hooked:
        account = f"arn:aws:autoscaling:{spec.aws.region}:123456789012"
        arn = f"{account}:autoScalingGroup:0a1b:autoScalingGroupName/{group.inputs['name']}"
        assert any(fnmatchcase(arn, pattern) for pattern in patterns), arn


def test_spot_pools_use_a_mixed_instances_policy_over_their_types(rendered):
    spec, result = rendered
    groups = of_type(result.resources, "aws:autoscaling/group:Group")
    for pool in spec.gpu_pools:
        (group,) = [g for g in groups if g.name.startswith(f"{spec.environment}-{pool.name}-")]
        policy = group.inputs.get("mixedInstancesPolicy")
        if pool.capacity_type == "spot":
            overrides = policy["launchTemplate"]["overrides"]
            assert [o["instanceType"] for o in overrides] == pool.instance_types
            assert policy["instancesDistribution"]["spotAllocationStrategy"] == "price-capacity-optimized"
            assert group.inputs["capacityRebalance"] is True
        else:
            assert policy is None


def test_every_launch_template_requires_imdsv2_and_encrypts_ebs(rendered):
    _, result = rendered
    templates = of_type(result.resources, "aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for template in templates:
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        for device in template.inputs["blockDeviceMappings"]:
            assert str(device["ebs"]["encrypted"]).lower() == "true"


def test_s3_and_eks_secrets_are_encrypted(rendered):
    _, result = rendered
    (cluster,) = of_type(result.resources, "aws:eks/cluster:Cluster")
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    buckets = of_type(result.resources, "aws:s3/bucket:Bucket")
    encryption = of_type(result.resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert buckets and len(encryption) == len(buckets)
    for config in encryption:
        assert config.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"


def tags_of(inputs: dict) -> dict:
    """An Auto Scaling group lists its tags as {key, value, propagateAtLaunch}; everything else maps them."""
    tags = inputs.get("tags") or {}
    if isinstance(tags, list):
        return {tag["key"]: tag["value"] for tag in tags}
    return tags


def test_every_taggable_resource_carries_the_spec_tags(rendered):
    spec, result = rendered
    expected = stack_tags(spec)
    missing = [f"{r.type} {r.name}" for r in result.resources if taggable(r.type) and not expected.items() <= tags_of(r.inputs).items()]
    assert missing == []


def test_auto_scaling_groups_propagate_the_spec_tags_to_instances(rendered):
    spec, result = rendered
    for group in of_type(result.resources, "aws:autoscaling/group:Group"):
        propagated = {t["key"] for t in group.inputs["tags"] if t["propagateAtLaunch"]}
        assert set(stack_tags(spec)) <= propagated, group.name


def test_no_security_group_ingress_from_the_whole_internet(rendered):
    _, result = rendered
    for group in of_type(result.resources, "aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs.get("ingress", []):
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), group.name
    for rule in of_type(result.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0", rule.name


def test_helm_chart_versions_are_pinned(rendered):
    _, result = rendered
    charts = [r for r in result.resources if r.type in ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart")]
    assert len(charts) >= 7
    for chart in charts:
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", str(chart.inputs.get("version"))), chart.name


def test_every_kubernetes_resource_uses_the_cluster_provider(rendered):
    spec, result = rendered
    (provider,) = [r for r in result.resources if r.type == "pulumi:providers:kubernetes"]
    for resource in result.resources:
        if resource.type.startswith("kubernetes:"):
            assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_aws_resources_use_the_explicit_provider_for_the_spec_region(rendered):
    spec, result = rendered
    (provider,) = [r for r in result.resources if r.type == "pulumi:providers:aws"]
    assert provider.inputs["region"] == spec.aws.region
    for resource in result.resources:
        if resource.type.startswith("aws:") and resource.custom:
            assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_every_child_is_parented_under_a_component(rendered):
    spec, result = rendered
    stack_urn_suffix = "pulumi:pulumi:Stack::inferfleet-" + spec.environment
    top = [r for r in result.resources if r.parent.endswith(stack_urn_suffix)]
    assert {r.type for r in top} <= {
        "inferfleet:index:Platform",
        "inferfleet:kubernetes:ClusterAddons",
        "inferfleet:kubernetes:ServingWorkloads",
        "pulumi:providers:aws",
        "pulumi:providers:kubernetes",
    }


def test_no_iam_policy_allows_every_action(rendered):
    _, result = rendered
    for resource in result.resources:
        for key in ("policy", "assumeRolePolicy"):
            document = resource.inputs.get(key)
            if isinstance(document, str) and document.startswith("{"):
                for statement in json.loads(document).get("Statement", []):
                    actions = statement.get("Action")
                    assert actions != "*" and "*" not in (actions if isinstance(actions, list) else [actions])


UNVALIDATED_KINDS = {("gateway.envoyproxy.io/v1alpha1", "EnvoyProxy")}
"""Kinds without a vendored CRD schema (Envoy Gateway's own configuration object)."""


def test_every_applied_kubernetes_object_passes_its_schema(rendered):
    """After the trip through Pulumi (what the provider would send), not just as generated."""
    _, result = rendered
    checked = 0
    for obj in result.manifests:
        if (obj["apiVersion"], obj["kind"]) not in UNVALIDATED_KINDS:
            validate_object(obj, KUBERNETES_VERSION)
            checked += 1
    assert checked == len(result.manifests) - 1

"""The deploy runner: admitted to the private API endpoint and nowhere else, with the least IAM its builds need,
running the workloads stack's preview or update with the policy pack."""

from __future__ import annotations

import json

import pytest
import yaml

from components.aws.deploy_runner import (
    BUILD_IMAGE,
    CLUSTER_ADMIN_POLICY,
    DeployRunner,
    DeployRunnerArgs,
    buildspec,
    runner_statements,
    secrets_provider,
    state_location,
)
from tests.infra.conftest import of_type, run_under_mocks

KEY = "arn:aws:kms:us-east-1:123456789012:key/1111-2222"


def args(**changes) -> DeployRunnerArgs:
    fields = dict(
        environment="prod", cluster_name="inferfleet-prod", region="us-east-1", vpc_id="vpc-1",
        subnet_ids=["subnet-a", "subnet-b"], cluster_security_group_id="sg-cluster",
        cluster_arn="arn:aws:eks:us-east-1:123456789012:cluster/inferfleet-prod",
        state_backend="s3://acme-state/inferfleet?region=us-east-1", pulumi_version="3.200.0",
        secrets_kms_key_arn=KEY, tags={"owner": "ml"},
    )
    fields.update(changes)
    return DeployRunnerArgs(**fields)


@pytest.fixture(scope="module")
def resources():
    return run_under_mocks(lambda: DeployRunner("runner", args()))


def test_state_backend_urls_give_the_bucket_and_prefix() -> None:
    assert state_location("s3://acme-state/inferfleet/team?region=us-east-1") == ("acme-state", "inferfleet/team")
    assert state_location("s3://acme-state") == ("acme-state", "")
    with pytest.raises(ValueError, match="not an S3 state backend URL"):
        state_location("https://api.pulumi.com")
    with pytest.raises(ValueError, match="DeployRunnerArgs.state_backend"):
        args(state_backend="file:///tmp/state")


def test_the_api_admits_the_runner_on_443_only(resources) -> None:
    (group,) = of_type(resources, "aws:ec2/securityGroup:SecurityGroup")
    assert not group.inputs.get("ingress")
    (rule,) = of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert rule.inputs["securityGroupId"] == "sg-cluster"
    assert (rule.inputs["ipProtocol"], rule.inputs["fromPort"], rule.inputs["toPort"]) == ("tcp", 443, 443)
    assert rule.inputs["referencedSecurityGroupId"].startswith("sg-")


def test_the_build_runs_in_the_private_subnets_as_its_own_role(resources) -> None:
    (project,) = of_type(resources, "aws:codebuild/project:Project")
    assert project.inputs["vpcConfig"]["subnets"] == ["subnet-a", "subnet-b"]
    assert project.inputs["environment"]["image"] == BUILD_IMAGE
    variables = {v["name"]: v["value"] for v in project.inputs["environment"]["environmentVariables"]}
    assert variables["PULUMI_VERSION"] == "3.200.0" and variables["INFERFLEET_SECRETS_PROVIDER"] == secrets_provider(KEY)
    (role,) = of_type(resources, "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_the_runner_administers_the_cluster_through_its_access_entry(resources) -> None:
    (entry,) = of_type(resources, "aws:eks/accessEntry:AccessEntry")
    (association,) = of_type(resources, "aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert entry.inputs["type"] == "STANDARD" and association.inputs["policyArn"] == CLUSTER_ADMIN_POLICY
    assert association.inputs["accessScope"] == {"type": "cluster"}


def test_the_role_may_touch_only_its_logs_sources_state_key_and_cluster() -> None:
    statements = runner_statements(
        partition="aws", region="us-east-1", account_id="123456789012", log_group_arn="arn:logs:group",
        source_bucket_arn="arn:aws:s3:::src", state_backend="s3://acme-state/inferfleet", secrets_kms_key_arn=KEY,
        cluster_arn="arn:eks:cluster", subnet_ids=["subnet-a"],
    )
    granted = {action: s.resources for s in statements for action in s.actions}
    assert granted["s3:PutObject"] == ["arn:aws:s3:::acme-state/inferfleet/*"]
    assert granted["s3:GetObject"] in (["arn:aws:s3:::src/*"], ["arn:aws:s3:::acme-state/inferfleet/*"])
    assert granted["kms:Decrypt"] == [KEY] and granted["eks:DescribeCluster"] == ["arn:eks:cluster"]
    wildcard = {action for s in statements if s.resources == ["*"] for action in s.actions}
    assert wildcard == {"ec2:CreateNetworkInterface", "ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces",
                        "ec2:DeleteNetworkInterface", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                        "ec2:DescribeVpcs"}, "only calls that take no resource ARN get '*'"
    (permission,) = [s for s in statements if s.actions == ["ec2:CreateNetworkInterfacePermission"]]
    assert permission.conditions == {"StringEquals": {"ec2:AuthorizedService": "codebuild.amazonaws.com"},
                                     "ArnEquals": {"ec2:Subnet": ["arn:aws:ec2:us-east-1:123456789012:subnet/subnet-a"]}}
    without_key = runner_statements(
        partition="aws", region="us-east-1", account_id="1", log_group_arn="g", source_bucket_arn="b",
        state_backend="s3://state-bucket", secrets_kms_key_arn=None, cluster_arn="c", subnet_ids=[])
    assert not [a for s in without_key for a in s.actions if a.startswith("kms:")]


def test_the_buildspec_previews_or_updates_the_workloads_stack_with_the_policy_pack() -> None:
    spec = yaml.safe_load(buildspec("prod"))
    commands = spec["phases"]["build"]["commands"]
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11"}
    assert 'pulumi login "$PULUMI_BACKEND_URL"' in commands and "make venv" in commands
    (run,) = [c for c in commands if c.startswith("case")]
    levels = "--policy-pack policy --policy-pack-config policy/config/prod.json"
    assert f'pulumi preview --stack "prod-workloads" {levels}' in run
    assert f'pulumi up --stack "prod-workloads" {levels}' in run
    assert any('--version "$PULUMI_VERSION"' in c for c in spec["phases"]["install"]["commands"])


def test_the_source_bucket_is_private_encrypted_versioned_and_short_lived(resources) -> None:
    (bucket,) = of_type(resources, "aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "inferfleet-prod-deploy-123456789012"
    (block,) = of_type(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert all(block.inputs[flag] for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                               "restrictPublicBuckets"))
    (lifecycle,) = of_type(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 7}


def test_an_environment_without_a_pack_config_runs_the_pack_at_its_default_levels() -> None:
    run = yaml.safe_load(buildspec("eu-prod"))["phases"]["build"]["commands"][-1]
    assert "--policy-pack policy --non-interactive" in run and "--policy-pack-config" not in run

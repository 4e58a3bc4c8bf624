"""The Amazon Managed Prometheus component on its own: a tagged workspace named for the environment and a
role that only Prometheus' service account may assume and that may only write to that workspace."""

from __future__ import annotations

import json

import pytest

from components.aws.managed_prometheus import (
    ManagedPrometheus,
    ManagedPrometheusArgs,
    remote_write_url,
    workspace_alias,
)
from tests.infra.conftest import of_type, run_under_mocks

ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/XYZ"


def args(**changes) -> ManagedPrometheusArgs:
    fields = dict(
        environment="staging",
        region="eu-west-1",
        oidc_provider_arn=f"arn:aws:iam::123456789012:oidc-provider/{ISSUER.removeprefix('https://')}",
        oidc_issuer_url=ISSUER,
        namespace="monitoring",
        service_account="prometheus",
        tags={"environment": "staging"},
    )
    fields.update(changes)
    return ManagedPrometheusArgs(**fields)


@pytest.fixture(scope="module")
def resources():
    return run_under_mocks(lambda: ManagedPrometheus("amp", args()), stack="staging", region="eu-west-1")


def test_one_tagged_workspace_named_for_the_environment(resources):
    (workspace,) = of_type(resources, "aws:amp/workspace:Workspace")
    assert workspace.inputs["alias"] == workspace_alias("staging") == "inferfleet-staging"
    assert workspace.inputs["tags"] == {"environment": "staging"}


def test_only_prometheus_service_account_may_write_and_only_to_the_workspace(resources):
    (role,) = of_type(resources, "aws:iam/role:Role")
    condition = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
    assert condition[f"{ISSUER.removeprefix('https://')}:sub"] == "system:serviceaccount:monitoring:prometheus"
    (policy,) = of_type(resources, "aws:iam/rolePolicy:RolePolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Action"] == ["aps:RemoteWrite"]
    (resource,) = statement["Resource"]
    assert resource.startswith("arn:aws:amp:eu-west-1:123456789012:workspace/amp-workspace-")


@pytest.mark.parametrize(
    "region,host",
    [
        ("us-east-1", "aps-workspaces.us-east-1.amazonaws.com"),
        ("cn-north-1", "aps-workspaces.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_remote_write_url_is_the_workspace_endpoint_plus_the_write_path(region, host):
    assert remote_write_url(region, "ws-123") == f"https://{host}/workspaces/ws-123/api/v1/remote_write"


def test_missing_environment_is_refused():
    with pytest.raises(ValueError, match="environment"):
        run_under_mocks(lambda: ManagedPrometheus("amp", args(environment="")))

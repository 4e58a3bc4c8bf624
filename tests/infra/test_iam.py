"""IRSA roles: trusted by one service account only, never `Action: "*"`."""

import json

import pytest

from components.aws.iam import IrsaRole, IrsaRoleArgs, PolicyStatement
from tests.infra.conftest import of_type

ISSUER = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC"


def args(**overrides) -> IrsaRoleArgs:
    fields = dict(
        oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
        oidc_issuer_url=ISSUER,
        namespace="kube-system",
        service_account="cluster-autoscaler",
        statements=[PolicyStatement(["autoscaling:SetDesiredCapacity"], ["arn:aws:autoscaling:*:*:*"])],
        tags={"owner": "ml"},
    )
    fields.update(overrides)
    return IrsaRoleArgs(**fields)


def test_trust_policy_names_the_service_account_and_audience(under_mocks):
    resources = under_mocks(lambda: IrsaRole("prod-ca", args()))
    (role,) = of_type(resources, "aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition == {
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:kube-system:cluster-autoscaler",
        "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
    }
    assert role.inputs["tags"] == {"owner": "ml"}
    (policy,) = of_type(resources, "aws:iam/rolePolicy:RolePolicy")
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Action"] == ["autoscaling:SetDesiredCapacity"]


def test_wildcard_action_refused():
    with pytest.raises(ValueError, match="an action of"):
        IrsaRole("prod-bad", args(statements=[PolicyStatement(["*"], ["*"])]))


def test_role_without_permissions_refused():
    with pytest.raises(ValueError, match="no permissions"):
        IrsaRole("prod-empty", args(statements=[]))

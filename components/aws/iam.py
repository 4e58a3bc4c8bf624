"""IAM roles for service accounts (IRSA): one role per workload, trusted only by its service account."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.spec.naming import role_name_args


@dataclass(frozen=True)
class PolicyStatement:
    actions: list[str]
    resources: list[str] | pulumi.Input[list[str]]
    effect: str = "Allow"
    conditions: dict | None = None


@dataclass
class IrsaRoleArgs:
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    namespace: str
    service_account: str
    statements: list[PolicyStatement] = field(default_factory=list)
    managed_policy_arns: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


def policy_json(statements: list[PolicyStatement]) -> pulumi.Output[str]:
    """An IAM policy document; `Action: "*"` is refused here, before AWS or the policy pack see it."""
    for statement in statements:
        if "*" in statement.actions:
            raise ValueError("IrsaRoleArgs.statements: an action of '*' is never allowed; name the actions")

    def document(resolved: list[list[str]]) -> str:
        body = []
        for statement, resources in zip(statements, resolved, strict=True):
            entry = {"Effect": statement.effect, "Action": statement.actions, "Resource": resources}
            if statement.conditions:
                entry["Condition"] = statement.conditions
            body.append(entry)
        return json.dumps({"Version": "2012-10-17", "Statement": body}, sort_keys=True)

    return pulumi.Output.all(*[pulumi.Output.from_input(s.resources) for s in statements]).apply(
        lambda resolved: document(list(resolved))
    )


class IrsaRole(pulumi.ComponentResource):
    """A role only `system:serviceaccount:<namespace>:<service_account>` can assume, through the cluster's OIDC."""

    role: aws.iam.Role
    arn: pulumi.Output[str]

    def __init__(self, name: str, args: IrsaRoleArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.namespace or not args.service_account:
            raise ValueError("IrsaRoleArgs.namespace and .service_account are required")
        if not args.statements and not args.managed_policy_arns:
            raise ValueError("IrsaRoleArgs: give statements or managed_policy_arns; a role with no permissions is a mistake")
        policy = policy_json(args.statements) if args.statements else None
        super().__init__("inferfleet:aws:IrsaRole", name, None, opts)
        subject = f"system:serviceaccount:{args.namespace}:{args.service_account}"
        trust = pulumi.Output.all(args.oidc_provider_arn, args.oidc_issuer_url).apply(
            lambda values: json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": values[0]},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                            "Condition": {
                                "StringEquals": {
                                    f"{values[1].removeprefix('https://')}:sub": subject,
                                    f"{values[1].removeprefix('https://')}:aud": "sts.amazonaws.com",
                                }
                            },
                        }
                    ],
                },
                sort_keys=True,
            )
        )
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=trust, tags=args.tags, opts=child,
                                 **role_name_args(f"{name}-role"))
        if policy is not None:
            aws.iam.RolePolicy(f"{name}-policy", role=self.role.id, policy=policy, opts=child)
        for index, arn in enumerate(args.managed_policy_arns):
            aws.iam.RolePolicyAttachment(f"{name}-managed-{index}", role=self.role.name, policy_arn=arn, opts=child)
        self.arn = self.role.arn
        self.register_outputs({"arn": self.arn})

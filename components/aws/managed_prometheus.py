"""An Amazon Managed Prometheus workspace that the cluster's Prometheus remote-writes to.

The in-cluster Prometheus keeps `retentionDays` on its volume; the workspace keeps the history when a
cluster is replaced and can be queried from outside it. Prometheus signs its writes with SigV4 as an
IRSA role that may only write to this one workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.iam import IrsaRole, IrsaRoleArgs, PolicyStatement
from components.spec.naming import cluster_name

REMOTE_WRITE_ACTION = "aps:RemoteWrite"


def workspace_alias(environment: str) -> str:
    return cluster_name(environment)


def dns_suffix(region: str) -> str:
    """AWS's DNS suffix for service endpoints in the region's partition."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def remote_write_url(region: str, workspace_id: str) -> str:
    """The workspace's remote-write endpoint: its Prometheus endpoint
    (`https://aps-workspaces.<region>.<suffix>/workspaces/<id>/`) plus `api/v1/remote_write`."""
    return f"https://aps-workspaces.{region}.{dns_suffix(region)}/workspaces/{workspace_id}/api/v1/remote_write"


@dataclass
class ManagedPrometheusArgs:
    environment: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    namespace: str
    """Namespace of Prometheus' service account."""
    service_account: str
    """Prometheus' service account: the only one that may assume the writer role."""
    tags: dict[str, str] = field(default_factory=dict)


class ManagedPrometheus(pulumi.ComponentResource):
    """The workspace and the role Prometheus writes to it with."""

    workspace: aws.amp.Workspace
    writer: IrsaRole
    remote_write_url: pulumi.Output[str]
    writer_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ManagedPrometheusArgs, opts: pulumi.ResourceOptions | None = None):
        if not args.environment or not args.region:
            raise ValueError("ManagedPrometheusArgs.environment and .region are required")
        super().__init__("inferfleet:aws:ManagedPrometheus", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.workspace = aws.amp.Workspace(
            f"{name}-workspace", alias=workspace_alias(args.environment), tags=args.tags, opts=child
        )
        self.writer = IrsaRole(
            f"{name}-writer",
            IrsaRoleArgs(
                oidc_provider_arn=args.oidc_provider_arn,
                oidc_issuer_url=args.oidc_issuer_url,
                namespace=args.namespace,
                service_account=args.service_account,
                statements=[PolicyStatement([REMOTE_WRITE_ACTION], self.workspace.arn.apply(lambda arn: [arn]))],
                tags=args.tags,
            ),
            opts=child,
        )
        self.remote_write_url = self.workspace.id.apply(lambda workspace: remote_write_url(args.region, workspace))
        self.writer_role_arn = self.writer.arn
        self.register_outputs({"remoteWriteUrl": self.remote_write_url, "writerRoleArn": self.writer_role_arn})

"""The AWS identities of the cluster's add-ons: IRSA roles for Cluster Autoscaler and the node termination
handler, and the Amazon Managed Prometheus workspace with its writer role.

They are AWS resources, so they belong to the platform stack (components/platform.py): the workloads stack,
which installs the add-ons from inside the VPC when the API endpoint is private, then needs no IAM
permission at all, only the role ARNs as stack outputs. Each role trusts one service account, named by the
caller from the charts it installs (this layer does not read the Kubernetes side's charts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.aws.iam import IrsaRole, IrsaRoleArgs, PolicyStatement
from components.aws.managed_prometheus import ManagedPrometheus, ManagedPrometheusArgs


def partition_of(region: str) -> str:
    return "aws-us-gov" if region.startswith("us-gov-") else "aws-cn" if region.startswith("cn-") else "aws"


def autoscaling_group_arn(region: str, group_name: str) -> str:
    """An Auto Scaling group's ARN by name, any account: the group's UUID is not known before it exists."""
    return f"arn:{partition_of(region)}:autoscaling:{region}:*:autoScalingGroup:*:autoScalingGroupName/{group_name}"


def autoscaler_statements(cluster_name: str, region: str) -> list[PolicyStatement]:
    """Cluster Autoscaler may resize and shrink only groups tagged as this cluster's (the auto-discovery
    tag, which EKS also puts on managed node groups), and read what it needs to simulate them."""
    owned = {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}}
    return [
        PolicyStatement(
            actions=["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            resources=[autoscaling_group_arn(region, "*")],
            conditions=owned,
        ),
        # Describe*/Get* calls of Auto Scaling and EC2 have no resource-level permissions: "*" is the
        # only resource AWS accepts for them.
        PolicyStatement(
            actions=[
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            resources=["*"],
        ),
        PolicyStatement(
            actions=["eks:DescribeNodegroup"],
            resources=[f"arn:{partition_of(region)}:eks:{region}:*:nodegroup/{cluster_name}/*/*"],
        ),
    ]


def termination_handler_statements(
    region: str, queue_arn: pulumi.Input[str], group_names: list[pulumi.Input[str]]
) -> list[PolicyStatement]:
    """Read and delete the interruption queue's messages, complete lifecycle actions of the GPU pools'
    groups, and look up instances and tags."""
    group_arns = pulumi.Output.all(*group_names).apply(
        lambda names: [autoscaling_group_arn(region, group) for group in names]
    )
    return [
        PolicyStatement(
            actions=["sqs:ReceiveMessage", "sqs:DeleteMessage"],
            resources=pulumi.Output.from_input(queue_arn).apply(lambda arn: [arn]),
        ),
        PolicyStatement(actions=["autoscaling:CompleteLifecycleAction"], resources=group_arns),
        # These Describe calls have no resource-level permissions: "*" is the only resource AWS accepts.
        PolicyStatement(
            actions=["ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeTags"],
            resources=["*"],
        ),
    ]


@dataclass(frozen=True)
class ServiceAccountRef:
    """A Kubernetes service account an IRSA role trusts."""

    namespace: str
    name: str


@dataclass
class AddonRolesArgs:
    environment: str
    cluster_name: str
    region: str
    oidc_provider_arn: pulumi.Input[str]
    oidc_issuer_url: pulumi.Input[str]
    autoscaler: ServiceAccountRef
    termination_handler: ServiceAccountRef
    interruption_queue_arn: pulumi.Input[str]
    asg_names: list[pulumi.Input[str]]
    """The GPU pools' groups, whose lifecycle actions the termination handler completes."""
    prometheus: ServiceAccountRef | None = None
    """Prometheus' service account, with a managed workspace to remote-write to; None (default): none."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("environment", "cluster_name", "region"):
            if not getattr(self, name):
                raise ValueError(f"AddonRolesArgs.{name}: required")


class AddonRoles(pulumi.ComponentResource):
    """One IRSA role per add-on that calls AWS, and the managed Prometheus workspace when asked."""

    autoscaler_role_arn: pulumi.Output[str]
    termination_handler_role_arn: pulumi.Output[str]
    managed_prometheus: ManagedPrometheus | None

    def __init__(self, name: str, args: AddonRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:aws:AddonRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        def irsa(role: str, account: ServiceAccountRef, statements: list[PolicyStatement]) -> IrsaRole:
            return IrsaRole(
                f"{name}-{role}-irsa",
                IrsaRoleArgs(
                    oidc_provider_arn=args.oidc_provider_arn,
                    oidc_issuer_url=args.oidc_issuer_url,
                    namespace=account.namespace,
                    service_account=account.name,
                    statements=statements,
                    tags=args.tags,
                ),
                opts=child,
            )

        autoscaler = irsa("cluster-autoscaler", args.autoscaler, autoscaler_statements(args.cluster_name, args.region))
        handler = irsa(
            "termination-handler",
            args.termination_handler,
            termination_handler_statements(args.region, args.interruption_queue_arn, args.asg_names),
        )
        self.autoscaler_role_arn = autoscaler.arn
        self.termination_handler_role_arn = handler.arn
        self.managed_prometheus = None
        if args.prometheus is not None:
            self.managed_prometheus = ManagedPrometheus(
                f"{name}-managed-prometheus",
                ManagedPrometheusArgs(
                    environment=args.environment,
                    region=args.region,
                    oidc_provider_arn=args.oidc_provider_arn,
                    oidc_issuer_url=args.oidc_issuer_url,
                    namespace=args.prometheus.namespace,
                    service_account=args.prometheus.name,
                    tags=args.tags,
                ),
                opts=child,
            )
        self.register_outputs({
            "autoscalerRoleArn": self.autoscaler_role_arn,
            "terminationHandlerRoleArn": self.termination_handler_role_arn,
        })

"""The VPC the cluster lives in: private subnets for nodes and pods, public subnets for NAT and
internet-facing load balancers.

Private route tables are one per AZ in both NAT modes, each pointing at the NAT that serves its AZ.
With `single`, the one NAT sits in the first AZ under the same names `perAz` uses for that AZ, so
that moving dev to `perAz` adds NATs and repoints routes instead of replacing the one in service.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.aws.tags import named
from components.spec.models import StackSpec
from components.spec.naming import role_name_args
from components.spec.network import SubnetPlan, SubnetPlanError, plan_subnets

NatMode = Literal["single", "perAz"]
NAT_MODES: tuple[str, ...] = ("single", "perAz")
MIN_AVAILABILITY_ZONES = 2
"""EKS requires subnets in at least two AZs."""

INTERFACE_ENDPOINT_SERVICES: tuple[str, ...] = ("ecr.api", "ecr.dkr", "sts", "logs")
"""What nodes reach without the NAT when the API endpoint is private: image manifests and auth
(ECR API/DKR; layers come from S3 through the gateway endpoint), IRSA tokens (STS) and log shipping."""
GATEWAY_ENDPOINT_SERVICE = "s3"
HTTPS_PORT = 443

FLOW_LOG_RETENTION_DAYS = 90
FLOW_LOG_TRAFFIC = "ALL"
FLOW_LOGS_PRINCIPAL = "vpc-flow-logs.amazonaws.com"
FLOW_LOG_ACTIONS: tuple[str, ...] = (
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
)
"""The actions of the AWS-documented delivery role (VPC User Guide, "IAM role for publishing flow logs to
CloudWatch Logs": CreateLogGroup, CreateLogStream, PutLogEvents, DescribeLogGroups, DescribeLogStreams)
that take a log-group resource, granted on our group only; logs:CreateLogGroup is left out: the group is
created here, not by the service."""
FLOW_LOG_ACCOUNT_ACTIONS: tuple[str, ...] = ("logs:DescribeLogGroups",)
"""The documented action with no resource type (Service Authorization Reference, CloudWatch Logs: its
Resource types column is empty, so only Resource "*" grants it; on a log-group ARN it grants nothing).
It lists log group names and settings of the account and region, no log data."""

ELB_ROLE_TAG = "kubernetes.io/role/elb"
INTERNAL_ELB_ROLE_TAG = "kubernetes.io/role/internal-elb"

_AVAILABILITY_ZONE = re.compile(r"^([a-z]{2}(-gov)?-[a-z]+-\d)[a-z]$")


def region_of(availability_zones: list[str]) -> str:
    """The one region the AZs belong to; endpoint service names are per region."""
    regions = set()
    for zone in availability_zones:
        match = _AVAILABILITY_ZONE.match(zone)
        if not match:
            raise ValueError(f"NetworkArgs.availability_zones: {zone!r} is not an AZ name like us-east-1a")
        regions.add(match.group(1))
    if len(regions) != 1:
        raise ValueError(f"NetworkArgs.availability_zones: AZs span regions {sorted(regions)}; a VPC lives in one")
    return regions.pop()


def endpoint_service_name(region: str, service: str) -> str:
    return f"com.amazonaws.{region}.{service}"


def nat_zones(availability_zones: list[str], mode: str) -> list[str]:
    """AZs that hold a NAT gateway."""
    return list(availability_zones) if mode == "perAz" else list(availability_zones[:1])


def nat_zone_for(zone: str, availability_zones: list[str], mode: str) -> str:
    """The AZ whose NAT carries `zone`'s outbound traffic: its own, or the single one."""
    return zone if mode == "perAz" else availability_zones[0]


def subnet_tags(tags: dict[str, str], name: str, cluster_name: str, public: bool) -> dict[str, str]:
    """Tags the AWS Load Balancer Controller and the in-tree service controller use to pick subnets:
    internet-facing load balancers go to public subnets, internal ones to private subnets."""
    role = ELB_ROLE_TAG if public else INTERNAL_ELB_ROLE_TAG
    return {**named(tags, name), role: "1", f"kubernetes.io/cluster/{cluster_name}": "shared"}


def flow_log_trust_policy(account_id: str, partition: str, region: str) -> str:
    """Only the flow logs service, and only for flow logs of this account (confused-deputy guard)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": FLOW_LOGS_PRINCIPAL},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account_id}:vpc-flow-log/*"},
                    },
                }
            ],
        },
        sort_keys=True,
    )


def flow_log_policy(log_group_arn: str) -> str:
    """Write access to one log group and its streams, and the account-level describe call the service
    makes, which IAM only grants on "*"."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteFlowLogGroup",
                    "Effect": "Allow",
                    "Action": list(FLOW_LOG_ACTIONS),
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],
                },
                {
                    "Sid": "DescribeLogGroups",
                    "Effect": "Allow",
                    "Action": list(FLOW_LOG_ACCOUNT_ACTIONS),
                    "Resource": "*",
                },
            ],
        },
        sort_keys=True,
    )


@dataclass
class NetworkArgs:
    environment: str
    vpc_cidr: str
    availability_zones: list[str]
    cluster_name: str
    nat_gateways: NatMode = "perAz"
    interface_endpoints: bool = True
    flow_logs: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_spec(cls, spec: StackSpec, cluster_name: str, tags: dict[str, str]) -> NetworkArgs:
        network = spec.network
        return cls(
            environment=spec.environment,
            vpc_cidr=network.vpc_cidr,
            availability_zones=list(spec.aws.availability_zones),
            cluster_name=cluster_name,
            nat_gateways=network.nat_gateways,
            interface_endpoints=spec.cluster.endpoint_access == "private",
            flow_logs=network.flow_logs if network.flow_logs is not None else spec.environment == "prod",
            tags=dict(tags),
        )

    def subnet_plan(self) -> SubnetPlan:
        try:
            return plan_subnets(self.vpc_cidr, len(self.availability_zones))
        except SubnetPlanError as error:
            raise ValueError(f"NetworkArgs.vpc_cidr: {self.vpc_cidr}: {error}") from None

    def validate(self) -> None:
        if not self.environment:
            raise ValueError("NetworkArgs.environment: required")
        if not self.cluster_name:
            raise ValueError("NetworkArgs.cluster_name: required (subnet tags name the cluster)")
        zones = self.availability_zones
        if len(zones) < MIN_AVAILABILITY_ZONES:
            raise ValueError(
                f"NetworkArgs.availability_zones: {len(zones)} given; EKS needs subnets in at least {MIN_AVAILABILITY_ZONES} AZs"
            )
        if len(set(zones)) != len(zones):
            raise ValueError(f"NetworkArgs.availability_zones: {zones} lists an AZ twice")
        region_of(zones)
        if self.nat_gateways not in NAT_MODES:
            raise ValueError(f"NetworkArgs.nat_gateways: {self.nat_gateways!r} is not one of {', '.join(NAT_MODES)}")
        self.subnet_plan()


class Network(pulumi.ComponentResource):
    """A VPC whose nodes have no public addresses: outbound through NAT, AWS APIs through endpoints
    where the cluster is private, and every flow recorded in prod."""

    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    vpc_cidr: str
    availability_zones: list[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        plan = args.subnet_plan()
        region = region_of(args.availability_zones)
        super().__init__("inferfleet:aws:Network", name, None, opts)
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        zones = list(args.availability_zones)

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags=named(tags, f"{name}-vpc"),
            opts=child,
        )
        self.vpc = vpc
        # Adopted and emptied: anything launched without a security group gets no traffic at all.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg", vpc_id=vpc.id, tags=named(tags, f"{name}-default"), opts=child
        )

        public_subnets: dict[str, aws.ec2.Subnet] = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        for zone, public_cidr, private_cidr in zip(zones, plan.public, plan.private, strict=True):
            public_subnets[zone] = aws.ec2.Subnet(
                f"{name}-public-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=public_cidr,
                # Only NAT gateways and load balancers live here, and they get their own addresses.
                map_public_ip_on_launch=False,
                tags=subnet_tags(tags, f"{name}-public-{zone}", args.cluster_name, public=True),
                opts=child,
            )
            private_subnets[zone] = aws.ec2.Subnet(
                f"{name}-private-{zone}",
                vpc_id=vpc.id,
                availability_zone=zone,
                cidr_block=private_cidr,
                map_public_ip_on_launch=False,
                tags=subnet_tags(tags, f"{name}-private-{zone}", args.cluster_name, public=False),
                opts=child,
            )

        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags=named(tags, f"{name}-igw"), opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, tags=named(tags, f"{name}-public"), opts=child
        )
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_routes.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        for zone, subnet in public_subnets.items():
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{zone}", subnet_id=subnet.id, route_table_id=public_routes.id, opts=child
            )

        nats: dict[str, aws.ec2.NatGateway] = {}
        for zone in nat_zones(zones, args.nat_gateways):
            eip = aws.ec2.Eip(
                f"{name}-nat-{zone}", domain="vpc", tags=named(tags, f"{name}-nat-{zone}"), opts=child
            )
            nats[zone] = aws.ec2.NatGateway(
                f"{name}-nat-{zone}",
                allocation_id=eip.id,
                subnet_id=public_subnets[zone].id,
                connectivity_type="public",
                tags=named(tags, f"{name}-nat-{zone}"),
                # A public NAT gateway needs the VPC's internet gateway to work.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )

        private_route_tables: list[aws.ec2.RouteTable] = []
        for zone, subnet in private_subnets.items():
            table = aws.ec2.RouteTable(
                f"{name}-private-{zone}", vpc_id=vpc.id, tags=named(tags, f"{name}-private-{zone}"), opts=child
            )
            aws.ec2.Route(
                f"{name}-private-{zone}-default",
                route_table_id=table.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nats[nat_zone_for(zone, zones, args.nat_gateways)].id,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{zone}", subnet_id=subnet.id, route_table_id=table.id, opts=child
            )
            private_route_tables.append(table)

        # Model weights and image layers are the bulk of the traffic; a gateway endpoint is free
        # and keeps them off the NAT gateways' per-GB charge.
        aws.ec2.VpcEndpoint(
            f"{name}-{GATEWAY_ENDPOINT_SERVICE}",
            vpc_id=vpc.id,
            service_name=endpoint_service_name(region, GATEWAY_ENDPOINT_SERVICE),
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags=named(tags, f"{name}-{GATEWAY_ENDPOINT_SERVICE}"),
            opts=child,
        )

        if args.interface_endpoints:
            endpoint_sg = aws.ec2.SecurityGroup(
                f"{name}-endpoints",
                vpc_id=vpc.id,
                description="HTTPS from inside the VPC to AWS interface endpoints",
                ingress=[
                    aws.ec2.SecurityGroupIngressArgs(
                        description="HTTPS from the VPC",
                        protocol="tcp",
                        from_port=HTTPS_PORT,
                        to_port=HTTPS_PORT,
                        cidr_blocks=[args.vpc_cidr],
                    )
                ],
                tags=named(tags, f"{name}-endpoints"),
                opts=child,
            )
            private_subnet_list = [subnet.id for subnet in private_subnets.values()]
            for service in INTERFACE_ENDPOINT_SERVICES:
                logical = f"{name}-{service.replace('.', '-')}"
                aws.ec2.VpcEndpoint(
                    logical,
                    vpc_id=vpc.id,
                    service_name=endpoint_service_name(region, service),
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=private_subnet_list,
                    security_group_ids=[endpoint_sg.id],
                    tags=named(tags, logical),
                    opts=child,
                )

        if args.flow_logs:
            self._flow_logs(name, args, vpc, region)

        self.vpc_id = vpc.id
        self.vpc_cidr = args.vpc_cidr
        self.availability_zones = zones
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets.values()]).apply(list)
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets.values()]).apply(list)
        self.nat_gateway_ids = pulumi.Output.all(*[n.id for n in nats.values()]).apply(list)
        self.register_outputs(
            {
                "vpcId": self.vpc_id,
                "vpcCidr": self.vpc_cidr,
                "availabilityZones": self.availability_zones,
                "publicSubnetIds": self.public_subnet_ids,
                "privateSubnetIds": self.private_subnet_ids,
                "natGatewayIds": self.nat_gateway_ids,
            }
        )

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, region: str) -> None:
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=f"/inferfleet/{args.environment}/vpc-flow-logs",
            retention_in_days=FLOW_LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        trust = identity.apply(
            lambda caller: flow_log_trust_policy(caller.account_id, caller.arn.split(":")[1], region)
        )
        role = aws.iam.Role(f"{name}-flow-logs", assume_role_policy=trust, tags=tags, opts=child,
                            **role_name_args(f"{name}-flow-logs"))
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs", role=role.id, policy=log_group.arn.apply(flow_log_policy), opts=child
        )
        aws.ec2.FlowLog(
            f"{name}-flow-logs",
            vpc_id=vpc.id,
            traffic_type=FLOW_LOG_TRAFFIC,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            tags=named(tags, f"{name}-flow-logs"),
            # Without the policy in place the first deliveries fail and the flow log reports an error.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

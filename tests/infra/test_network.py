"""The VPC under the recording mocks: subnets as planned, NAT per mode, endpoints when private, flow logs
when asked, load balancer subnet tags, no ingress from the internet, tags everywhere."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import cache

import pulumi
import pytest

from components.aws.network import (
    FLOW_LOG_RETENTION_DAYS,
    INTERFACE_ENDPOINT_SERVICES,
    Network,
    NetworkArgs,
    nat_zone_for,
    region_of,
)
from components.aws.tags import stack_tags
from components.spec import read_spec
from components.spec.network import plan_subnets
from tests.infra.conftest import of_type, run_under_mocks

ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]
TAGS = {"owner": "ml-platform", "inferfleet:environment": "prod", "inferfleet:managed-by": "pulumi"}
SUBNET = "aws:ec2/subnet:Subnet"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def network_args(**overrides) -> NetworkArgs:
    fields = dict(
        environment="prod",
        vpc_cidr="10.30.0.0/16",
        availability_zones=list(ZONES),
        cluster_name="inferfleet-prod",
        nat_gateways="perAz",
        interface_endpoints=True,
        flow_logs=True,
        tags=dict(TAGS),
    )
    fields.update(overrides)
    return NetworkArgs(**fields)


@cache
def recorded(**overrides):
    return run_under_mocks(lambda: Network("prod-network", network_args(**overrides)))


@cache
def spec(env: str):
    return read_spec(f"stacks/{env}.yaml").spec


@cache
def recorded_stack(env: str):
    args = NetworkArgs.from_spec(spec(env), f"inferfleet-{env}", stack_tags(spec(env)))
    return run_under_mocks(lambda: Network(f"{env}-network", args), stack=env)


def by_name(resources, token: str) -> dict:
    return {r.name: r for r in of_type(resources, token)}


def taggable(token: str) -> bool:
    """Whether the pulumi-aws resource takes `tags`: asked of the SDK, not listed by hand."""
    if not token.startswith("aws:"):
        return False
    _, module, kind = token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), kind, None)
    return cls is not None and "tags" in inspect.signature(cls._internal_init).parameters


def test_two_subnets_per_zone_with_exactly_the_planned_cidrs():
    subnets = by_name(recorded(), SUBNET)
    plan = plan_subnets("10.30.0.0/16", 3)
    assert len(subnets) == 6
    for zone, public, private in zip(ZONES, plan.public, plan.private, strict=True):
        assert subnets[f"prod-network-public-{zone}"].inputs["cidrBlock"] == public
        assert subnets[f"prod-network-private-{zone}"].inputs["cidrBlock"] == private
        for tier in ("public", "private"):
            subnet = subnets[f"prod-network-{tier}-{zone}"]
            assert subnet.inputs["availabilityZone"] == zone
            assert subnet.inputs["mapPublicIpOnLaunch"] is False


def test_subnets_carry_the_load_balancer_role_and_shared_cluster_tags():
    subnets = by_name(recorded(), SUBNET)
    for zone in ZONES:
        public = subnets[f"prod-network-public-{zone}"].inputs["tags"]
        private = subnets[f"prod-network-private-{zone}"].inputs["tags"]
        assert public["kubernetes.io/role/elb"] == "1" and "kubernetes.io/role/internal-elb" not in public
        assert private["kubernetes.io/role/internal-elb"] == "1" and "kubernetes.io/role/elb" not in private
        for tags in (public, private):
            assert tags["kubernetes.io/cluster/inferfleet-prod"] == "shared"
            assert "karpenter.sh/discovery" not in tags


def test_vpc_has_dns_support_and_hostnames_over_the_cidr():
    (vpc,) = of_type(recorded(), "aws:ec2/vpc:Vpc")
    assert vpc.inputs["cidrBlock"] == "10.30.0.0/16"
    assert vpc.inputs["enableDnsHostnames"] is True and vpc.inputs["enableDnsSupport"] is True


def test_per_az_mode_puts_a_nat_with_its_own_eip_in_each_public_subnet_and_routes_each_zone_to_its_own():
    resources = recorded()
    nats, eips = by_name(resources, NAT), by_name(resources, EIP)
    assert len(nats) == 3 and len(eips) == 3
    subnets, routes = by_name(resources, SUBNET), by_name(resources, ROUTE)
    for zone in ZONES:
        nat = nats[f"prod-network-nat-{zone}"]
        assert subnets[f"prod-network-public-{zone}"].urn in nat.options["dependsOn"]
        assert eips[f"prod-network-nat-{zone}"].urn in nat.options["dependsOn"]
        assert eips[f"prod-network-nat-{zone}"].inputs["domain"] == "vpc"
        route = routes[f"prod-network-private-{zone}-default"]
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        assert [urn for urn in route.options["dependsOn"] if "NatGateway" in urn] == [nat.urn]


def test_single_mode_has_one_nat_that_every_private_zone_routes_through():
    resources = recorded(nat_gateways="single")
    (nat,) = of_type(resources, NAT)
    assert len(of_type(resources, EIP)) == 1
    assert nat.name == f"prod-network-nat-{ZONES[0]}"
    private_routes = [r for r in of_type(resources, ROUTE) if "-private-" in r.name]
    assert len(private_routes) == 3
    for route in private_routes:
        assert nat.urn in route.options["dependsOn"]


def test_public_route_table_sends_the_default_route_to_the_internet_gateway():
    resources = recorded()
    (igw,) = of_type(resources, "aws:ec2/internetGateway:InternetGateway")
    route = by_name(resources, ROUTE)["prod-network-public-default"]
    assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert igw.urn in route.options["dependsOn"]
    associations = of_type(resources, "aws:ec2/routeTableAssociation:RouteTableAssociation")
    assert len(associations) == 6


def test_s3_gateway_endpoint_serves_the_private_route_tables():
    resources = recorded()
    (gateway,) = [e for e in of_type(resources, ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    assert gateway.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    tables = by_name(resources, ROUTE_TABLE)
    private = {tables[f"prod-network-private-{zone}"].urn for zone in ZONES}
    assert len(gateway.inputs["routeTableIds"]) == 3
    assert private <= set(gateway.options["dependsOn"])
    assert tables["prod-network-public"].urn not in gateway.options["dependsOn"]


def test_interface_endpoints_with_private_dns_in_the_private_subnets_when_the_cluster_is_private():
    resources = recorded()
    interface = [e for e in of_type(resources, ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    services = {e.inputs["serviceName"] for e in interface}
    assert services == {f"com.amazonaws.us-east-1.{s}" for s in ("ecr.api", "ecr.dkr", "sts", "logs")}
    (group,) = of_type(resources, SECURITY_GROUP)
    subnets = by_name(resources, SUBNET)
    for endpoint in interface:
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert len(endpoint.inputs["subnetIds"]) == 3
        for zone in ZONES:
            assert subnets[f"prod-network-private-{zone}"].urn in endpoint.options["dependsOn"]
            assert subnets[f"prod-network-public-{zone}"].urn not in endpoint.options["dependsOn"]
        assert group.urn in endpoint.options["dependsOn"]
    assert group.inputs["ingress"] == [
        {"cidrBlocks": ["10.30.0.0/16"], "protocol": "tcp", "fromPort": 443, "toPort": 443, "description": "HTTPS from the VPC"}
    ]


def test_no_interface_endpoints_or_their_security_group_when_the_endpoint_is_public():
    resources = recorded(interface_endpoints=False)
    endpoints = of_type(resources, ENDPOINT)
    assert [e.inputs["vpcEndpointType"] for e in endpoints] == ["Gateway"]
    assert of_type(resources, SECURITY_GROUP) == []
    assert len(INTERFACE_ENDPOINT_SERVICES) == 4


def test_flow_logs_record_all_traffic_to_a_90_day_log_group_through_a_narrow_role():
    resources = recorded()
    (flow_log,) = of_type(resources, FLOW_LOG)
    (log_group,) = of_type(resources, LOG_GROUP)
    (role,) = of_type(resources, ROLE)
    (policy,) = of_type(resources, ROLE_POLICY)
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "cloud-watch-logs"
    assert log_group.urn in flow_log.options["dependsOn"] and role.urn in flow_log.options["dependsOn"]
    assert policy.urn in flow_log.options["dependsOn"]
    assert log_group.inputs["retentionInDays"] == FLOW_LOG_RETENTION_DAYS == 90
    (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    statements = json.loads(policy.inputs["policy"])["Statement"]
    actions = [action for statement in statements for action in statement["Action"]]
    assert all(action.startswith("logs:") and "*" not in action for action in actions)
    assert "logs:PutLogEvents" in actions and "logs:CreateLogGroup" not in actions
    group_arn = flow_log.inputs["logDestination"]
    (write,) = [s for s in statements if "logs:PutLogEvents" in s["Action"]]
    assert write["Resource"] == [group_arn, f"{group_arn}:*"]


ACCOUNT_LEVEL_LOG_ACTIONS = {"logs:DescribeLogGroups"}
"""CloudWatch Logs actions with no resource type in the Service Authorization Reference: only
Resource "*" grants them."""


def test_flow_logs_role_grants_describe_log_groups_on_star_where_iam_can_grant_it():
    """DescribeLogGroups is in AWS's documented delivery role, but it takes no resource: granted on the
    log group's ARN it grants nothing. It must stand alone on "*", and nothing else may ride along."""
    (policy,) = of_type(recorded(), ROLE_POLICY)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    granted = {action: statement["Resource"] for statement in statements for action in statement["Action"]}
    assert set(granted) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "logs:DescribeLogGroups",
    }
    for action, resource in granted.items():
        if action in ACCOUNT_LEVEL_LOG_ACTIONS:
            assert resource == "*", action
        else:
            assert resource != "*" and "*" not in resource, action


def test_no_flow_log_resources_when_flow_logs_are_off():
    resources = recorded(flow_logs=False)
    for token in (FLOW_LOG, LOG_GROUP, ROLE, ROLE_POLICY):
        assert of_type(resources, token) == [], token


@pytest.mark.parametrize("overrides", [{}, {"nat_gateways": "single", "interface_endpoints": False, "flow_logs": False}])
def test_every_taggable_resource_has_the_stack_tags(overrides):
    resources = recorded(**overrides)
    checked = [r for r in resources if r.custom and taggable(r.type)]
    assert len(checked) >= 15
    for resource in checked:
        assert TAGS.items() <= (resource.inputs.get("tags") or {}).items(), resource.name


def test_no_security_group_admits_ingress_from_the_internet():
    resources = recorded()
    groups = of_type(resources, SECURITY_GROUP) + of_type(resources, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    assert len(groups) == 2
    for group in groups:
        for rule in group.inputs.get("ingress") or []:
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), group.name
            assert "::/0" not in rule.get("ipv6CidrBlocks", []), group.name
    assert of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") == []
    assert of_type(resources, "aws:ec2/securityGroupRule:SecurityGroupRule") == []


def test_children_are_parented_and_named_after_the_component():
    resources = recorded()
    (component,) = of_type(resources, "inferfleet:aws:Network")
    for resource in resources:
        if resource is not component:
            assert resource.parent == component.urn, resource.name
            assert resource.name.startswith("prod-network-"), resource.name


def test_outputs_list_the_subnet_ids_in_zone_order():
    seen: dict[str, list[str]] = {}

    def build():
        network = Network("prod-network", network_args())
        assert network.availability_zones == ZONES and network.vpc_cidr == "10.30.0.0/16"
        network.public_subnet_ids.apply(lambda ids: seen.setdefault("public", ids))
        network.private_subnet_ids.apply(lambda ids: seen.setdefault("private", ids))
        pulumi.Output.all(network.vpc_id).apply(lambda ids: seen.setdefault("vpc", ids))

    run_under_mocks(build)
    assert len(seen["public"]) == 3 and len(seen["private"]) == 3
    assert all(i.startswith("subnet-") for i in seen["public"] + seen["private"])
    assert set(seen["public"]).isdisjoint(seen["private"])
    assert seen["vpc"][0].startswith("vpc-")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"availability_zones": ["us-east-1a"]}, "NetworkArgs.availability_zones: 1 given"),
        ({"availability_zones": ["us-east-1a", "us-east-1a"]}, "NetworkArgs.availability_zones: .* twice"),
        ({"availability_zones": ["us-east-1a", "us-west-2a"]}, "NetworkArgs.availability_zones: AZs span regions"),
        ({"availability_zones": ["us-east-1a", "east"]}, "NetworkArgs.availability_zones: 'east'"),
        ({"vpc_cidr": "10.0.0.0/25"}, r"NetworkArgs.vpc_cidr: 10.0.0.0/25: /25 is too small"),
        ({"vpc_cidr": "10.0.0.0/8"}, "NetworkArgs.vpc_cidr: .*/16 to /28"),
        ({"vpc_cidr": "10.0.0.1/16"}, "NetworkArgs.vpc_cidr: .*not a valid IPv4 CIDR"),
        ({"nat_gateways": "none"}, "NetworkArgs.nat_gateways: 'none'"),
        ({"cluster_name": ""}, "NetworkArgs.cluster_name"),
        ({"environment": ""}, "NetworkArgs.environment"),
    ],
)
def test_invalid_args_raise_a_value_error_naming_the_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        network_args(**overrides)


def test_the_component_revalidates_args_changed_after_construction():
    args = network_args()
    args.availability_zones = ["us-east-1a"]
    with pytest.raises(ValueError, match="NetworkArgs.availability_zones"):
        Network("prod-network", args)


@pytest.mark.parametrize(
    ("env", "nat", "interface", "flow_logs"),
    [("prod", "perAz", True, True), ("dev", "single", False, False)],
)
def test_args_from_the_example_stacks(env, nat, interface, flow_logs):
    args = NetworkArgs.from_spec(spec(env), f"inferfleet-{env}", stack_tags(spec(env)))
    assert args.environment == env
    assert args.vpc_cidr == spec(env).network.vpc_cidr
    assert args.availability_zones == spec(env).aws.availability_zones
    assert (args.nat_gateways, args.interface_endpoints, args.flow_logs) == (nat, interface, flow_logs)
    assert args.tags == stack_tags(spec(env))


def test_flow_logs_setting_in_the_spec_wins_over_the_environment_default():
    prod, dev = spec("prod"), spec("dev")
    off = prod.model_copy(update={"network": prod.network.model_copy(update={"flow_logs": False})})
    on = dev.model_copy(update={"network": dev.network.model_copy(update={"flow_logs": True})})
    assert NetworkArgs.from_spec(off, "inferfleet-prod", {}).flow_logs is False
    assert NetworkArgs.from_spec(on, "inferfleet-dev", {}).flow_logs is True


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_example_stacks_build_the_network_their_spec_describes(env):
    resources = recorded_stack(env)
    stack = spec(env)
    zones = stack.aws.availability_zones
    plan = plan_subnets(stack.network.vpc_cidr, len(zones))
    cidrs = sorted(s.inputs["cidrBlock"] for s in of_type(resources, SUBNET))
    assert cidrs == sorted(plan.public + plan.private)
    assert len(of_type(resources, NAT)) == (len(zones) if stack.network.nat_gateways == "perAz" else 1)
    interface = [e for e in of_type(resources, ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert bool(interface) == (stack.cluster.endpoint_access == "private")
    assert bool(of_type(resources, FLOW_LOG)) == (env == "prod")
    expected = stack_tags(stack)
    for resource in resources:
        if resource.custom and taggable(resource.type):
            assert expected.items() <= resource.inputs["tags"].items(), resource.name


def test_region_and_nat_zone_helpers():
    assert region_of(["eu-west-1a", "eu-west-1b"]) == "eu-west-1"
    assert region_of(["us-gov-west-1a", "us-gov-west-1b"]) == "us-gov-west-1"
    assert nat_zone_for("us-east-1c", ZONES, "perAz") == "us-east-1c"
    assert nat_zone_for("us-east-1c", ZONES, "single") == "us-east-1a"

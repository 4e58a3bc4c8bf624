"""The EKS cluster under the recording mocks: pinned version and add-ons, encrypted secrets, control-plane
logs, endpoint exposure per stack, IRSA, one node role with only what nodes need, tags everywhere."""

import importlib
import inspect
import json
import re
from fnmatch import fnmatchcase
from functools import cache

import pulumi
import pytest

from components.aws.cluster import (
    CONTROL_PLANE_LOG_TYPES,
    NODE_POLICY_ARNS,
    SERVICE_IPV4_CIDR,
    Cluster,
    ClusterArgs,
    endpoint_flags,
    kubeconfig,
)
from components.aws.gpu_pool import group_tags
from components.aws.tags import stack_tags
from components.catalog.eks_versions import ADDON_NAMES, ADDON_VERSIONS, SUPPORTED_KUBERNETES_VERSIONS
from components.manifests.scheduling import system_node_labels
from components.mocks import MASK, install
from components.stack import load_stack
from tests.infra.conftest import of_type, run_under_mocks

PRIVATE_SUBNETS = ["subnet-0a", "subnet-0b", "subnet-0c"]
PUBLIC_SUBNETS = ["subnet-1a", "subnet-1b", "subnet-1c"]
EKS = "aws:eks/cluster:Cluster"
ADDON = "aws:eks/addon:Addon"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
EKS_BUILD = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")


@cache
def spec(env: str):
    return load_stack(f"stacks/{env}.yaml").spec


def cluster_args(env: str, **overrides) -> ClusterArgs:
    args = ClusterArgs.from_spec(spec(env), "vpc-0123", PRIVATE_SUBNETS, PUBLIC_SUBNETS, stack_tags(spec(env)))
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@cache
def recorded(env: str):
    return run_under_mocks(lambda: Cluster(f"{env}-cluster", cluster_args(env)), stack=env)


def one(resources, token):
    (resource,) = of_type(resources, token)
    return resource


def addons_by_name(resources) -> dict:
    return {r.inputs["addonName"]: r for r in of_type(resources, ADDON)}


def urn_of(resources, token, name):
    return next(r.urn for r in resources if r.type == token and r.name == name)


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_cluster_pins_the_spec_version_and_encrypts_secrets_with_its_own_rotated_key(env):
    resources = recorded(env)
    eks = one(resources, EKS)
    assert eks.inputs["name"] == f"inferfleet-{env}"
    assert eks.inputs["version"] == spec(env).cluster.kubernetes_version
    key = one(resources, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["description"]
    alias = one(resources, "aws:kms/alias:Alias")
    assert alias.inputs["name"] == f"alias/inferfleet-{env}-secrets"
    encryption = eks.inputs["encryptionConfig"]
    assert encryption["resources"] == ["secrets"]
    assert encryption["provider"]["keyArn"] == f"arn:aws:kms:us-east-1:123456789012:key/{alias.inputs['targetKeyId']}"
    assert key.urn in eks.options["dependsOn"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_all_control_plane_logs_go_to_a_log_group_with_retention_made_before_the_cluster(env):
    resources = recorded(env)
    eks = one(resources, EKS)
    assert sorted(eks.inputs["enabledClusterLogTypes"]) == sorted(
        ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    assert len(CONTROL_PLANE_LOG_TYPES) == 5
    log_group = one(resources, "aws:cloudwatch/logGroup:LogGroup")
    assert log_group.inputs["name"] == f"/aws/eks/inferfleet-{env}/cluster"
    assert log_group.inputs["retentionInDays"] == 90
    assert log_group.urn in eks.options["dependsOn"]


def test_prod_endpoint_is_private_only():
    vpc = one(recorded("prod"), EKS).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc
    assert vpc["subnetIds"] == PRIVATE_SUBNETS


def test_dev_public_endpoint_keeps_private_access_for_the_nodes():
    vpc = one(recorded("dev"), EKS).inputs["vpcConfig"]
    assert vpc["endpointPublicAccess"] is True
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["subnetIds"] == PRIVATE_SUBNETS


def test_public_access_cidrs_restrict_a_public_endpoint():
    def build():
        Cluster("dev-cluster", cluster_args("dev", public_access_cidrs=["203.0.113.0/24"]))

    vpc = one(run_under_mocks(build, stack="dev"), EKS).inputs["vpcConfig"]
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]


@pytest.mark.parametrize(
    ("mode", "flags"), [("private", (True, False)), ("public", (True, True)), ("publicAndPrivate", (True, True))]
)
def test_endpoint_flags_per_mode(mode, flags):
    assert endpoint_flags(mode) == flags


def test_access_entries_replace_the_aws_auth_config_map():
    eks = one(recorded("prod"), EKS)
    assert eks.inputs["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": True}
    assert eks.inputs["kubernetesNetworkConfig"] == {"serviceIpv4Cidr": SERVICE_IPV4_CIDR}


def test_oidc_provider_trusts_the_cluster_issuer_for_sts():
    resources = recorded("prod")
    provider = one(resources, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_system_node_group_is_sized_from_the_spec(env):
    resources = recorded(env)
    pool = spec(env).cluster.system_pool
    group = one(resources, "aws:eks/nodeGroup:NodeGroup")
    assert group.inputs["scalingConfig"] == {
        "minSize": pool.min_size,
        "desiredSize": max(pool.min_size, 1),
        "maxSize": pool.max_size,
    }
    assert group.inputs["instanceTypes"] == pool.instance_types
    assert group.inputs["diskSize"] == pool.disk_size_gib
    assert group.inputs["amiType"] == "AL2023_x86_64_STANDARD"
    assert group.inputs["labels"] == system_node_labels() == {"inferfleet.io/pool": "system"}
    assert group.inputs["subnetIds"] == PRIVATE_SUBNETS
    assert group.inputs["updateConfig"] == {"maxUnavailable": 1}


def test_node_access_entry_exists_before_the_managed_node_group():
    resources = recorded("prod")
    entry = one(resources, "aws:eks/accessEntry:AccessEntry")
    assert entry.inputs["type"] == "EC2_LINUX"
    assert entry.inputs["principalArn"].startswith("arn:aws:iam::123456789012:role/prod-cluster-node-role-")
    assert urn_of(resources, ROLE, "prod-cluster-node-role") in entry.options["dependsOn"]
    group = one(resources, "aws:eks/nodeGroup:NodeGroup")
    assert entry.urn in group.options["dependsOn"]
    assert group.inputs["nodeRoleArn"] == entry.inputs["principalArn"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_four_addons_at_the_pinned_versions(env):
    resources = recorded(env)
    addons = addons_by_name(resources)
    pinned = ADDON_VERSIONS[spec(env).cluster.kubernetes_version]
    assert set(addons) == set(ADDON_NAMES) == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}
    for name, addon in addons.items():
        assert addon.inputs["addonVersion"] == pinned[name]
        assert EKS_BUILD.match(addon.inputs["addonVersion"]), addon.inputs["addonVersion"]
        assert addon.inputs["resolveConflictsOnUpdate"] == "OVERWRITE"
        assert addon.inputs["clusterName"] == f"inferfleet-{env}"


def test_every_supported_version_pins_every_addon():
    assert "1.34" in SUPPORTED_KUBERNETES_VERSIONS
    for versions in ADDON_VERSIONS.values():
        assert set(versions) == set(ADDON_NAMES)
        assert all(EKS_BUILD.match(v) for v in versions.values())


def test_coredns_and_ebs_csi_wait_for_the_system_nodes():
    resources = recorded("prod")
    addons = addons_by_name(resources)
    group = one(resources, "aws:eks/nodeGroup:NodeGroup")
    assert group.urn in addons["coredns"].options["dependsOn"]
    assert group.urn in addons["aws-ebs-csi-driver"].options["dependsOn"]
    assert addons["vpc-cni"].urn in group.options["dependsOn"]


@pytest.mark.parametrize(
    ("addon", "service_account", "policy"),
    [
        ("vpc-cni", "aws-node", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
        (
            "aws-ebs-csi-driver",
            "ebs-csi-controller-sa",
            "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",
        ),
    ],
)
def test_addons_calling_aws_get_their_own_irsa_role(addon, service_account, policy):
    resources = recorded("prod")
    role = next(r for r in of_type(resources, ROLE) if r.name == f"prod-cluster-{addon}-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    (condition,) = [s["Condition"]["StringEquals"] for s in trust["Statement"]]
    assert f"system:serviceaccount:kube-system:{service_account}" in condition.values()
    attached = [a.inputs["policyArn"] for a in of_type(resources, ATTACHMENT) if a.parent == role.parent]
    assert attached == [policy]
    role_arn = f"arn:aws:iam::123456789012:role/{role.name}"
    assert addons_by_name(resources)[addon].inputs["serviceAccountRoleArn"].startswith(role_arn)


def test_kube_proxy_and_coredns_have_no_aws_role():
    addons = addons_by_name(recorded("prod"))
    assert "serviceAccountRoleArn" not in addons["kube-proxy"].inputs
    assert "serviceAccountRoleArn" not in addons["coredns"].inputs


def test_node_role_has_exactly_the_three_node_policies_and_an_instance_profile():
    resources = recorded("prod")
    node_role_urn = urn_of(resources, ROLE, "prod-cluster-node-role")
    attachments = of_type(resources, ATTACHMENT)
    attached = [a.inputs["policyArn"] for a in attachments if node_role_urn in a.options["dependsOn"]]
    assert sorted(attached) == sorted(
        [
            "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
            "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ]
    )
    assert sorted(attached) == sorted(NODE_POLICY_ARNS)
    profile = one(resources, "aws:iam/instanceProfile:InstanceProfile")
    assert node_role_urn in profile.options["dependsOn"]
    trust = json.loads(next(r for r in of_type(resources, ROLE) if r.urn == node_role_urn).inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_node_role_may_complete_lifecycle_actions_of_the_cluster_groups_only(env):
    resources = recorded(env)
    node_role = next(r for r in of_type(resources, ROLE) if r.name == f"{env}-cluster-node-role")
    cluster_urn = one(resources, "inferfleet:aws:Cluster").urn
    inline = [r for r in of_type(resources, "aws:iam/rolePolicy:RolePolicy") if r.parent == cluster_urn]
    (policy,) = [r for r in inline if node_role.urn in r.options["dependsOn"]]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    groups = f"arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:*:autoScalingGroupName/inferfleet-{env}-*"
    assert statement == {
        "Effect": "Allow",
        "Action": ["autoscaling:CompleteLifecycleAction"],
        "Resource": [groups],
        # Only groups tagged as this cluster's: the name pattern alone also covers `inferfleet-{env}-eu`'s.
        "Condition": {"StringEquals": {f"autoscaling:ResourceTag/kubernetes.io/cluster/inferfleet-{env}": "owned"}},
    }
    # The pattern matches a pool's group ARN as AWS (and the mocks) spell it, and not another cluster's.
    pool_group = f"{groups.split(':autoScalingGroup:')[0]}:autoScalingGroup:0a1b:autoScalingGroupName/inferfleet-{env}-a"
    assert fnmatchcase(pool_group, groups)
    assert not fnmatchcase(pool_group.replace(f"inferfleet-{env}-", "other-"), groups)
    # In place before the instance profile the GPU nodes launch with.
    profile = one(resources, "aws:iam/instanceProfile:InstanceProfile")
    assert policy.urn in profile.options["dependsOn"]


def test_lifecycle_grant_condition_names_a_tag_every_gpu_pool_group_carries():
    resources = recorded("prod")
    node_role = next(r for r in of_type(resources, ROLE) if r.name == "prod-cluster-node-role")
    (policy,) = [
        r for r in of_type(resources, "aws:iam/rolePolicy:RolePolicy") if node_role.urn in r.options["dependsOn"]
    ]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    ((key, value),) = statement["Condition"]["StringEquals"].items()
    assert key.startswith("autoscaling:ResourceTag/")
    tags = group_tags("prod-h100-ondemand", "inferfleet-prod", {}, {"pool": "h100"}, [], 8)
    assert tags[key.removeprefix("autoscaling:ResourceTag/")] == value


def test_cluster_role_is_trusted_by_eks_with_the_cluster_policy():
    resources = recorded("prod")
    role_urn = urn_of(resources, ROLE, "prod-cluster-cluster-role")
    role = next(r for r in resources if r.urn == role_urn)
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "eks.amazonaws.com"}
    attached = [a.inputs["policyArn"] for a in of_type(resources, ATTACHMENT) if role_urn in a.options["dependsOn"]]
    assert attached == ["arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"]


def iam_statements(resources):
    for resource in resources:
        for key in ("assumeRolePolicy", "policy"):
            if resource.type.startswith("aws:iam/") and key in resource.inputs:
                yield from json.loads(resource.inputs[key])["Statement"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_no_iam_statement_allows_every_action(env):
    statements = list(iam_statements(recorded(env)))
    assert len(statements) >= 4
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert "*" not in actions


def taggable(token: str) -> bool:
    """Whether the pulumi-aws resource behind `token` takes `tags`: asked of the SDK, not listed by hand."""
    _, module, kind = token.split(":")
    args_class = getattr(importlib.import_module(f"pulumi_aws.{module.split('/')[0]}"), f"{kind}Args")
    return "tags" in inspect.signature(args_class.__init__).parameters


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_every_taggable_resource_carries_the_stack_tags(env):
    resources = recorded(env)
    expected = stack_tags(spec(env))
    checked = 0
    for resource in resources:
        if resource.custom and resource.type.startswith("aws:") and taggable(resource.type):
            assert resource.inputs.get("tags") == expected, resource.name
            checked += 1
    assert checked >= 12


def test_kubeconfig_execs_aws_eks_get_token():
    config = kubeconfig("inferfleet-prod", "https://ABC.gr7.us-east-1.eks.amazonaws.com", "Q0E=", "us-east-1")
    assert config["apiVersion"] == "v1" and config["kind"] == "Config"
    (cluster,) = config["clusters"]
    assert cluster["cluster"] == {
        "server": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
        "certificate-authority-data": "Q0E=",
    }
    (context,) = config["contexts"]
    assert config["current-context"] == context["name"]
    (user,) = config["users"]
    assert context["context"] == {"cluster": cluster["name"], "user": user["name"]}
    exec_ = user["user"]["exec"]
    assert exec_["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_["command"] == "aws"
    assert exec_["args"] == [
        "eks", "get-token", "--cluster-name", "inferfleet-prod", "--region", "us-east-1", "--output", "json",
    ]
    assert "token" not in user["user"]


def test_kubeconfig_output_is_a_secret_built_from_the_cluster():
    monitor = install("inferfleet", "prod", "us-east-1")
    seen = {}

    @pulumi.runtime.test
    def program():
        cluster = Cluster("prod-cluster", cluster_args("prod"))
        assert cluster.cluster_name == "inferfleet-prod"

        async def record():
            seen["secret"] = await cluster.kubeconfig.is_secret()
            seen["kubeconfig"] = json.loads(await cluster.kubeconfig.future())
            seen["endpoint"] = await cluster.endpoint.future()
            seen["issuer"] = await cluster.oidc_issuer_url.future()
            seen["profile"] = await cluster.node_instance_profile_name.future()

        return record()

    program()
    assert seen["secret"] is True
    assert seen["kubeconfig"]["clusters"][0]["cluster"]["server"] == seen["endpoint"]
    assert seen["kubeconfig"]["users"][0]["user"]["exec"]["args"][3] == "inferfleet-prod"
    assert seen["issuer"].startswith("https://oidc.eks.us-east-1.amazonaws.com/id/")
    assert seen["profile"] == "inferfleet-prod-node"
    assert all(MASK not in json.dumps(r.inputs) for r in monitor.recorded if r.type == EKS)


def test_unsupported_kubernetes_version_rejected_with_the_supported_ones():
    with pytest.raises(ValueError, match=r"ClusterArgs\.kubernetes_version: '1\.29'.*1\.33, 1\.34"):
        cluster_args("prod", kubernetes_version="1.29").validate()
    stale = spec("prod").model_copy(
        update={"cluster": spec("prod").cluster.model_copy(update={"kubernetes_version": "1.29"})}
    )
    with pytest.raises(ValueError, match="kubernetes_version"):
        ClusterArgs.from_spec(stale, "vpc-0123", PRIVATE_SUBNETS, PUBLIC_SUBNETS, {})


def test_public_cidrs_on_a_private_endpoint_rejected():
    with pytest.raises(ValueError, match="ClusterArgs.public_access_cidrs"):
        cluster_args("prod", public_access_cidrs=["203.0.113.0/24"]).validate()


def test_malformed_public_cidr_rejected():
    with pytest.raises(ValueError, match="ClusterArgs.public_access_cidrs"):
        cluster_args("dev", public_access_cidrs=["203.0.113.0/33"]).validate()


def test_graviton_system_pool_rejected_for_the_x86_ami():
    pool = spec("prod").cluster.system_pool.model_copy(update={"instance_types": ["m7g.xlarge"]})
    with pytest.raises(ValueError, match=r"ClusterArgs\.system_pool\.instance_types: m7g\.xlarge"):
        cluster_args("prod", system_pool=pool).validate()


def test_component_validates_before_registering_anything():
    args = cluster_args("prod")
    args.kubernetes_version = "1.99"
    refused = []

    def build():
        with pytest.raises(ValueError, match="kubernetes_version") as error:
            Cluster("prod-cluster", args)
        refused.append(error.value)

    assert run_under_mocks(build) == []
    assert refused

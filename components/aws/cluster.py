"""The EKS control plane and what every node and add-on of it relies on.

One node role serves the system node group and the self-managed GPU pools alike: the GPU pools' launch
templates take its instance profile, and one EC2_LINUX access entry lets all of them join. The entry
is created before the managed node group, because EKS only adds an entry for a node group's role when
none exists; created after, ours would fail with ResourceInUseException (409).

The VPC CNI's AWS permissions live on its own IRSA role rather than on the node role, so that pods on
the host network of a node cannot use them. The node role's one inline permission lets a GPU node
complete its group's launch lifecycle hook (see gpu_pool.py), on this cluster's groups only: named like
them and tagged as owned by this cluster.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.aws.gpu_pool import OWNED, cluster_tag_key
from components.aws.iam import IrsaRole, IrsaRoleArgs
from components.catalog.eks_versions import (
    ADDON_VERSIONS,
    COREDNS,
    EBS_CSI_DRIVER,
    KUBE_PROXY,
    SUPPORTED_KUBERNETES_VERSIONS,
    VPC_CNI,
)
from components.manifests.scheduling import SYSTEM_POOL, system_node_labels
from components.spec.models import StackSpec, SystemPoolSpec
from components.spec.naming import cluster_name, role_name_args
from components.spec.network import SERVICE_IPV4_CIDR

EndpointAccess = Literal["public", "private", "publicAndPrivate"]
ENDPOINT_ACCESS_MODES: tuple[str, ...] = ("public", "private", "publicAndPrivate")

CLUSTER_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
NODE_POLICY_ARNS: tuple[str, ...] = (
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
    "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
)
NODE_LIFECYCLE_ACTIONS: tuple[str, ...] = ("autoscaling:CompleteLifecycleAction",)
"""What a GPU node's join script calls to report it is ready (warm-pool groups' launch hook)."""
GROUP_TAG_CONDITION_PREFIX = "autoscaling:ResourceTag"
"""The Auto Scaling condition key on a group's tags; the Service Authorization Reference lists it (with
aws:ResourceTag) for CompleteLifecycleAction on its required autoScalingGroup resource."""
CNI_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"
EBS_CSI_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"

ADDON_SERVICE_ACCOUNTS: dict[str, tuple[str, str, str]] = {
    VPC_CNI: ("kube-system", "aws-node", CNI_POLICY_ARN),
    EBS_CSI_DRIVER: ("kube-system", "ebs-csi-controller-sa", EBS_CSI_POLICY_ARN),
}
"""Add-ons that call AWS APIs: namespace, service account and managed policy of their IRSA role."""

CONTROL_PLANE_LOG_TYPES: tuple[str, ...] = ("api", "audit", "authenticator", "controllerManager", "scheduler")
CONTROL_PLANE_LOG_RETENTION_DAYS = 90
"""Pinned rather than left to EKS (which picks 10.100.0.0/16 or 172.20.0.0/16 from the VPC's range),
because the GPU nodes' user data derives the cluster DNS address from it."""

SYSTEM_AMI_TYPE = "AL2023_x86_64_STANDARD"
SYSTEM_POOL_NAME = SYSTEM_POOL
"""The system node group's name suffix: the pool name its nodes are labelled with (scheduling.py)."""
NODE_ACCESS_ENTRY_TYPE = "EC2_LINUX"
AUTHENTICATION_MODE = "API"
OIDC_AUDIENCE = "sts.amazonaws.com"
KMS_DELETION_WINDOW_DAYS = 30
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"

_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*\.")
"""Graviton (arm64) families: m7g, c7gn, r8g, t4g, x2gd, im4gn, g5g... The system pool's AMI is x86_64."""
_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def endpoint_flags(endpoint_access: str) -> tuple[bool, bool]:
    """(private, public) endpoint access. A public endpoint keeps the private one too, so that nodes
    reach the API server inside the VPC rather than through the NAT gateways."""
    if endpoint_access == "private":
        return True, False
    if endpoint_access in ("public", "publicAndPrivate"):
        return True, True
    raise ValueError(f"endpoint_access: {endpoint_access!r} is not one of {', '.join(ENDPOINT_ACCESS_MODES)}")


def cluster_groups_arn(partition: str, region: str, account_id: str, cluster_name: str) -> str:
    """Every Auto Scaling group of the cluster: GPU pool groups are named `<cluster_name>-<pool>`, and a
    group ARN carries a random id before its name."""
    prefix = f"arn:{partition}:autoscaling:{region}:{account_id}:autoScalingGroup:*"
    return f"{prefix}:autoScalingGroupName/{cluster_name}-*"


def cluster_groups_condition(cluster_name: str) -> dict[str, dict[str, str]]:
    """Only groups tagged as owned by this cluster (every GPU pool group is, see gpu_pool.group_tags). The
    name pattern alone would also match another cluster's groups whose cluster name starts with this
    one's (`inferfleet-prod-*` covers cluster `inferfleet-prod-eu`'s groups)."""
    return {"StringEquals": {f"{GROUP_TAG_CONDITION_PREFIX}/{cluster_tag_key(cluster_name)}": OWNED}}


def node_lifecycle_policy(groups_arn: str, cluster_name: str) -> str:
    """The node role's inline policy: complete lifecycle actions of the cluster's groups, nothing more."""
    statement = {
        "Effect": "Allow",
        "Action": list(NODE_LIFECYCLE_ACTIONS),
        "Resource": [groups_arn],
        "Condition": cluster_groups_condition(cluster_name),
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)


def service_trust_policy(service: str) -> str:
    """A role trust policy that lets one AWS service principal assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        },
        sort_keys=True,
    )


def system_node_group_scaling(pool: SystemPoolSpec) -> dict[str, int]:
    """Start at the floor, but never at zero: CoreDNS and the EBS CSI controller need a node to run on,
    or their add-ons never become active."""
    return {"min_size": pool.min_size, "desired_size": max(pool.min_size, 1), "max_size": pool.max_size}


def kubeconfig(cluster_name: str, endpoint: str, ca_data: str, region: str) -> dict[str, Any]:
    """A kubeconfig that holds no credential: `aws eks get-token` mints a short-lived token per use
    from whatever AWS identity runs kubectl (or Pulumi's Kubernetes provider)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": cluster_name}}],
        "current-context": cluster_name,
        "preferences": {},
        "users": [
            {
                "name": cluster_name,
                "user": {
                    "exec": {
                        "apiVersion": EXEC_API_VERSION,
                        "command": "aws",
                        "args": [
                            "eks",
                            "get-token",
                            "--cluster-name",
                            cluster_name,
                            "--region",
                            region,
                            "--output",
                            "json",
                        ],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
    }


@dataclass
class ClusterArgs:
    environment: str
    cluster_name: str
    kubernetes_version: str
    region: str
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[list[str]]
    public_subnet_ids: pulumi.Input[list[str]]
    """Taken with the rest of the network, but unused: the control plane's network interfaces and the
    system nodes belong in the private subnets only."""
    system_pool: SystemPoolSpec = field(default_factory=SystemPoolSpec)
    endpoint_access: EndpointAccess = "private"
    public_access_cidrs: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_spec(
        cls,
        spec: StackSpec,
        vpc_id: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[list[str]],
        public_subnet_ids: pulumi.Input[list[str]],
        tags: dict[str, str],
    ) -> ClusterArgs:
        cluster = spec.cluster
        return cls(
            environment=spec.environment,
            cluster_name=cluster_name(spec.environment),
            kubernetes_version=cluster.kubernetes_version,
            region=spec.aws.region,
            vpc_id=vpc_id,
            private_subnet_ids=private_subnet_ids,
            public_subnet_ids=public_subnet_ids,
            system_pool=cluster.system_pool,
            endpoint_access=cluster.endpoint_access,
            public_access_cidrs=list(cluster.public_access_cidrs),
            tags=dict(tags),
        )

    def validate(self) -> None:
        if not self.environment:
            raise ValueError("ClusterArgs.environment: required")
        if not self.cluster_name:
            raise ValueError("ClusterArgs.cluster_name: required")
        if self.kubernetes_version not in ADDON_VERSIONS:
            raise ValueError(
                f"ClusterArgs.kubernetes_version: {self.kubernetes_version!r} has no pinned add-on versions; "
                f"supported: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)} (components/catalog/eks_versions.py)"
            )
        if not _REGION.match(self.region):
            raise ValueError(f"ClusterArgs.region: {self.region!r} is not an AWS region like us-east-1")
        if self.endpoint_access not in ENDPOINT_ACCESS_MODES:
            modes = ", ".join(ENDPOINT_ACCESS_MODES)
            raise ValueError(f"ClusterArgs.endpoint_access: {self.endpoint_access!r} is not one of {modes}")
        for cidr in self.public_access_cidrs:
            try:
                network = ipaddress.ip_network(cidr)
            except ValueError as error:
                raise ValueError(f"ClusterArgs.public_access_cidrs: {error}") from None
            if network.version != 4:
                raise ValueError(f"ClusterArgs.public_access_cidrs: {cidr} is not IPv4; EKS takes IPv4 CIDRs only")
        if self.public_access_cidrs and self.endpoint_access == "private":
            raise ValueError(
                "ClusterArgs.public_access_cidrs: given, but endpoint_access is private (there is no public endpoint)"
            )
        pool = self.system_pool
        if pool.min_size > pool.max_size:
            raise ValueError(f"ClusterArgs.system_pool.min_size: {pool.min_size} is above max_size {pool.max_size}")
        arm = [t for t in pool.instance_types if _GRAVITON.match(t)]
        if arm:
            raise ValueError(
                f"ClusterArgs.system_pool.instance_types: {', '.join(arm)} are arm64 (Graviton); "
                f"the system node group runs the x86_64 AMI {SYSTEM_AMI_TYPE}"
            )


class Cluster(pulumi.ComponentResource):
    """EKS with secrets envelope-encrypted by its own KMS key, audit-grade control-plane logs, access
    entries instead of the aws-auth ConfigMap, IRSA, a managed node group for add-ons, and the core
    add-ons at pinned versions."""

    cluster_name: str
    service_cidr: str
    eks_cluster: aws.eks.Cluster
    name: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    certificate_authority_data: pulumi.Output[str]
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]
    node_role_arn: pulumi.Output[str]
    node_role_name: pulumi.Output[str]
    node_instance_profile_name: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    addons: dict[str, aws.eks.Addon]
    addon_roles: dict[str, IrsaRole]

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        args.validate()
        super().__init__("inferfleet:aws:Cluster", name, None, opts)
        tags = args.tags
        child = pulumi.ResourceOptions(parent=self)
        self.cluster_name = args.cluster_name
        self.service_cidr = SERVICE_IPV4_CIDR

        key = aws.kms.Key(
            f"{name}-secrets-key",
            description=f"Envelope encryption of Kubernetes secrets in EKS cluster {args.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            tags=tags,
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-secrets-key-alias", name=f"alias/{args.cluster_name}-secrets", target_key_id=key.key_id, opts=child
        )

        cluster_role = aws.iam.Role(
            f"{name}-cluster-role", assume_role_policy=service_trust_policy("eks.amazonaws.com"), tags=tags, opts=child,
            **role_name_args(f"{name}-cluster-role"),
        )
        cluster_policy = aws.iam.RolePolicyAttachment(
            f"{name}-cluster-policy", role=cluster_role.name, policy_arn=CLUSTER_POLICY_ARN, opts=child
        )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args.cluster_name}/cluster",
            retention_in_days=CONTROL_PLANE_LOG_RETENTION_DAYS,
            tags=tags,
            opts=child,
        )

        private_access, public_access = endpoint_flags(args.endpoint_access)
        self.eks_cluster = aws.eks.Cluster(
            f"{name}-eks",
            name=args.cluster_name,
            version=args.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=args.private_subnet_ids,
                endpoint_private_access=private_access,
                endpoint_public_access=public_access,
                public_access_cidrs=args.public_access_cidrs if public_access and args.public_access_cidrs else None,
            ),
            kubernetes_network_config=aws.eks.ClusterKubernetesNetworkConfigArgs(service_ipv4_cidr=SERVICE_IPV4_CIDR),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=key.arn), resources=["secrets"]
            ),
            enabled_cluster_log_types=list(CONTROL_PLANE_LOG_TYPES),
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode=AUTHENTICATION_MODE, bootstrap_cluster_creator_admin_permissions=True
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster_policy, log_group]),
        )
        cluster = self.eks_cluster
        self.name = cluster.name
        self.endpoint = cluster.endpoint
        self.certificate_authority_data = cluster.certificate_authority.apply(lambda ca: ca.data)
        self.oidc_issuer_url = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        self.cluster_security_group_id = cluster.vpc_config.apply(lambda vpc: vpc.cluster_security_group_id)
        self.kms_key_arn = key.arn

        oidc_provider = aws.iam.OpenIdConnectProvider(
            f"{name}-oidc",
            url=self.oidc_issuer_url,
            client_id_lists=[OIDC_AUDIENCE],
            tags=tags,
            opts=child,
        )
        self.oidc_provider_arn = oidc_provider.arn

        node_role = aws.iam.Role(
            f"{name}-node-role", assume_role_policy=service_trust_policy("ec2.amazonaws.com"), tags=tags, opts=child,
            **role_name_args(f"{name}-node-role"),
        )
        node_policies = [
            aws.iam.RolePolicyAttachment(f"{name}-node-policy-{index}", role=node_role.name, policy_arn=arn, opts=child)
            for index, arn in enumerate(NODE_POLICY_ARNS)
        ]
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        node_lifecycle = aws.iam.RolePolicy(
            f"{name}-node-lifecycle",
            role=node_role.name,
            policy=identity.apply(
                lambda caller: node_lifecycle_policy(
                    cluster_groups_arn(caller.arn.split(":")[1], args.region, caller.account_id, args.cluster_name),
                    args.cluster_name,
                )
            ),
            opts=child,
        )
        # Named, not auto-named: the GPU pools' launch templates and the EC2 console show it. After the
        # inline policy, so that the first GPU nodes (which take the profile) can complete their hook.
        profile = aws.iam.InstanceProfile(
            f"{name}-node-profile",
            name=f"{args.cluster_name}-node",
            role=node_role.name,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_lifecycle]),
        )
        self.node_role_arn = node_role.arn
        self.node_role_name = node_role.name
        self.node_instance_profile_name = profile.name

        node_access = aws.eks.AccessEntry(
            f"{name}-node-access",
            cluster_name=cluster.name,
            principal_arn=node_role.arn,
            type=NODE_ACCESS_ENTRY_TYPE,
            tags=tags,
            opts=child,
        )

        versions = ADDON_VERSIONS[args.kubernetes_version]
        self.addon_roles = {
            addon: IrsaRole(
                f"{name}-{addon}",
                IrsaRoleArgs(
                    oidc_provider_arn=oidc_provider.arn,
                    oidc_issuer_url=self.oidc_issuer_url,
                    namespace=namespace,
                    service_account=service_account,
                    managed_policy_arns=[policy_arn],
                    tags=tags,
                ),
                opts=child,
            )
            for addon, (namespace, service_account, policy_arn) in ADDON_SERVICE_ACCOUNTS.items()
        }

        def addon(addon_name: str, depends_on: list[pulumi.Resource]) -> aws.eks.Addon:
            role = self.addon_roles.get(addon_name)
            return aws.eks.Addon(
                f"{name}-{addon_name}",
                cluster_name=cluster.name,
                addon_name=addon_name,
                addon_version=versions[addon_name],
                service_account_role_arn=role.arn if role else None,
                # EKS has already installed self-managed vpc-cni, kube-proxy and coredns at creation:
                # the managed add-on takes them over.
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )

        self.addons = {}
        # Networking first, so that nodes start with the CNI on its own role.
        self.addons[VPC_CNI] = addon(VPC_CNI, [])
        self.addons[KUBE_PROXY] = addon(KUBE_PROXY, [])

        scaling = system_node_group_scaling(args.system_pool)
        system_nodes = aws.eks.NodeGroup(
            f"{name}-{SYSTEM_POOL_NAME}",
            cluster_name=cluster.name,
            node_role_arn=node_role.arn,
            subnet_ids=args.private_subnet_ids,
            instance_types=list(args.system_pool.instance_types),
            ami_type=SYSTEM_AMI_TYPE,
            capacity_type="ON_DEMAND",
            disk_size=args.system_pool.disk_size_gib,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(**scaling),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=system_node_labels(),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[node_access, *node_policies, self.addons[VPC_CNI], self.addons[KUBE_PROXY]],
                # Cluster Autoscaler discovers the group's ASG by EKS's own tags and may resize it.
                ignore_changes=["scalingConfig.desiredSize"],
            ),
        )
        # Deployments: they need a node to run on before the add-on can become active.
        self.addons[COREDNS] = addon(COREDNS, [system_nodes])
        self.addons[EBS_CSI_DRIVER] = addon(EBS_CSI_DRIVER, [system_nodes])

        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, self.certificate_authority_data).apply(
                lambda values: json.dumps(kubeconfig(values[0], values[1], values[2], args.region), sort_keys=True)
            )
        )

        self.register_outputs(
            {
                "clusterName": self.name,
                "endpoint": self.endpoint,
                "oidcProviderArn": self.oidc_provider_arn,
                "nodeRoleArn": self.node_role_arn,
                "nodeInstanceProfileName": self.node_instance_profile_name,
                "clusterSecurityGroupId": self.cluster_security_group_id,
                "kmsKeyArn": self.kms_key_arn,
                "kubeconfig": self.kubeconfig,
            }
        )

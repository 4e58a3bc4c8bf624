"""A GPU node pool: a launch template and an Auto Scaling group that Cluster Autoscaler sizes.

Self-managed groups rather than EKS managed node groups. Managed node groups can carry an EC2 Auto
Scaling warm pool since April 2026 (EKS `warmPoolConfig`; pulumi-aws `eks.NodeGroup(warm_pool_config=)`),
but only on the way EKS runs it: the EKS user guide ("Decrease latency for applications with long boot
times using warm pools with managed node groups", Considerations) refuses custom AMIs there, so the
launch template could neither name the AMI we resolve once and pin (`cluster.gpuAmiId`) nor replace
EKS's bootstrap; and EKS owns the group's warm pool, to be changed only through the EKS API. Our warm
instances need their own boot path instead: pre-pull the serving images while warmed, join only once
in service, come back from hibernation, and complete the launch lifecycle hook below (see
user_data.py, gpu_node_join.sh). Labels and taints come from `components.manifests.scheduling`, the
same function that gives the serving pods their node selection and tolerations.

A warm-pool group also carries a launch lifecycle hook that the node completes once it is ready, as
AWS's warm pool guidance asks: without it, Auto Scaling stops a warming instance as soon as it runs,
whether or not its images are pulled.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.aws.tags import named
from components.aws.user_data import (
    AMI_FAMILIES,
    LaunchHook,
    launch_template_user_data,
    node_user_data,
)
from components.catalog import load_catalog
from components.manifests.scheduling import accelerator_value, pool_labels, pool_taints
from components.spec.models import GpuPoolSpec
from components.spec.network import SERVICE_IPV4_CIDR

AMI_PARAMETERS = {
    "al2023-nvidia": "/aws/service/eks/optimized-ami/{version}/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
    "bottlerocket-nvidia": "/aws/service/bottlerocket/aws-k8s-{version}-nvidia/x86_64/latest/image_id",
}
"""Public SSM parameters holding the recommended EKS GPU AMI per Kubernetes version."""

DATA_VOLUME_DEVICES = {"al2023-nvidia": "/dev/xvda", "bottlerocket-nvidia": "/dev/xvdb"}
"""Where images and the weight cache overflow live: AL2023's root volume, Bottlerocket's data volume
(its root volume /dev/xvda only holds the read-only OS)."""

GP3_IOPS = 3000
GP3_THROUGHPUT_MIBPS = 125
"""gp3's baseline, included in its price."""

IMDS_HOP_LIMIT = 1
"""IMDSv2 answers only the host's own network namespace: a pod with its own namespace is one hop further
and gets no token, so it cannot take the node role's credentials (or anything else IMDS knows). GPU
pods get AWS credentials from IRSA instead. Nothing on a GPU node needs 2 (EKS's default for managed
node groups): the VPC CNI (aws-node) and kube-proxy run on the host network; the join script and
nodeadm run on the host; the NVIDIA device plugin does not call IMDS; aws-node-termination-handler runs
in queue mode on the system pool, with no per-node IMDS DaemonSet; and the EBS CSI node plugin, when it
cannot reach IMDS, falls back to the Kubernetes API for its metadata (instance id from the Node's
providerID, type, region and zone from its well-known labels: aws-ebs-csi-driver docs/install.md),
losing only the ENI count it would subtract from the volume-attachment limit; the serving pods use
hostPath, not EBS volumes. A future add-on that calls IMDS from a pod network needs hostNetwork or 2."""

SPOT_ALLOCATION_STRATEGY = "price-capacity-optimized"
ON_DEMAND_ALLOCATION_STRATEGY = "prioritized"
INSTANCE_REFRESH_MIN_HEALTHY_PERCENTAGE = 100
INSTANCE_REFRESH_MAX_HEALTHY_PERCENTAGE = 200
"""A refresh (a new AMI or template) launches each replacement before it terminates the old instance: with 90%
healthy of a one-node on-demand floor, Auto Scaling would terminate first and take the service below its floor.
Launching first needs a capacity of up to twice the group during the refresh (AWS allows at most 200)."""

AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster"
OWNED = "owned"
NODE_TEMPLATE_PREFIX = f"{AUTOSCALER_TAG_PREFIX}/node-template"
GPU_RESOURCE = "nvidia.com/gpu"
TERMINATION_HANDLER_MANAGED_TAG = "aws-node-termination-handler/managed"
"""The tag key aws-node-termination-handler checks before draining (same key as in
components.kubernetes.addons, which the AWS layer must not import)."""

NODE_READY_HOOK = "inferfleet-node-ready"
"""The launch lifecycle hook of warm-pool groups; gpu_node_join.sh completes it after the pre-pull
(warming) or the join (going in service). Same name in every group: the group name tells them apart."""
LAUNCHING_TRANSITION = "autoscaling:EC2_INSTANCE_LAUNCHING"
NODE_READY_DEFAULT_RESULT = "CONTINUE"
"""What Auto Scaling does when the node never reports: use it anyway (warm it, or put it in service).
ABANDON would terminate a GPU instance that may only have failed to call the API, and the kubelet
still pulls whatever the pre-pull missed."""
NODE_READY_HEARTBEAT_SECONDS = 900
"""How long a launching instance may take to report ready. Serving images are several GB each (vLLM,
Triton: 10-20 GB); pulling and unpacking them onto gp3 at its baseline 125 MiB/s takes minutes per
image, and a p5 boots slowly. Changing it replaces the group (hooks given at creation are immutable)."""
WAIT_FOR_CAPACITY_TIMEOUT = f"{NODE_READY_HEARTBEAT_SECONDS // 60 + 10}m"
"""How long a deploy waits for minSize instances in service. A hooked instance goes in service only
after it joined or after the heartbeat timeout, so the wait must outlast that timeout (the provider's
default, 10m, does not), or creating the group fails while its first node is still joining."""

LaunchTemplateSpecification = aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecificationArgs

_KUBERNETES_VERSION = re.compile(r"^1\.\d{2}$")
_AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")


def group_name(cluster_name: str, pool_name: str) -> str:
    """The Auto Scaling group's name; the node role may complete lifecycle actions of `<cluster>-*`."""
    return f"{cluster_name}-{pool_name}"


def node_ready_hook() -> aws.autoscaling.GroupInitialLifecycleHookArgs:
    """The launch hook, given at creation so that it holds the very first instances (those the warm
    pool launches with the group) too; a separate LifecycleHook resource would come after them."""
    return aws.autoscaling.GroupInitialLifecycleHookArgs(
        name=NODE_READY_HOOK,
        lifecycle_transition=LAUNCHING_TRANSITION,
        default_result=NODE_READY_DEFAULT_RESULT,
        heartbeat_timeout=NODE_READY_HEARTBEAT_SECONDS,
    )


def prepull_parameter_name(environment: str, pool_name: str) -> str:
    """The SSM parameter holding a warm pool's pre-pull list."""
    return f"/inferfleet/{environment}/prepull/{pool_name}"


def ami_parameter_name(ami_family: str, kubernetes_version: str) -> str:
    """The SSM parameter with the recommended GPU AMI of `ami_family` for `kubernetes_version`."""
    return AMI_PARAMETERS[ami_family].format(version=kubernetes_version)


def cluster_tag_key(cluster_name: str) -> str:
    """The Kubernetes ownership tag every group of the cluster carries (value OWNED); the node role's
    lifecycle grant is conditioned on it (cluster.py)."""
    return f"{CLUSTER_TAG_PREFIX}/{cluster_name}"


def autoscaler_tags(cluster_name: str, labels: dict[str, str], taints: list[str], gpus_per_node: int) -> dict[str, str]:
    """Cluster Autoscaler's auto-discovery tags, and the node-template tags that describe a node of an
    empty group (labels, taints, GPUs) so that the autoscaler can scale the group up from zero."""
    tags = {
        f"{AUTOSCALER_TAG_PREFIX}/enabled": "true",
        f"{AUTOSCALER_TAG_PREFIX}/{cluster_name}": OWNED,
        cluster_tag_key(cluster_name): OWNED,
    }
    for key, value in labels.items():
        tags[f"{NODE_TEMPLATE_PREFIX}/label/{key}"] = value
    for taint in taints:
        key, _, value_effect = taint.partition("=")
        tags[f"{NODE_TEMPLATE_PREFIX}/taint/{key}"] = value_effect
    tags[f"{NODE_TEMPLATE_PREFIX}/resources/{GPU_RESOURCE}"] = str(gpus_per_node)
    return tags


def group_tags(
    name: str, cluster_name: str, tags: dict[str, str], labels: dict[str, str], taints: list[str], gpus_per_node: int
) -> dict[str, str]:
    """Every tag the group carries and propagates to its instances."""
    return {
        **named(tags, name),
        **autoscaler_tags(cluster_name, labels, taints, gpus_per_node),
        TERMINATION_HANDLER_MANAGED_TAG: "true",
    }


@dataclass
class GpuPoolArgs:
    environment: str
    pool: GpuPoolSpec
    cluster_name: str
    cluster_endpoint: pulumi.Input[str]
    cluster_ca_data: pulumi.Input[str]
    kubernetes_version: str
    ami_family: str
    subnet_ids: pulumi.Input[list[str]]
    node_security_group_ids: pulumi.Input[list[str]]
    instance_profile_name: pulumi.Input[str]
    gpus_per_node: int
    """GPUs of one node (the pool's first instance type): the node-template resource tag."""
    gpu: str | None = None
    """The catalog's GPU model of the pool's instance types (one shape per pool), which names the
    autoscaler's accelerator label; None looks it up in the catalog by the pool's first instance type."""
    ami_id: str | None = None
    """Pinned AMI; None resolves the recommended one once and keeps it (see GpuPool)."""
    cluster_service_cidr: str = SERVICE_IPV4_CIDR
    prepull_images: list[pulumi.Input[str]] = field(default_factory=list)
    """Serving images that warm instances pull before they are needed (a warm-pool group's SSM parameter)."""
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pool = self.pool
        if not self.environment:
            raise ValueError("GpuPoolArgs.environment: required")
        if not self.cluster_name:
            raise ValueError("GpuPoolArgs.cluster_name: required")
        if self.ami_family not in AMI_FAMILIES:
            raise ValueError(f"GpuPoolArgs.ami_family: {self.ami_family!r} is not one of {', '.join(AMI_FAMILIES)}")
        if not _KUBERNETES_VERSION.match(self.kubernetes_version):
            raise ValueError(f"GpuPoolArgs.kubernetes_version: {self.kubernetes_version!r} is not like '1.34'")
        if self.ami_id is not None and not _AMI_ID.match(self.ami_id):
            raise ValueError(f"GpuPoolArgs.ami_id: {self.ami_id!r} is not an AMI id")
        if self.gpus_per_node < 1:
            raise ValueError(f"GpuPoolArgs.gpus_per_node: {self.gpus_per_node} is not a positive GPU count")
        if self.gpu is None:
            instance = load_catalog().instance_types.get(pool.instance_types[0])
            if instance is None or instance.gpu is None:
                raise ValueError(
                    f"GpuPoolArgs.gpu: not given, and the catalog knows no GPU of {pool.instance_types[0]}"
                )
            self.gpu = instance.gpu
        try:
            accelerator_value(self.gpu)
        except ValueError as error:
            raise ValueError(f"GpuPoolArgs.gpu: {error}") from None
        try:
            ipaddress.ip_network(self.cluster_service_cidr)
        except ValueError as error:
            raise ValueError(f"GpuPoolArgs.cluster_service_cidr: {error}") from None
        if pool.min_size > pool.max_size:
            raise ValueError(f"GpuPoolArgs.pool.minSize: {pool.min_size} is above maxSize {pool.max_size}")
        if pool.warm_pool is not None:
            if pool.capacity_type == "spot":
                raise ValueError(
                    "GpuPoolArgs.pool.warmPool: AWS refuses a warm pool on a group with spot instances"
                )
            if len(pool.instance_types) != 1:
                raise ValueError(
                    "GpuPoolArgs.pool.warmPool: AWS refuses a warm pool on a group with a mixed instances "
                    "policy; give the pool one instance type"
                )
            if self.ami_family != "al2023-nvidia":
                raise ValueError(
                    "GpuPoolArgs.pool.warmPool: needs ami_family al2023-nvidia (Bottlerocket joins at boot, "
                    "also while warmed)"
                )
            if pool.warm_pool.state == "Hibernated" and pool.warm_pool.reuse_on_scale_in:
                raise ValueError(
                    "GpuPoolArgs.pool.warmPool.reuseOnScaleIn: a Hibernated pool cannot take back a node that "
                    "joined: hibernation wipes the instance stores under its mounted weight cache and kubelet "
                    "directories, and it resumes with them gone; set reuseOnScaleIn: false"
                )


class GpuPool(pulumi.ComponentResource):
    """One GPU pool: launch template (GPU AMI, IMDSv2 for the host only, encrypted gp3, join-when-in-service
    user data that puts the NVMe instance stores to use) and Auto Scaling group (warm pool on demand,
    mixed instances on spot, autoscaler tags). The instance stores need no block device mapping: EC2
    attaches every NVMe instance store volume of the type at launch.

    `desiredCapacity` belongs to Cluster Autoscaler once the group exists, so the program never sets
    or reverts it."""

    launch_template: aws.ec2.LaunchTemplate
    group: aws.autoscaling.Group
    asg_name: pulumi.Output[str]
    asg_arn: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]
    ami_id: pulumi.Output[str]
    labels: dict[str, str]
    taints: list[str]

    def __init__(self, name: str, args: GpuPoolArgs, opts: pulumi.ResourceOptions | None = None):
        pool = args.pool
        labels = pool_labels(pool, args.gpu)
        taints = [taint.kubelet_flag() for taint in pool_taints(pool)]
        warm = pool.warm_pool
        asg_name = group_name(args.cluster_name, pool.name)
        launch_hook = LaunchHook(group_name=asg_name, hook_name=NODE_READY_HOOK) if warm is not None else None
        super().__init__("inferfleet:aws:GpuPool", name, None, opts)

        if args.ami_id is None:
            # Resolved at the first deploy; ignore_changes keeps that AMI until someone pins a new one.
            image_id: pulumi.Input[str] = aws.ssm.get_parameter_output(
                name=ami_parameter_name(args.ami_family, args.kubernetes_version),
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).value
            template_opts = pulumi.ResourceOptions(parent=self, ignore_changes=["imageId"])
        else:
            image_id = args.ami_id
            template_opts = pulumi.ResourceOptions(parent=self)

        prepull = self._prepull_list(name, args) if warm is not None and args.prepull_images else None
        user_data = pulumi.Output.all(args.cluster_endpoint, args.cluster_ca_data).apply(
            lambda values: launch_template_user_data(
                node_user_data(
                    cluster_name=args.cluster_name,
                    endpoint=values[0],
                    ca_data=values[1],
                    service_cidr=args.cluster_service_cidr,
                    labels=labels,
                    taints=taints,
                    ami_family=args.ami_family,
                    prepull_parameter=prepull_parameter_name(args.environment, pool.name) if prepull else None,
                    warm_pool=warm is not None,
                    launch_hook=launch_hook,
                ),
                args.ami_family,
            )
        )
        single_type = len(pool.instance_types) == 1 and pool.capacity_type == "onDemand"
        instance_tags = named(args.tags, name)
        self.launch_template = aws.ec2.LaunchTemplate(
            f"{name}-lt",
            description=f"inferfleet {args.environment} GPU pool {pool.name}",
            image_id=image_id,
            instance_type=pool.instance_types[0] if single_type else None,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(name=args.instance_profile_name),
            vpc_security_group_ids=args.node_security_group_ids,
            user_data=user_data,
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                # Tags in instance metadata forbid "/" in tag keys, and the autoscaler and Kubernetes
                # tags this group propagates all have one: EC2 would refuse to launch the instances.
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name=DATA_VOLUME_DEVICES[args.ami_family],
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3",
                        volume_size=pool.root_volume_gib,
                        iops=GP3_IOPS,
                        throughput=GP3_THROUGHPUT_MIBPS,
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            hibernation_options=(
                aws.ec2.LaunchTemplateHibernationOptionsArgs(configured=True)
                if warm is not None and warm.state == "Hibernated"
                else None
            ),
            monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags=instance_tags)
                for kind in ("instance", "volume")
            ],
            tags=instance_tags,
            opts=template_opts,
        )

        version = self.launch_template.latest_version.apply(str)
        if pool.capacity_type == "onDemand" and single_type:
            launch_template = aws.autoscaling.GroupLaunchTemplateArgs(id=self.launch_template.id, version=version)
            mixed_instances_policy = None
        else:
            launch_template = None
            mixed_instances_policy = self._mixed_instances_policy(pool, version)

        self.group = aws.autoscaling.Group(
            f"{name}-asg",
            name=asg_name,
            vpc_zone_identifiers=args.subnet_ids,
            min_size=pool.min_size,
            max_size=pool.max_size,
            capacity_rebalance=True if pool.capacity_type == "spot" else None,
            launch_template=launch_template,
            mixed_instances_policy=mixed_instances_policy,
            warm_pool=(
                aws.autoscaling.GroupWarmPoolArgs(
                    pool_state=warm.state,
                    min_size=warm.size,
                    # Prepared instances (in service + warm) capped at minSize + size: the warm pool
                    # holds `size` instances, not every instance the group could still grow by.
                    max_group_prepared_capacity=pool.min_size + warm.size,
                    instance_reuse_policy=aws.autoscaling.GroupWarmPoolInstanceReusePolicyArgs(
                        reuse_on_scale_in=warm.reuse_on_scale_in
                    ),
                )
                if warm is not None
                else None
            ),
            initial_lifecycle_hooks=[node_ready_hook()] if launch_hook is not None else None,
            wait_for_capacity_timeout=WAIT_FOR_CAPACITY_TIMEOUT if launch_hook is not None else None,
            instance_refresh=(
                aws.autoscaling.GroupInstanceRefreshArgs(
                    strategy="Rolling",
                    preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                        min_healthy_percentage=INSTANCE_REFRESH_MIN_HEALTHY_PERCENTAGE,
                        max_healthy_percentage=INSTANCE_REFRESH_MAX_HEALTHY_PERCENTAGE,
                        skip_matching=True,
                    ),
                )
                if pool.capacity_type == "onDemand"
                else None
            ),
            tags=[
                aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                for key, value in group_tags(
                    name, args.cluster_name, args.tags, labels, taints, args.gpus_per_node
                ).items()
            ],
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["desiredCapacity"]),
        )

        self.asg_name = self.group.name
        self.asg_arn = self.group.arn
        self.launch_template_id = self.launch_template.id
        self.ami_id = self.launch_template.image_id
        self.labels = labels
        self.taints = taints
        self.register_outputs(
            {
                "asgName": self.asg_name,
                "asgArn": self.asg_arn,
                "launchTemplateId": self.launch_template_id,
                "amiId": self.ami_id,
                "labels": self.labels,
                "taints": self.taints,
            }
        )

    def _prepull_list(self, name: str, args: GpuPoolArgs) -> aws.ssm.Parameter:
        """The images a warm instance pre-pulls, one per line, in an SSM parameter the join script reads at boot
        (the node role reads parameters through AmazonSSMManagedInstanceCore): images change there, not in the
        user data, so a serving-image rollout makes no new launch template version and no instance refresh."""
        value = pulumi.Output.all(*args.prepull_images).apply(lambda images: "".join(f"{i}\n" for i in images))
        return aws.ssm.Parameter(
            f"{name}-prepull",
            name=prepull_parameter_name(args.environment, args.pool.name),
            description=f"inferfleet {args.environment}: images warm instances of GPU pool {args.pool.name} pre-pull",
            type="String",
            tier="Standard",
            insecure_value=value,  # image references, nothing secret: shown in previews so a rollout's diff reads
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _mixed_instances_policy(
        self, pool: GpuPoolSpec, version: pulumi.Input[str]
    ) -> aws.autoscaling.GroupMixedInstancesPolicyArgs:
        """Spot: every listed type, price-capacity-optimized. On demand with several types: the list's
        order is the preference order."""
        if pool.capacity_type == "spot":
            distribution = aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                on_demand_base_capacity=0,
                on_demand_percentage_above_base_capacity=0,
                spot_allocation_strategy=SPOT_ALLOCATION_STRATEGY,
            )
        else:
            distribution = aws.autoscaling.GroupMixedInstancesPolicyInstancesDistributionArgs(
                on_demand_base_capacity=0,
                on_demand_percentage_above_base_capacity=100,
                on_demand_allocation_strategy=ON_DEMAND_ALLOCATION_STRATEGY,
            )
        return aws.autoscaling.GroupMixedInstancesPolicyArgs(
            launch_template=aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateArgs(
                launch_template_specification=LaunchTemplateSpecification(
                    launch_template_id=self.launch_template.id, version=version
                ),
                overrides=[
                    aws.autoscaling.GroupMixedInstancesPolicyLaunchTemplateOverrideArgs(instance_type=instance_type)
                    for instance_type in pool.instance_types
                ],
            ),
            instances_distribution=distribution,
        )

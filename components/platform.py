"""The whole environment in two phases, one Pulumi stack each (components/phases.py).

`deploy_platform` builds the `Platform` component: everything AWS holds, the add-ons' AWS identities and,
for a private API endpoint, the deploy runner. `deploy_workloads` builds the cluster's add-ons and serving
objects on a Kubernetes provider made from the platform's kubeconfig, from the platform's outputs
(components/platform_outputs.py): through a StackReference in `pulumi up -s <env>-workloads`, handed over
directly by `deploy`, which runs both in one program for `inferfleet render` and the tests.

Providers are built here, at the program's top, and passed down: an explicit AWS provider from `aws.region`
(nothing from ambient configuration) and a Kubernetes provider from the cluster's kubeconfig; a component
never builds a provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.addon_roles import AddonRoles, AddonRolesArgs, ServiceAccountRef
from components.aws.cluster import Cluster, ClusterArgs
from components.aws.deploy_runner import DeployRunner, DeployRunnerArgs
from components.aws.gpu_pool import GpuPool, GpuPoolArgs
from components.aws.iam import IrsaRole, IrsaRoleArgs, PolicyStatement
from components.aws.interruption import SpotInterruptionQueue, SpotInterruptionQueueArgs
from components.aws.network import Network, NetworkArgs
from components.aws.serving_images import ServingImages, ServingImagesArgs
from components.aws.storage import ModelStorage, ModelStorageArgs, repository_name
from components.aws.tags import stack_tags
from components.catalog import Catalog
from components.kubernetes.addons import (
    CLUSTER_AUTOSCALER,
    DEVICE_PLUGIN,
    GATEWAY,
    PROMETHEUS_SERVICE_ACCOUNT,
    PROMETHEUS_STACK,
    TERMINATION_HANDLER,
    TERMINATION_HANDLER_SERVICE_ACCOUNT,
    ClusterAddons,
    ClusterAddonsArgs,
    RemoteWriteTarget,
    kubernetes_provider,
)
from components.kubernetes.charts import chart
from components.kubernetes.serving import (
    HF_TOKEN_CONFIG,
    ServingWorkloads,
    ServingWorkloadsArgs,
)
from components.manifests.alerting import secret_config_keys
from components.manifests.autoscaler import (
    SERVICE_ACCOUNT as AUTOSCALER_SERVICE_ACCOUNT,
)
from components.manifests.image_builds import GATE_KEY, built_services, image_builds
from components.manifests.images import images_by_pool
from components.manifests.serving import (
    SERVING_NAMESPACE,
    s3_location,
    service_account_name,
)
from components.phases import stack_phase
from components.planner import plan_stack
from components.planner.plan import StackPlan
from components.platform_outputs import (
    DEPLOY_RUNNER,
    PlatformOutputs,
    platform_stack_name,
)
from components.spec import SpecSource, naming
from components.spec.models import ServiceSpec, StackSpec


@dataclass
class PlatformArgs:
    spec: StackSpec
    catalog: Catalog
    plan: StackPlan | None = None
    """The stack's plan: its cost figures are recorded on the component (input `plan`), where the policy
    pack's max-hourly-cost reads the worst case. Default none (nothing recorded)."""

    def __post_init__(self) -> None:
        for pool in self.spec.gpu_pools:
            for instance in pool.instance_types:
                if instance not in self.catalog.instance_types:
                    raise ValueError(f"PlatformArgs.spec: gpuPools {pool.name}: {instance} is not in the catalog")


PLAN_PROPERTY = "plan"


def plan_record(plan: StackPlan | None) -> dict[str, Any] | None:
    """The plan's $/h figures as the component's inputs, for policies that judge what the fleet may cost."""
    if plan is None:
        return None
    cost = plan.cost
    return {PLAN_PROPERTY: {
        "hourlyUsdMax": round(cost.hourly_usd_max, 2),
        "hourlyUsdAtMinReplicas": round(cost.hourly_usd_at_min_replicas, 2),
        "hourlyUsdAtPeak": round(cost.hourly_usd_at_peak, 2),
    }}


class Platform(pulumi.ComponentResource):
    """Network, EKS cluster, model storage, GPU pools and their spot interruption queue."""

    network: Network
    cluster: Cluster
    storage: ModelStorage
    pools: dict[str, GpuPool]
    interruption: SpotInterruptionQueue
    model_readers: dict[str, IrsaRole]

    images: ServingImages | None
    service_images: dict[str, pulumi.Output[str]]
    """Service name -> the built image it runs (only with images.build)."""
    region: str
    addon_roles: AddonRoles
    runner: DeployRunner | None
    """The CodeBuild project that runs the workloads stack inside the VPC (cluster.deployRunner)."""

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:index:Platform", name, plan_record(args.plan), opts)
        spec, catalog = args.spec, args.catalog
        tags = stack_tags(spec)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = naming.cluster_name(spec.environment)
        self.region = spec.aws.region
        self.network = Network(f"{name}-network", NetworkArgs.from_spec(spec, cluster_name, tags), opts=child)
        self.cluster = Cluster(
            f"{name}-cluster",
            ClusterArgs.from_spec(
                spec,
                vpc_id=self.network.vpc_id,
                private_subnet_ids=self.network.private_subnet_ids,
                public_subnet_ids=self.network.public_subnet_ids,
                tags=tags,
            ),
            opts=child,
        )
        self.storage = ModelStorage(f"{name}-storage", ModelStorageArgs.from_spec(spec, tags), opts=child)
        self.images = self._serving_images(name, spec, catalog, tags)
        self.service_images = {
            service: self.images.refs[key] for service, key in built_services(spec, catalog).items()
        } if self.images else {}
        self.pools = {}
        images = images_by_pool(spec, catalog, self.service_images)
        for pool in spec.gpu_pools:
            instance = catalog.instance_types[pool.instance_types[0]]
            self.pools[pool.name] = GpuPool(
                f"{name}-{pool.name}",
                GpuPoolArgs(
                    environment=spec.environment,
                    pool=pool,
                    cluster_name=cluster_name,
                    cluster_endpoint=self.cluster.endpoint,
                    cluster_ca_data=self.cluster.certificate_authority_data,
                    kubernetes_version=spec.cluster.kubernetes_version,
                    ami_family=spec.cluster.gpu_ami_family,
                    ami_id=spec.cluster.gpu_ami_id,
                    subnet_ids=self.network.private_subnet_ids,
                    node_security_group_ids=self.cluster.cluster_security_group_id.apply(lambda sg: [sg]),
                    instance_profile_name=self.cluster.node_instance_profile_name,
                    gpus_per_node=instance.gpu_count,
                    cluster_service_cidr=self.cluster.service_cidr,
                    prepull_images=images[pool.name],
                    tags=tags,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
            )
        self.model_readers = {
            service.name: self._model_reader(name, service, tags) for service in spec.services if s3_location(service)
        }
        self.interruption = SpotInterruptionQueue(
            f"{name}-interruption",
            SpotInterruptionQueueArgs(
                environment=spec.environment,
                cluster_name=cluster_name,
                asg_names=[pool.asg_name for pool in self.pools.values()],
                tags=tags,
            ),
            opts=child,
        )
        self.addon_roles = self._addon_roles(name, spec, cluster_name, tags)
        self.runner = self._deploy_runner(name, spec, cluster_name, tags)
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "poolGroupNames": {name: pool.asg_name for name, pool in self.pools.items()},
            }
        )

    def outputs(self) -> PlatformOutputs:
        """What the workloads phase needs from this platform (exported by the platform stack)."""
        roles, prometheus = self.addon_roles, self.addon_roles.managed_prometheus
        return PlatformOutputs(
            cluster_name=self.cluster.name,
            kubeconfig=self.cluster.kubeconfig,
            asg_names={name: pool.asg_name for name, pool in self.pools.items()},
            interruption_queue_url=self.interruption.queue_url,
            autoscaler_role_arn=roles.autoscaler_role_arn,
            termination_handler_role_arn=roles.termination_handler_role_arn,
            remote_write=RemoteWriteTarget(prometheus.remote_write_url, prometheus.writer_role_arn) if prometheus else None,
            model_reader_role_arns={name: role.arn for name, role in self.model_readers.items()},
            service_images=dict(self.service_images),
            gate_image=self.images.refs.get(GATE_KEY) if self.images else None,
        )

    def _addon_roles(self, name: str, spec: StackSpec, cluster_name: str, tags: dict[str, str]) -> AddonRoles:
        """The add-ons' IRSA roles (and managed Prometheus), trusting the service accounts their charts run as."""
        observability = spec.observability
        prometheus = None
        if observability.enabled and observability.managed_prometheus:
            prometheus = ServiceAccountRef(chart(PROMETHEUS_STACK).namespace, PROMETHEUS_SERVICE_ACCOUNT)
        return AddonRoles(
            f"{spec.environment}-addons",
            AddonRolesArgs(
                environment=spec.environment,
                cluster_name=cluster_name,
                region=spec.aws.region,
                oidc_provider_arn=self.cluster.oidc_provider_arn,
                oidc_issuer_url=self.cluster.oidc_issuer_url,
                autoscaler=ServiceAccountRef(chart(CLUSTER_AUTOSCALER).namespace, AUTOSCALER_SERVICE_ACCOUNT),
                termination_handler=ServiceAccountRef(chart(TERMINATION_HANDLER).namespace,
                                                      TERMINATION_HANDLER_SERVICE_ACCOUNT),
                interruption_queue_arn=self.interruption.queue_arn,
                asg_names=[pool.asg_name for pool in self.pools.values()],
                prometheus=prometheus,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _deploy_runner(self, name: str, spec: StackSpec, cluster_name: str, tags: dict[str, str]) -> DeployRunner | None:
        runner = spec.cluster.deploy_runner
        if runner is None:
            return None
        return DeployRunner(
            f"{name}-deploy-runner",
            DeployRunnerArgs(
                environment=spec.environment,
                cluster_name=cluster_name,
                region=spec.aws.region,
                vpc_id=self.network.vpc_id,
                subnet_ids=self.network.private_subnet_ids,
                cluster_security_group_id=self.cluster.cluster_security_group_id,
                cluster_arn=self.cluster.eks_cluster.arn,
                state_backend=runner.state_backend,
                pulumi_version=version("pulumi"),
                secrets_kms_key_arn=runner.secrets_kms_key_arn,
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.cluster]),
        )

    def _serving_images(self, name: str, spec: StackSpec, catalog: Catalog, tags: dict[str, str]) -> ServingImages | None:
        """The project's images for the engines in use, into this stack's ECR repositories (images.build)."""
        builds = image_builds(spec, catalog)
        if not builds:
            return None
        urls = {b.engine: self.storage.repository_urls[repository_name(spec.environment, b.engine)] for b in builds}
        registry = next(iter(self.storage.repositories.values())).registry_id
        return ServingImages(
            f"{name}-images",
            ServingImagesArgs(spec.environment, builds, urls, registry, spec.images.platform, tags),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _model_reader(self, name: str, service: ServiceSpec, tags: dict[str, str]) -> IrsaRole:
        """Read-only access to the service's own model prefix, for its pods' service account only."""
        location = s3_location(service)
        assert location is not None
        bucket, prefix = location
        bucket_arn = self.storage.bucket_arns[bucket]
        objects = bucket_arn.apply(lambda arn: [f"{arn}/{prefix}/*" if prefix else f"{arn}/*"])
        return IrsaRole(
            f"{name}-{service.name}-model-reader",
            IrsaRoleArgs(
                oidc_provider_arn=self.cluster.oidc_provider_arn,
                oidc_issuer_url=self.cluster.oidc_issuer_url,
                namespace=SERVING_NAMESPACE,
                service_account=service_account_name(service),
                statements=[
                    PolicyStatement(["s3:GetObject"], objects),
                    PolicyStatement(
                        ["s3:ListBucket"],
                        bucket_arn.apply(lambda arn: [arn]),
                        conditions={"StringLike": {"s3:prefix": [f"{prefix}/*", prefix] if prefix else ["*"]}},
                    ),
                    PolicyStatement(["kms:Decrypt"], self.storage.kms_key_arns[bucket].apply(lambda arn: [arn])),
                ],
                tags=tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )


@dataclass
class Workloads:
    addons: ClusterAddons
    serving: ServingWorkloads


@dataclass
class Deployment:
    plan: StackPlan
    platform: Platform
    addons: ClusterAddons
    serving: ServingWorkloads


def alerting_credentials(spec: StackSpec) -> dict[str, pulumi.Output[str]]:
    """Alertmanager's credentials from the stack's secret config; a route without its secret stops the
    program with Pulumi's own error naming the missing key (`pulumi config set --secret KEY ...`). Secret
    config of the workloads stack, which is the one that applies them."""
    if not spec.observability.enabled:
        return {}
    config = pulumi.Config()
    return {key: config.require_secret(name) for key, name in secret_config_keys(spec.observability.alerting).items()}


def deploy_platform(source: SpecSource, catalog: Catalog, plan: StackPlan) -> Platform:
    """The platform phase: every AWS resource of the environment, on an explicit AWS provider."""
    spec = source.spec
    aws_provider = aws.Provider(f"{spec.environment}-aws", region=spec.aws.region,
                                default_tags={"tags": stack_tags(spec)})
    return Platform(spec.environment, PlatformArgs(spec, catalog, plan),
                    opts=pulumi.ResourceOptions(providers={"aws": aws_provider}))


def deploy_workloads(source: SpecSource, catalog: Catalog, plan: StackPlan, platform: PlatformOutputs) -> Workloads:
    """The workloads phase: the add-ons and the serving objects, on the platform's cluster. It creates no AWS
    resource, so where the API endpoint is private it can run in the deploy runner with Kubernetes rights only."""
    spec = source.spec
    env = spec.environment
    k8s_provider = kubernetes_provider(f"{env}-kubernetes", platform.kubeconfig)
    providers = pulumi.ResourceOptions(providers={"kubernetes": k8s_provider})
    addons = ClusterAddons(
        f"{env}-addons",
        ClusterAddonsArgs(
            spec=spec,
            cluster_name=naming.cluster_name(env),
            region=spec.aws.region,
            asg_names=platform.asg_names,
            gpus_per_node={p.name: catalog.instance_types[p.instance_types[0]].gpu_count for p in spec.gpu_pools},
            interruption_queue_url=platform.interruption_queue_url,
            autoscaler_role_arn=platform.autoscaler_role_arn,
            termination_handler_role_arn=platform.termination_handler_role_arn,
            remote_write=platform.remote_write,
            tags=stack_tags(spec),
            leader_worker_set=any(e.engine == "vllm" and e.nodes_per_replica > 1 for e in plan.services),
            plan=plan,
            catalog=catalog,
            alerting_credentials=alerting_credentials(spec),
        ),
        opts=providers,
    )
    serving = ServingWorkloads(
        f"{env}-serving",
        ServingWorkloadsArgs(
            spec=spec,
            plan=plan,
            catalog=catalog,
            model_reader_role_arns=platform.model_reader_role_arns,
            operators={**addons.releases, GATEWAY: addons.gateway},
            gpu_ready=[addons.releases[DEVICE_PLUGIN]],
            huggingface_token=pulumi.Config().get_secret(HF_TOKEN_CONFIG),
            service_images=platform.service_images,
            gate_image=platform.gate_image,
        ),
        opts=providers,
    )
    return Workloads(addons, serving)


def deploy(source: SpecSource, catalog: Catalog) -> Deployment:
    """Both phases in one program, the platform's values handed over directly: what `inferfleet render`
    shows and the tests check (each phase's resources are exactly those its own stack would create)."""
    plan = plan_stack(source.spec, catalog)
    platform = deploy_platform(source, catalog, plan)
    workloads = deploy_workloads(source, catalog, plan, platform.outputs())
    return Deployment(plan=plan, platform=platform, addons=workloads.addons, serving=workloads.serving)


def deploy_stack(source: SpecSource, catalog: Catalog, stack_name: str) -> dict[str, Any]:
    """The program of one stack (`__main__.py`): its phase from the stack's name; returns its outputs."""
    environment, phase = stack_phase(stack_name)
    spec = source.spec
    if environment != spec.environment:
        raise ValueError(f"stack {stack_name!r} is not a stack of environment {spec.environment!r}")
    plan = plan_stack(spec, catalog)
    if phase == "workloads":
        reference = pulumi.StackReference(platform_stack_name(environment))
        workloads = deploy_workloads(source, catalog, plan, PlatformOutputs.from_stack(reference, spec, catalog))
        return {"gatewayHostname": workloads.addons.gateway_hostname}
    platform = deploy_platform(source, catalog, plan)
    return platform_stack_outputs(platform, plan)


def platform_stack_outputs(platform: Platform, plan: StackPlan) -> dict[str, Any]:
    """The platform stack's outputs: what the workloads stack reads, and what people look up."""
    runner = platform.runner
    shown: dict[str, Any] = {
        "gpuAmiIds": {name: pool.ami_id for name, pool in platform.pools.items()},
        "modelBuckets": platform.storage.bucket_names,
        "plan": plan.to_json(),
        DEPLOY_RUNNER: None if runner is None else {
            "projectName": runner.project_name, "sourceBucket": runner.source_bucket,
            "logGroupName": runner.log_group_name, "region": platform.region,
        },
    }
    if platform.images is not None:
        shown["imageBaseDigests"] = platform.images.base_digests
    return {**platform.outputs().exports(), **shown}

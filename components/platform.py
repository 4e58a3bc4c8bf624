"""The whole environment: the AWS platform component, then the cluster's add-ons on its API server.

`deploy` is what `__main__.py` (and `inferfleet render`) calls. Providers are built here, at the
program's top, and passed down: an explicit AWS provider from `aws.region` (nothing from ambient
configuration) and a Kubernetes provider from the cluster's kubeconfig. That is why the add-ons
are a sibling of `Platform` built after it rather than its child: a component never builds a
provider, and the Kubernetes provider needs the cluster the platform creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.cluster import Cluster, ClusterArgs
from components.aws.gpu_pool import GpuPool, GpuPoolArgs
from components.aws.iam import IrsaRole, IrsaRoleArgs, PolicyStatement
from components.aws.interruption import SpotInterruptionQueue, SpotInterruptionQueueArgs
from components.aws.network import Network, NetworkArgs
from components.aws.serving_images import ServingImages, ServingImagesArgs
from components.aws.storage import ModelStorage, ModelStorageArgs, repository_name
from components.aws.tags import stack_tags
from components.catalog import Catalog
from components.kubernetes.addons import (
    DEVICE_PLUGIN,
    GATEWAY,
    ClusterAddons,
    ClusterAddonsArgs,
    kubernetes_provider,
)
from components.kubernetes.serving import HF_TOKEN_CONFIG, ServingWorkloads, ServingWorkloadsArgs
from components.manifests.alerting import secret_config_keys
from components.manifests.image_builds import GATE_KEY, built_services, image_builds
from components.manifests.images import images_by_pool
from components.manifests.serving import SERVING_NAMESPACE, s3_location, service_account_name
from components.planner import plan_stack
from components.planner.plan import StackPlan
from components.spec import SpecSource
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

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("inferfleet:index:Platform", name, plan_record(args.plan), opts)
        spec, catalog = args.spec, args.catalog
        tags = stack_tags(spec)
        child = pulumi.ResourceOptions(parent=self)
        cluster_name = f"inferfleet-{spec.environment}"
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
        self.register_outputs(
            {
                "clusterName": self.cluster.name,
                "poolGroupNames": {name: pool.asg_name for name, pool in self.pools.items()},
            }
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
class Deployment:
    plan: StackPlan
    platform: Platform
    addons: ClusterAddons
    serving: ServingWorkloads


def alerting_credentials(spec: StackSpec) -> dict[str, pulumi.Output[str]]:
    """Alertmanager's credentials from the stack's secret config; a route without its secret stops the
    program with Pulumi's own error naming the missing key (`pulumi config set --secret KEY ...`)."""
    if not spec.observability.enabled:
        return {}
    config = pulumi.Config()
    return {key: config.require_secret(name) for key, name in secret_config_keys(spec.observability.alerting).items()}


def deploy(source: SpecSource, catalog: Catalog) -> Deployment:
    """Build the environment `source` describes; the Pulumi program's body."""
    spec = source.spec
    env = spec.environment
    plan = plan_stack(spec, catalog)
    aws_provider = aws.Provider(f"{env}-aws", region=spec.aws.region, default_tags={"tags": stack_tags(spec)})
    platform = Platform(env, PlatformArgs(spec, catalog, plan), opts=pulumi.ResourceOptions(providers={"aws": aws_provider}))
    k8s_provider = kubernetes_provider(
        f"{env}-kubernetes",
        platform.cluster.kubeconfig,
        opts=pulumi.ResourceOptions(parent=platform, depends_on=[platform.cluster]),
    )
    addons = ClusterAddons(
        f"{env}-addons",
        ClusterAddonsArgs(
            spec=spec,
            cluster_name=f"inferfleet-{env}",
            region=spec.aws.region,
            oidc_provider_arn=platform.cluster.oidc_provider_arn,
            oidc_issuer_url=platform.cluster.oidc_issuer_url,
            asg_names={name: pool.asg_name for name, pool in platform.pools.items()},
            gpus_per_node={p.name: catalog.instance_types[p.instance_types[0]].gpu_count for p in spec.gpu_pools},
            interruption_queue_url=platform.interruption.queue_url,
            interruption_queue_arn=platform.interruption.queue_arn,
            cluster_resource=platform.cluster.eks_cluster,
            tags=stack_tags(spec),
            leader_worker_set=any(e.engine == "vllm" and e.nodes_per_replica > 1 for e in plan.services),
            plan=plan,
            catalog=catalog,
            alerting_credentials=alerting_credentials(spec),
        ),
        opts=pulumi.ResourceOptions(providers={"aws": aws_provider, "kubernetes": k8s_provider}),
    )
    serving = ServingWorkloads(
        f"{env}-serving",
        ServingWorkloadsArgs(
            spec=spec,
            plan=plan,
            catalog=catalog,
            model_reader_role_arns={name: role.arn for name, role in platform.model_readers.items()},
            operators={**addons.releases, GATEWAY: addons.gateway},
            cluster_resource=platform.cluster.eks_cluster,
            gpu_ready=[addons.releases[DEVICE_PLUGIN]],
            huggingface_token=pulumi.Config().get_secret(HF_TOKEN_CONFIG),
            service_images=platform.service_images,
            gate_image=platform.images.refs.get(GATE_KEY) if platform.images else None,
            stack_document=source.document.data if spec.deploy_gate.enabled else None,
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": k8s_provider}),
    )
    return Deployment(plan=plan, platform=platform, addons=addons, serving=serving)

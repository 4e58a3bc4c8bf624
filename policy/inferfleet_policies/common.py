"""What every policy reads: resource type tokens, the Kubernetes objects inside ConfigGroups, tags,
pod templates and the environment a policy checks. Pure functions over plain mappings, so the same
code runs under `pulumi preview` (pulumi_policy's read-only proxies) and in `inferfleet render`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ENVIRONMENTS = ("dev", "staging", "prod")
DEFAULT_ENVIRONMENT = "prod"
"""A policy run without configuration checks as strictly as prod: forgetting the config never relaxes a check."""

ENVIRONMENT_KEY = "environment"

CONFIG_GROUP = "kubernetes:yaml/v2:ConfigGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
AUTOSCALING_GROUP = "aws:autoscaling/group:Group"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
S3_BUCKET = "aws:s3/bucket:Bucket"
S3_BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
S3_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
S3_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
S3_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
IAM_ROLE = "aws:iam/role:Role"
IAM_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
IAM_POLICY = "aws:iam/policy:Policy"
HELM_CHART = "kubernetes:helm.sh/v4:Chart"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"

POOL_LABEL = "inferfleet.io/pool"
CAPACITY_TYPE_LABEL = "inferfleet.io/capacity-type"
SERVICE_LABEL = "inferfleet.io/service"
AVAILABILITY_SLO_ANNOTATION = "inferfleet.io/availability-slo"
"""components/manifests/serving.py writes it on every serving workload of a service with an availability SLO."""
FALLBACK_OF_ANNOTATION = "inferfleet.io/fallback-of"
"""components/manifests/serving.py writes it on a fallback replica set's workload: the replica set it falls
back from (it runs one replica per replica of that one left unplaced)."""
REPLICA_SET_LABEL = "inferfleet.io/replica-set"
ZONE_KEY = "topology.kubernetes.io/zone"
GPU_RESOURCE = "nvidia.com/gpu"
NODE_TEMPLATE_LABEL_TAG = "k8s.io/cluster-autoscaler/node-template/label/"
SPOT = "spot"


@dataclass(frozen=True)
class Resource:
    """The part of a resource the stack policies read; built from pulumi_policy's PolicyResource."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    ignore_changes: tuple[str, ...] = ()


def resources_of(policy_resources: Iterable[Any]) -> list[Resource]:
    """pulumi_policy's PolicyResource objects (or anything with the same attributes) as Resources."""
    return [
        Resource(
            type=r.resource_type,
            name=r.name,
            urn=r.urn,
            props=r.props,
            ignore_changes=tuple(getattr(r.opts, "ignore_changes", None) or ()),
        )
        for r in policy_resources
    ]


def environment_of(config: Mapping[str, Any]) -> str:
    value = config.get(ENVIRONMENT_KEY, DEFAULT_ENVIRONMENT)
    return value if value in ENVIRONMENTS else DEFAULT_ENVIRONMENT


def is_prod(config: Mapping[str, Any]) -> bool:
    return environment_of(config) == "prod"


def truthy(value: Any) -> bool:
    """Booleans that the AWS provider takes as strings too (launch template `encrypted: "true"`)."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def tags_of(props: Mapping[str, Any]) -> dict[str, str]:
    """Tags in both shapes AWS resources use: a map, or an Auto Scaling group's list of {key, value}."""
    tags = props.get("tags")
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, (list, tuple)):
        return {str(t.get("key")): str(t.get("value")) for t in tags if isinstance(t, Mapping)}
    return {}


def objects_of(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The Kubernetes objects a ConfigGroup applies."""
    return [obj for obj in props.get("objs") or [] if isinstance(obj, Mapping)]


def all_objects(resources: Iterable[Resource]) -> list[Mapping[str, Any]]:
    return [obj for r in resources if r.type == CONFIG_GROUP for obj in objects_of(r.props)]


def object_id(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{metadata.get('name')}"


@dataclass(frozen=True)
class PodTemplate:
    """One pod template of a workload: a Deployment's, or one RayService/RayCluster group's."""

    owner: str
    kind: str
    labels: Mapping[str, Any]
    spec: Mapping[str, Any]
    fixed_replicas: int | None
    """Replicas that never scale to zero (Deployment replicas, Ray group minReplicas); None when unknown."""
    owner_annotations: Mapping[str, Any] = field(default_factory=dict)
    """The workload object's own annotations (where the serving objects state their service's SLO)."""

    @property
    def availability_slo(self) -> float | None:
        """The availability target the workload's service promises, when it states one."""
        value = self.owner_annotations.get(AVAILABILITY_SLO_ANNOTATION)
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None


def _ray_cluster_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = obj.get("spec") or {}
    return spec.get("rayClusterConfig") or spec if obj.get("kind") == "RayService" else spec


def _template(owner: str, kind: str, template: Mapping[str, Any], replicas: Any,
              annotations: Mapping[str, Any]) -> PodTemplate:
    return PodTemplate(owner, kind, (template.get("metadata") or {}).get("labels") or {}, template.get("spec") or {},
                       replicas, annotations)


def pod_templates(obj: Mapping[str, Any]) -> Iterator[PodTemplate]:
    """Every pod template a workload object carries (none for other kinds)."""
    kind = str(obj.get("kind"))
    name = object_id(obj)
    spec = obj.get("spec") or {}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        yield _template(name, kind, spec.get("template") or {}, spec.get("replicas"), annotations)
    elif kind == "LeaderWorkerSet":
        group = spec.get("leaderWorkerTemplate") or {}
        for role in ("leaderTemplate", "workerTemplate"):
            if group.get(role):
                yield _template(f"{name}/{role}", kind, group[role], spec.get("replicas"), annotations)
    elif kind in ("RayService", "RayCluster"):
        cluster = _ray_cluster_spec(obj)
        yield _template(f"{name}/head", kind, (cluster.get("headGroupSpec") or {}).get("template") or {}, 1, annotations)
        for group in cluster.get("workerGroupSpecs") or []:
            yield _template(f"{name}/{group.get('groupName')}", kind, group.get("template") or {},
                            group.get("minReplicas"), annotations)


def containers_of(pod_spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]


def requests_gpu(container: Mapping[str, Any]) -> bool:
    resources = container.get("resources") or {}
    return any(GPU_RESOURCE in (resources.get(part) or {}) for part in ("limits", "requests"))


def pools_selected(pod_spec: Mapping[str, Any]) -> set[str] | None:
    """Pool names a pod may land on, from its nodeSelector or required node affinity; None when the
    pod names no pool (system pods)."""
    selector = pod_spec.get("nodeSelector") or {}
    if POOL_LABEL in selector:
        return {str(selector[POOL_LABEL])}
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    pools: set[str] = set()
    found = False
    for term in required.get("nodeSelectorTerms") or []:
        for expression in term.get("matchExpressions") or []:
            if expression.get("key") == POOL_LABEL and expression.get("operator") == "In":
                found = True
                pools |= {str(v) for v in expression.get("values") or []}
    return pools if found else None


def pool_capacity_types(resources: Iterable[Resource]) -> dict[str, str]:
    """Pool name -> capacity type ("spot" or "on-demand"), from the labels each node group announces:
    the cluster autoscaler's node-template tags on GPU groups, managed node group labels."""
    pools: dict[str, str] = {}
    for r in resources:
        if r.type == AUTOSCALING_GROUP:
            tags = tags_of(r.props)
            pool = tags.get(NODE_TEMPLATE_LABEL_TAG + POOL_LABEL)
            if pool:
                pools[pool] = tags.get(NODE_TEMPLATE_LABEL_TAG + CAPACITY_TYPE_LABEL, "on-demand")
        elif r.type == EKS_NODE_GROUP:
            pool = (r.props.get("labels") or {}).get(POOL_LABEL)
            if pool:
                pools[pool] = SPOT if r.props.get("capacityType") == "SPOT" else "on-demand"
    return pools


def policy_statements(document: Any) -> list[Mapping[str, Any]]:
    """Statements of an IAM policy document given as JSON text or as a mapping."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    if not isinstance(document, Mapping):
        return []
    statements = document.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    return [s for s in statements if isinstance(s, Mapping)]


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]

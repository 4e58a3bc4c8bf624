"""What every engine's serving objects share: namespace, names and labels, the service account the
model-reader IAM role trusts, the Hugging Face token Secret, and the node-local weight cache."""

from __future__ import annotations

import math
import shlex
from typing import Any
from urllib.parse import urlparse

from components.catalog import Catalog
from components.manifests.placement import ReplicaSet, node_affinity, tolerations
from components.spec.models import ServiceSpec

SERVING_NAMESPACE = "inferfleet-serving"
PART_OF = "inferfleet"
SERVICE_LABEL = "inferfleet.io/service"
REVISION_LABEL = "inferfleet.io/revision"
REPLICA_SET_LABEL = "inferfleet.io/replica-set"
AVAILABILITY_SLO_ANNOTATION = "inferfleet.io/availability-slo"
"""On a service's workload objects (not their pod templates, so an SLO change does not roll the pods): the
availability target, which the policy pack's reliability policies hold prod services to."""
FALLBACK_OF_ANNOTATION = "inferfleet.io/fallback-of"
"""On a fallback replica set's workload object (`ReplicaSet.fallback_of`): the name of the replica set it
falls back from. A fallback runs one replica per replica of that set left unplaced, so a chain of them
shares one burst budget; the policy pack's autoscaler-bounds policy reads the chain from this annotation."""
HF_TOKEN_SECRET = "huggingface-token"
HF_TOKEN_KEY = "token"
HF_TOKEN_DIR = "/var/run/secrets/huggingface"
WEIGHT_CACHE_HOST_PATH = "/mnt/k8s-disks/0/inferfleet-models"
"""Node-local NVMe (the GPU nodes' instance stores as one RAID0 volume, see components/aws/user_data.py):
weights are fetched once per node and revision and shared by every replica on it."""
WEIGHT_CACHE_MOUNT = "/models"
AWS_CLI_IMAGE = (
    "public.ecr.aws/aws-cli/aws-cli:2.36.15"
    "@sha256:310813a7eae8fd88da1cc9c37970e3500b0ff3984479e1012f0a6fd44e453f63"
)
"""Fetches weights from S3 in the init container (IRSA credentials from the pod's service account).
Tag and digest as pinned by public CI scripts; confirm with `crane digest` before bumping."""
GPU_RESOURCE = "nvidia.com/gpu"
API_PORT = 8000
"""Every engine serves its HTTP API on 8000 (vLLM, Triton's HTTP endpoint, Ray Serve's proxy), so one
HTTPRoute shape fits all of them."""
SPOT_NOTICE_SECONDS = 120
"""EC2 gives a spot instance two minutes' notice; a replica must drain within it."""
NODE_TERMINATION_MARGIN_SECONDS = 30
"""Of the notice: the termination handler's queue polling and the node drain's own start."""
TERMINATION_GRACE_SECONDS = SPOT_NOTICE_SECONDS - NODE_TERMINATION_MARGIN_SECONDS
DRAIN_SECONDS = 15
"""preStop pause: endpoints stop sending new requests before the engine gets SIGTERM."""
NODE_SHARE = 0.85
"""Share of a node's per-GPU CPU and memory a replica requests; the rest is for the kubelet and add-ons."""
MAX_SHM_GIB = 64
SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait"
"""pulumi-kubernetes waits for no readiness of an object that carries it set to "true"."""


def service_account_name(service: ServiceSpec) -> str:
    return f"{service.name}-model-reader"


def s3_location(service: ServiceSpec) -> tuple[str, str] | None:
    """(bucket, key prefix without slashes) of an s3:// model URI; None for other schemes."""
    parsed = urlparse(service.model.uri)
    if parsed.scheme != "s3":
        return None
    return parsed.netloc, parsed.path.strip("/")


def service_labels(service: ServiceSpec, revision: str = "stable") -> dict[str, str]:
    """The labels a Service selects on: every replica set of one revision of the service."""
    return {SERVICE_LABEL: service.name, REVISION_LABEL: revision}


def replica_set_labels(replica_set: ReplicaSet) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": replica_set.service.name,
        "app.kubernetes.io/instance": replica_set.name,
        "app.kubernetes.io/component": replica_set.service.engine,
        "app.kubernetes.io/part-of": PART_OF,
        **service_labels(replica_set.service, replica_set.revision),
        REPLICA_SET_LABEL: replica_set.name,
    }


def metadata(name: str, labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": SERVING_NAMESPACE, "labels": dict(labels), **extra}


def workload_metadata(name: str, labels: dict[str, str], service: ServiceSpec) -> dict[str, Any]:
    """A serving workload's metadata: the service's availability SLO, when it has one, as an annotation."""
    slo = service.slo
    if slo is None or slo.availability is None:
        return metadata(name, labels)
    return metadata(name, labels, annotations={AVAILABILITY_SLO_ANNOTATION: f"{slo.availability:g}"})


def replica_set_metadata(replica_set: ReplicaSet) -> dict[str, Any]:
    """A replica set's workload metadata. Pulumi does not await a set KEDA scales: its workload has no
    `spec.replicas` (see `replica_count`), so the API server creates it at 1, and awaiting that replica
    would hold `pulumi up` for a GPU node and a model load nobody asked for, before the ScaledObject that
    takes the count to its minimum (0) is even applied. A fallback set names the set it falls back from
    (FALLBACK_OF_ANNOTATION)."""
    meta = workload_metadata(replica_set.name, replica_set_labels(replica_set), replica_set.service)
    extra: dict[str, str] = {}
    if replica_set.autoscaled:
        extra[SKIP_AWAIT_ANNOTATION] = "true"
    if replica_set.fallback_of:
        extra[FALLBACK_OF_ANNOTATION] = replica_set.fallback_of
    if extra:
        meta["annotations"] = {**meta.get("annotations", {}), **extra}
    return meta


def replica_count(replica_set: ReplicaSet) -> dict[str, int]:
    """The `spec.replicas` of a replica set's workload: its fixed size, or nothing for a set KEDA scales
    (`ReplicaSet.autoscaled`, components/manifests/autoscaling.py). A count the program sets is a field
    it owns under server-side apply, so every later `pulumi up` would reset the count KEDA chose
    (pulumi-kubernetes issues 2491, 2569, 3312; the HPA documentation says to omit `spec.replicas` from
    what an autoscaler scales). The set's minimum is still honoured: the ScaledObject's `minReplicaCount`
    sets it from KEDA's first poll on, also at creation, where the API server's default (1) stands until
    then."""
    return {} if replica_set.autoscaled else {"replicas": replica_set.replicas_min}


def namespace() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": SERVING_NAMESPACE, "labels": {"app.kubernetes.io/part-of": PART_OF}},
    }


def service_account(service: ServiceSpec, role_arn: Any) -> dict[str, Any]:
    """The identity the service's model-reader IAM role trusts (IRSA); no role for hf:// models."""
    annotations = {"annotations": {"eks.amazonaws.com/role-arn": role_arn}} if role_arn else {}
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(
            service_account_name(service),
            {"app.kubernetes.io/name": service.name, "app.kubernetes.io/part-of": PART_OF},
            **annotations,
        ),
        "automountServiceAccountToken": False,
    }


def huggingface_token_secret(token: Any) -> dict[str, Any]:
    """From Pulumi secret config (`pulumi config set --secret huggingFaceToken`); never in a spec or file."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(HF_TOKEN_SECRET, {"app.kubernetes.io/part-of": PART_OF}),
        "type": "Opaque",
        "stringData": {HF_TOKEN_KEY: token},
    }


def hf_token_env() -> dict[str, Any]:
    """The token as a file, not an environment value (process listings and crash dumps show those):
    huggingface_hub reads HF_TOKEN_PATH. The Secret is optional: public models start without it."""
    return {"name": "HF_TOKEN_PATH", "value": f"{HF_TOKEN_DIR}/{HF_TOKEN_KEY}"}


def hf_token_volume() -> dict[str, Any]:
    return {"name": "hf-token", "secret": {"secretName": HF_TOKEN_SECRET, "optional": True, "defaultMode": 0o400}}


def hf_token_mount() -> dict[str, Any]:
    return {"name": "hf-token", "mountPath": HF_TOKEN_DIR, "readOnly": True}


def container_security_context() -> dict[str, Any]:
    """No privilege escalation, no Linux capabilities: GPUs come through the device plugin, which needs
    neither. The upstream engine images run as root, so runAsNonRoot waits for the project's images."""
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def model_cache_dir(service: ServiceSpec, revision: str | None) -> str:
    """Where a model's weights sit inside the pod: one directory per model and revision."""
    return f"{WEIGHT_CACHE_MOUNT}/{service.model.name}/{revision or 'default'}"


def weight_fetch_init_container(service: ServiceSpec, revision: str | None) -> dict[str, Any] | None:
    """Copies s3://bucket/prefix to the node-local cache once per node: the first replica takes a lock
    and writes a marker when done; later replicas on the node (and restarts) find the marker and skip."""
    location = s3_location(service)
    if location is None:
        return None
    bucket, prefix = location
    target = model_cache_dir(service, revision)
    source = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    script = "\n".join(
        [
            "set -eu",
            f"target={shlex.quote(target)}",
            'mkdir -p "$target"',
            'exec 9>"$target.lock"',
            "flock 9",
            'if [ -e "$target/.complete" ]; then echo "weights cached on this node"; exit 0; fi',
            f'aws s3 sync --only-show-errors {shlex.quote(source)} "$target"',
            'touch "$target/.complete"',
        ]
    )
    return {
        "name": "fetch-weights",
        "image": AWS_CLI_IMAGE,
        "command": ["/bin/bash", "-c", script],
        "resources": {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "weights", "mountPath": WEIGHT_CACHE_MOUNT}],
    }


def weight_cache_volume() -> dict[str, Any]:
    return {"name": "weights", "hostPath": {"path": WEIGHT_CACHE_HOST_PATH, "type": "DirectoryOrCreate"}}


def shm_volume(size_gib: int) -> dict[str, Any]:
    """NCCL and PyTorch workers share tensors through /dev/shm; the container default (64 MiB) is too small."""
    return {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{size_gib}Gi"}}


def replica_resources(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """One pod's GPUs (a whole replica, or one node's part of a multi-node one); CPU and memory in
    proportion to its share of the node's GPUs."""
    entry = replica_set.plan
    instance = catalog.instance_types[entry.instance_type]
    gpus = min(entry.gpus_per_replica, instance.gpu_count)
    share = gpus / instance.gpu_count * NODE_SHARE
    cpu = max(1, math.floor(instance.vcpu * share))
    memory = f"{max(4, math.floor(instance.memory_gib * share))}Gi"
    return {
        "requests": {"cpu": str(cpu), "memory": memory, GPU_RESOURCE: gpus},
        "limits": {"memory": memory, GPU_RESOURCE: gpus},
    }


def shm_gib(replica_set: ReplicaSet, catalog: Catalog) -> int:
    """A quarter of a GPU's share of host memory, capped: enough for NCCL and Python-backend tensors."""
    instance = catalog.instance_types[replica_set.plan.instance_type]
    return max(1, min(MAX_SHM_GIB, math.floor(instance.memory_gib / instance.gpu_count / 4)))


def pod_placement(replica_set: ReplicaSet) -> dict[str, Any]:
    """Pod spec fields that put a replica set's pods on its pools, spread over zones and nodes."""
    selector = {"matchLabels": {REPLICA_SET_LABEL: replica_set.name}}
    return {
        "affinity": {
            "nodeAffinity": node_affinity(replica_set.pools),
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {"labelSelector": selector, "topologyKey": "kubernetes.io/hostname"},
                    }
                ]
            },
        },
        "tolerations": tolerations(replica_set.pools),
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            }
        ],
    }


def pod_spec(replica_set: ReplicaSet, container: dict[str, Any], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    """A serving pod: the service's identity, the weight fetch first, time to drain, its pools."""
    init = weight_fetch_init_container(replica_set.service, replica_set.model_revision)
    return {
        "serviceAccountName": service_account_name(replica_set.service),
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        **({"initContainers": [init]} if init else {}),
        "containers": [{**container, "securityContext": container_security_context()}],
        "volumes": [*volumes, hf_token_volume()],
        **pod_placement(replica_set),
    }


def deployment(replica_set: ReplicaSet, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A replica set that fits one node per replica: a floor of fixed size, or a burst whose count KEDA
    alone sets (`replica_count`). Rolling updates add a replica before removing one, so a floor never dips
    below its size."""
    labels = replica_set_labels(replica_set)
    template_metadata: dict[str, Any] = {"labels": labels, **({"annotations": annotations} if annotations else {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": replica_set_metadata(replica_set),
        "spec": {
            **replica_count(replica_set),
            "selector": {"matchLabels": {REPLICA_SET_LABEL: replica_set.name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": template_metadata, "spec": spec},
        },
    }


def pod_disruption_budget(replica_set: ReplicaSet) -> dict[str, Any]:
    """At most one replica of the set voluntarily disrupted at a time (drains, node consolidation)."""
    labels = replica_set_labels(replica_set)
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(replica_set.name, labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {REPLICA_SET_LABEL: replica_set.name}}},
    }


def cluster_service(service: ServiceSpec, revision: str, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """One Service per revision over all the revision's replica sets (floor and burst, every shape)."""
    name = service.name if revision == "stable" else f"{service.name}-{revision}"
    labels = {"app.kubernetes.io/name": service.name, "app.kubernetes.io/part-of": PART_OF, REVISION_LABEL: revision}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, labels),
        "spec": {"type": "ClusterIP", "selector": service_labels(service, revision), "ports": ports},
    }

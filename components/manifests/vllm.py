"""vLLM: one workload per replica set (components/manifests/placement.py), one Service per revision.

A replica that fits one node is a Deployment pod. A replica that needs more GPUs than a node has
(tensor x pipeline parallel above the node's GPU count) is a LeaderWorkerSet group: the leader starts
a Ray head and vLLM with the Ray executor, the workers join it, one pod per node.

The arguments come from the plan (parallelism, KV cache budget, batch size) and the spec, then the
service's `engineArgs` on top: the user's values win. The same `vllm_args` is what the end-to-end
test hands to a real vLLM server and its real argument parser.
"""

from __future__ import annotations

from typing import Any

from components.catalog import Catalog
from components.manifests import serving as s
from components.manifests.images import serving_image
from components.manifests.monitoring import vllm_trace_arguments
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.probes import PROBE_PERIOD_SECONDS, startup_failure_threshold
from components.planner.engine import engine_settings
from components.planner.plan import StackPlan
from components.spec.models import ServiceSpec, StackSpec

PORT = s.API_PORT
HEALTH_PATH = "/health"
SERVER_MODULE = "vllm.entrypoints.launchers.api_server.entry"
"""The OpenAI-compatible server (`vllm serve` runs the same; the old openai.api_server module is deprecated)."""
RAY_PORT = 6379
DTYPE_FLAGS = {"bfloat16": "bfloat16", "float16": "float16"}
"""Spec dtype -> vLLM --dtype; quantized weights (fp8, int8, int4) keep `auto` and vLLM reads the
quantization from the checkpoint's config."""


def _flag_value(flag: str, value: Any) -> list[str]:
    if value is True:
        return [f"--{flag}"]
    if value is False:
        return [f"--no-{flag}"]
    return [f"--{flag}", str(value)]


def engine_arguments(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """vLLM's engine arguments (dashed names) for one replica set: planned values, then engineArgs.
    Triton's vLLM backend takes the same ones in its model.json."""
    service, entry = replica_set.service, replica_set.plan
    instance = catalog.instance_types[entry.instance_type]
    settings = engine_settings(service, catalog.gpu_of(instance))
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    planned: dict[str, Any] = {
        "model": _model_path(replica_set),
        "served-model-name": service.model.name,
        "tensor-parallel-size": entry.tensor_parallel_size,
        "pipeline-parallel-size": entry.pipeline_parallel_size,
        "max-model-len": service.max_model_len or architecture.context_length,
        "gpu-memory-utilization": settings.gpu_memory_utilization,
        "max-num-seqs": entry.max_concurrent_sequences,
        "max-num-batched-tokens": settings.max_num_batched_tokens,
        "dtype": DTYPE_FLAGS.get(service.model.dtype, "auto"),
        "enable-prefix-caching": True,
    }
    if settings.kv_cache_dtype != "auto":
        planned["kv-cache-dtype"] = settings.kv_cache_dtype
    if s.s3_location(service) is None and replica_set.model_revision:
        planned["revision"] = replica_set.model_revision
    if entry.nodes_per_replica > 1:
        planned["distributed-executor-backend"] = "ray"
    if replica_set.tracing:
        planned.update(vllm_trace_arguments())
    for key, value in replica_set.engine_args.items():
        flag = key.replace("_", "-")
        if flag.startswith("no-") and isinstance(value, bool):
            flag, value = flag.removeprefix("no-"), not value  # one flag, not `--X` beside `--no-X`
        planned[flag] = value
    return planned


def vllm_args(replica_set: ReplicaSet, catalog: Catalog) -> list[str]:
    """The OpenAI server's command-line arguments: the engine's, then the port."""
    arguments = {**engine_arguments(replica_set, catalog), "port": PORT}
    return [part for flag, value in arguments.items() for part in _flag_value(flag, value)]


def _model_path(replica_set: ReplicaSet) -> str:
    """The node-local copy for s3:// weights; the Hugging Face id (downloaded by vLLM) for hf://."""
    service = replica_set.service
    if s.s3_location(service) is not None:
        return s.model_cache_dir(service, replica_set.model_revision)
    return service.model.name


def _probes(replica_set: ReplicaSet) -> dict[str, Any]:
    check = {"httpGet": {"path": HEALTH_PATH, "port": "http"}}
    return {
        "startupProbe": {
            **check,
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "failureThreshold": startup_failure_threshold(replica_set.plan),
        },
        "readinessProbe": {**check, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**check, "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5},
    }


def _container(replica_set: ReplicaSet, catalog: Catalog, command: list[str]) -> dict[str, Any]:
    return {
        "name": "vllm",
        "image": serving_image(replica_set.service, catalog),
        "command": command,
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": [s.hf_token_env()],
        "resources": s.replica_resources(replica_set, catalog),
        "lifecycle": {"preStop": {"sleep": {"seconds": s.DRAIN_SECONDS}}},
        "volumeMounts": [
            s.hf_token_mount(),
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "weights", "mountPath": s.WEIGHT_CACHE_MOUNT},
        ],
    }


def _pod_spec(replica_set: ReplicaSet, catalog: Catalog, container: dict[str, Any]) -> dict[str, Any]:
    return s.pod_spec(replica_set, container, [s.shm_volume(s.shm_gib(replica_set, catalog)), s.weight_cache_volume()])


def _server_command(replica_set: ReplicaSet, catalog: Catalog) -> list[str]:
    return ["python3", "-m", SERVER_MODULE, *vllm_args(replica_set, catalog)]


def deployment(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    container = {**_container(replica_set, catalog, _server_command(replica_set, catalog)), **_probes(replica_set)}
    return s.deployment(replica_set, _pod_spec(replica_set, catalog, container))


def leader_worker_set(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """A replica over several nodes: leader = Ray head + vLLM server, workers = Ray workers. Its count is
    fixed, or KEDA's alone for a burst set (serving.replica_count)."""
    labels = s.replica_set_labels(replica_set)
    size = replica_set.plan.nodes_per_replica
    head = f"ray start --head --port={RAY_PORT} && exec " + " ".join(_server_command(replica_set, catalog))
    leader = {
        **_container(replica_set, catalog, ["/bin/bash", "-c", head]),
        **_probes(replica_set),
    }
    worker_labels = {key: value for key, value in labels.items() if key != s.REVISION_LABEL}
    """Workers serve no HTTP: without the revision label the Service does not send them requests."""
    worker = {
        **_container(replica_set, catalog, ["/bin/bash", "-c", f"exec ray start --address=$(LWS_LEADER_ADDRESS):{RAY_PORT} --block"]),
        "ports": [],
    }
    return {
        "apiVersion": "leaderworkerset.x-k8s.io/v1",
        "kind": "LeaderWorkerSet",
        "metadata": s.replica_set_metadata(replica_set),
        "spec": {
            **s.replica_count(replica_set),
            "startupPolicy": "LeaderReady",
            "leaderWorkerTemplate": {
                "size": size,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {"metadata": {"labels": labels}, "spec": _pod_spec(replica_set, catalog, leader)},
                "workerTemplate": {"metadata": {"labels": worker_labels}, "spec": _pod_spec(replica_set, catalog, worker)},
            },
        },
    }


def vllm_objects(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """Workloads and PDBs per replica set, a Service per revision."""
    objects: list[dict[str, Any]] = []
    revisions: list[str] = []
    for replica_set in replica_sets(service, spec, plan):
        multi_node = replica_set.plan.nodes_per_replica > 1
        objects.append(leader_worker_set(replica_set, catalog) if multi_node else deployment(replica_set, catalog))
        objects.append(s.pod_disruption_budget(replica_set))
        if replica_set.revision not in revisions:
            revisions.append(replica_set.revision)
    ports = [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]
    objects += [s.cluster_service(service, revision, ports) for revision in revisions]
    return objects

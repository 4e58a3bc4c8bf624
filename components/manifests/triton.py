"""NVIDIA Triton: one Deployment per replica set (components/manifests/placement.py), its generated model
configuration in a ConfigMap, one Service per revision.

The model repository is built in the pod, not read from S3 by Triton. Triton can serve an
`s3://bucket/prefix` repository itself, but it then downloads every model into a temporary directory of
each replica at each start, and the repository must already hold the `config.pbtxt` files. Instead:

- the weights come the way every engine gets them: the fetch init container copies the service's
  s3:// prefix once per node into the node-local NVMe cache (components/manifests/serving.py), so a
  second replica on the node, or a restart, loads from NVMe;
- `config.pbtxt` is generated here from the spec and the plan, with Triton's own protobuf message
  (`model_config_pb2.ModelConfig`, printed as text format), so it is valid by construction;
- the container lays the repository out in an emptyDir before it execs tritonserver:
      /model-repository/<service>/config.pbtxt      from the ConfigMap
      /model-repository/<service>/1/model.json      from the ConfigMap (vllm backend)
      /model-repository/<service>/1 -> the cache    (other backends: 1/model.onnx, 1/model.plan or
                                                     1/model.py are files of the S3 prefix)

The Triton model is named after the service (a Hugging Face id has a slash, which a repository
directory cannot), so clients call /v2/models/<service>/...

Backends (`triton.backend`, default vllm for decoders and onnxruntime for encoders):
- vllm: Triton's batcher is off (max_batch_size 0) and one vLLM engine (instance kind KIND_MODEL) owns
  every GPU of the replica and batches continuously; the backend requires the decoupled transaction
  policy. `triton.maxBatchSize`, when set, becomes vLLM's max_num_seqs (else the plan's concurrency);
  `maxQueueDelayUs` and `instancesPerGpu` do not apply. `1/model.json` holds vLLM's engine arguments
  (AsyncEngineArgs field names), the service's `engineArgs` on top.
- onnxruntime, tensorrt, python: Triton's dynamic batcher with the spec's batch size and queue delay,
  `instancesPerGpu` instances on each of the replica's GPUs. The onnxruntime tensors are a sequence
  classifier's (a cross-encoder reranker exported with FP32 inputs and outputs); TensorRT and Python
  models describe their own tensors (Triton's auto-completed configuration).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from typing import Any

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from components.catalog import Catalog
from components.manifests import serving as s
from components.manifests.placement import ReplicaSet, replica_sets
from components.manifests.probes import PROBE_PERIOD_SECONDS, startup_failure_threshold
from components.manifests.images import serving_image
from components.manifests.monitoring import triton_trace_arguments
from components.manifests.vllm import engine_arguments
from components.planner.plan import ServicePoolPlan, StackPlan
from components.spec.models import ServiceSpec, StackSpec, TritonSpec

PORTS = {"http": s.API_PORT, "grpc": 8001, "metrics": 8002}
"""Container port names are a contract: the HTTPRoute uses the Service's first port, the PodMonitor
scrapes the port named `metrics` (components/manifests/monitoring.py)."""
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
EXIT_MARGIN_SECONDS = 5
EXIT_TIMEOUT_SECONDS = s.TERMINATION_GRACE_SECONDS - s.DRAIN_SECONDS - EXIT_MARGIN_SECONDS
"""Triton finishes in-flight requests for this long after SIGTERM, then exits before the kubelet kills it."""

MODEL_REPOSITORY = "/model-repository"
CONFIG_MOUNT = "/etc/inferfleet/triton"
CONFIG_FILE = "config.pbtxt"
VLLM_ENGINE_FILE = "model.json"
MODEL_VERSION = "1"
CONFIG_HASH_ANNOTATION = "inferfleet.io/model-config-sha256"
"""A changed model configuration changes the pod template, so the Deployment rolls its pods."""

VLLM_PARAMETERS = {"REPORT_CUSTOM_METRICS": "true", "ENABLE_VLLM_HEALTH_CHECK": "true"}
"""The vLLM backend's latency histograms and token counters on Triton's metrics port
(metric_names.TRITON_VLLM_BACKEND); a failed engine unloads the model, so /v2/health/ready fails and the
pod leaves the Service."""

_STRING, _BOOL = mc.DataType.TYPE_STRING, mc.DataType.TYPE_BOOL
VLLM_INPUTS = (("text_input", _STRING, False), ("stream", _BOOL, True), ("sampling_parameters", _STRING, True))
"""(name, type, optional) of the vLLM backend's request tensors, each of shape [1]; the backend
auto-completes its other optional inputs and outputs."""
VLLM_OUTPUT = "text_output"
ENCODER_INPUTS = ("input_ids", "attention_mask")
"""Token ids and mask, INT64 of shape [batch, sequence]: a Hugging Face encoder's ONNX export."""
ENCODER_OUTPUT = "logits"
ENCODER_LABELS = 1
"""A cross-encoder reranker scores each (query, passage) pair with one logit."""


def backend_of(service: ServiceSpec, catalog: Catalog) -> str:
    architecture = catalog.architecture_for(service.model)
    assert architecture is not None, "validated stacks name known models"
    return service.triton_backend(architecture.kind)


def _vllm_model(config: mc.ModelConfig) -> None:
    """vLLM batches continuously on its own: Triton's batcher off, requests handed over as they come
    (decoupled), and one engine that places itself on the replica's GPUs (KIND_MODEL: the backend
    refuses KIND_GPU for tensor or pipeline parallel engines)."""
    config.max_batch_size = 0
    config.model_transaction_policy.decoupled = True
    for name, data_type, optional in VLLM_INPUTS:
        config.input.add(name=name, data_type=data_type, dims=[1], optional=optional)
    config.output.add(name=VLLM_OUTPUT, data_type=_STRING, dims=[-1])
    config.instance_group.add(kind=mc.ModelInstanceGroup.Kind.KIND_MODEL, count=1)
    for key, value in VLLM_PARAMETERS.items():
        config.parameters[key].string_value = value


def _batched_model(config: mc.ModelConfig, settings: TritonSpec, gpus: int) -> None:
    """Triton's dynamic batcher forms the batches; each GPU of the replica runs its own instances."""
    config.max_batch_size = settings.max_batch_size
    config.dynamic_batching.max_queue_delay_microseconds = settings.max_queue_delay_us
    config.instance_group.add(
        kind=mc.ModelInstanceGroup.Kind.KIND_GPU, count=settings.instances_per_gpu, gpus=range(gpus)
    )


def _encoder_tensors(config: mc.ModelConfig) -> None:
    for name in ENCODER_INPUTS:
        config.input.add(name=name, data_type=mc.DataType.TYPE_INT64, dims=[-1])
    config.output.add(name=ENCODER_OUTPUT, data_type=mc.DataType.TYPE_FP32, dims=[ENCODER_LABELS])


def model_config_message(service: ServiceSpec, plan_entry: ServicePoolPlan, catalog: Catalog) -> mc.ModelConfig:
    """The service's Triton model configuration for one replica shape (its GPUs)."""
    backend = backend_of(service, catalog)
    config = mc.ModelConfig(name=model_name(service), backend=backend)
    if backend == "vllm":
        _vllm_model(config)
    else:
        _batched_model(config, service.triton or TritonSpec(), plan_entry.gpus_per_replica)
    if backend == "onnxruntime":
        _encoder_tensors(config)
    return config


def model_config(service: ServiceSpec, plan_entry: ServicePoolPlan, catalog: Catalog) -> str:
    """The `config.pbtxt` text: Triton's protobuf message in text format."""
    return text_format.MessageToString(model_config_message(service, plan_entry, catalog))


def _max_num_seqs(replica_set: ReplicaSet) -> int:
    """An explicit `triton.maxBatchSize` caps the engine's batch; otherwise the plan's concurrency."""
    settings = replica_set.service.triton
    if settings is not None and "max_batch_size" in settings.model_fields_set:
        return settings.max_batch_size
    return replica_set.plan.max_concurrent_sequences


def vllm_engine_args(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    """`1/model.json`: the vLLM engine arguments the vLLM manifests use, in the backend's spelling."""
    args = {key.replace("-", "_"): value for key, value in engine_arguments(replica_set, catalog).items()}
    args.pop("served_model_name", None)
    explicit = {key.replace("-", "_") for key in replica_set.engine_args}
    if "max_num_seqs" not in explicit:
        args["max_num_seqs"] = _max_num_seqs(replica_set)
    args["disable_log_stats"] = False
    return args


def config_files(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, str]:
    """File name -> content of the replica set's model configuration: what the ConfigMap holds and
    what `python -m components.manifests.triton_repository` writes into a model repository."""
    service = replica_set.service
    files = {CONFIG_FILE: model_config(service, replica_set.plan, catalog)}
    if backend_of(service, catalog) == "vllm":
        files[VLLM_ENGINE_FILE] = json.dumps(vllm_engine_args(replica_set, catalog), indent=2, sort_keys=True) + "\n"
    return files


def model_name(service: ServiceSpec) -> str:
    """The Triton model, and its directory in the repository: the service's name (a Hugging Face id has
    a slash, which a directory name cannot)."""
    return service.name


def repository_path(file_name: str) -> str:
    """Where a configuration file goes in the model's directory: config.pbtxt at its top, the vLLM
    backend's model.json in the version directory, where the backend reads it."""
    return f"{MODEL_VERSION}/{file_name}" if file_name == VLLM_ENGINE_FILE else file_name


def _config_map_name(replica_set: ReplicaSet) -> str:
    return f"{replica_set.name}-triton"


def config_map(replica_set: ReplicaSet, files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": s.metadata(_config_map_name(replica_set), s.replica_set_labels(replica_set)),
        "data": files,
    }


def _repository_commands(replica_set: ReplicaSet, backend: str) -> list[str]:
    """Shell lines that lay the model repository out in the emptyDir (see the module docstring)."""
    model_dir = f"{MODEL_REPOSITORY}/{model_name(replica_set.service)}"
    version_dir = f"{model_dir}/{MODEL_VERSION}"
    lines = [f"mkdir -p {model_dir}", f"cp {CONFIG_MOUNT}/{CONFIG_FILE} {model_dir}/{repository_path(CONFIG_FILE)}"]
    if backend == "vllm":
        engine_file = f"{model_dir}/{repository_path(VLLM_ENGINE_FILE)}"
        return lines + [f"mkdir -p {version_dir}", f"cp {CONFIG_MOUNT}/{VLLM_ENGINE_FILE} {engine_file}"]
    if s.s3_location(replica_set.service) is None:
        raise ValueError(f"service {replica_set.service.name}: Triton backend {backend} needs s3:// model files")
    cache = s.model_cache_dir(replica_set.service, replica_set.model_revision)
    return lines + [f"ln -sfn {shlex.quote(cache)} {version_dir}"]


def server_args() -> list[str]:
    """tritonserver's flags: the laid-out repository, every model loaded at start, metrics on their port."""
    return [
        f"--model-repository={MODEL_REPOSITORY}",
        "--model-control-mode=none",
        f"--http-port={PORTS['http']}",
        f"--grpc-port={PORTS['grpc']}",
        f"--metrics-port={PORTS['metrics']}",
        "--allow-metrics=true",
        "--allow-gpu-metrics=true",
        "--strict-readiness=true",
        f"--exit-timeout-secs={EXIT_TIMEOUT_SECONDS}",
    ]


def _command(replica_set: ReplicaSet, backend: str) -> list[str]:
    flags = server_args() + (triton_trace_arguments(replica_set.service.name) if replica_set.tracing else [])
    script = ["set -eu", *_repository_commands(replica_set, backend), "exec tritonserver " + " ".join(flags)]
    return ["/bin/bash", "-c", "\n".join(script)]


def _http_get(path: str) -> dict[str, Any]:
    """A fresh dict per probe: shared objects would become anchors in the rendered YAML."""
    return {"httpGet": {"path": path, "port": "http"}}


def _probes(replica_set: ReplicaSet) -> dict[str, Any]:
    """Startup allows the model's load time; after it, readiness gates traffic and liveness restarts."""
    return {
        "startupProbe": {
            **_http_get(READY_PATH),
            "periodSeconds": PROBE_PERIOD_SECONDS,
            "failureThreshold": startup_failure_threshold(replica_set.plan),
        },
        "readinessProbe": {**_http_get(READY_PATH), "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**_http_get(LIVE_PATH), "periodSeconds": 15, "failureThreshold": 4, "timeoutSeconds": 5},
    }


def _container(replica_set: ReplicaSet, catalog: Catalog) -> dict[str, Any]:
    backend = backend_of(replica_set.service, catalog)
    return {
        "name": "tritonserver",
        "image": serving_image(replica_set.service, catalog),
        "command": _command(replica_set, backend),
        "ports": [{"name": name, "containerPort": port, "protocol": "TCP"} for name, port in PORTS.items()],
        "env": [s.hf_token_env()],
        "resources": s.replica_resources(replica_set, catalog),
        "lifecycle": {"preStop": {"sleep": {"seconds": s.DRAIN_SECONDS}}},
        "volumeMounts": [
            s.hf_token_mount(),
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "weights", "mountPath": s.WEIGHT_CACHE_MOUNT, "readOnly": True},
            {"name": "model-config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            {"name": "model-repository", "mountPath": MODEL_REPOSITORY},
        ],
        **_probes(replica_set),
    }


def _volumes(replica_set: ReplicaSet, catalog: Catalog) -> list[dict[str, Any]]:
    return [
        s.shm_volume(s.shm_gib(replica_set, catalog)),
        s.weight_cache_volume(),
        {"name": "model-config", "configMap": {"name": _config_map_name(replica_set)}},
        {"name": "model-repository", "emptyDir": {"sizeLimit": "16Mi"}},
    ]


def _config_hash(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def deployment(replica_set: ReplicaSet, catalog: Catalog, files: dict[str, str]) -> dict[str, Any]:
    """One replica set's pods; a changed model configuration changes the template, so pods roll."""
    if replica_set.plan.nodes_per_replica > 1:
        raise ValueError(f"service {replica_set.service.name}: a Triton replica must fit one node")
    pod_spec = s.pod_spec(replica_set, _container(replica_set, catalog), _volumes(replica_set, catalog))
    return s.deployment(replica_set, pod_spec, {CONFIG_HASH_ANNOTATION: _config_hash(files)})


def _service_ports() -> list[dict[str, Any]]:
    return [{"name": name, "port": port, "targetPort": name, "protocol": "TCP"} for name, port in PORTS.items()]


def triton_objects(service: ServiceSpec, spec: StackSpec, plan: StackPlan, catalog: Catalog) -> list[dict[str, Any]]:
    """ConfigMap, Deployment and PDB per replica set; a Service per revision."""
    objects: list[dict[str, Any]] = []
    revisions: list[str] = []
    for replica_set in replica_sets(service, spec, plan):
        files = config_files(replica_set, catalog)
        objects += [
            config_map(replica_set, files),
            deployment(replica_set, catalog, files),
            s.pod_disruption_budget(replica_set),
        ]
        if replica_set.revision not in revisions:
            revisions.append(replica_set.revision)
    objects += [s.cluster_service(service, revision, _service_ports()) for revision in revisions]
    return objects

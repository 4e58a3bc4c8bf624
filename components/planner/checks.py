"""Rules that need the catalog's facts: instance types, model architectures and whether a model fits."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from components.catalog import Catalog, InstanceType
from components.catalog.eks_versions import ADDON_VERSIONS, SUPPORTED_KUBERNETES_VERSIONS
from components.catalog.vllm_options import vllm_options, vllm_options_version
from components.planner import constants as c
from components.planner.memory import kv_bytes_per_token, kv_cache_bytes_per_gpu
from components.planner.parallelism import ServiceOnPool, candidates, choose_replica, tensor_parallel_options
from components.spec.models import ModelArchitecture, ModelSpec, StackSpec
from components.spec.problems import Problem


def check_catalog_facts(spec: StackSpec, catalog: Catalog) -> list[Problem]:
    problems = list(_kubernetes_version_pinned(spec))
    problems += list(_instance_types_known(spec, catalog))
    problems += list(_models_known(spec, catalog))
    if problems:
        return problems
    for s, service in enumerate(spec.services):
        architecture = catalog.architecture_for(service.model)
        assert architecture is not None
        problems += list(_service_fits(spec, s, architecture, catalog))
        problems += list(_triton_backend_has_files(spec, s, architecture))
        problems += list(_engine_args_known(spec, s, architecture))
    return problems


def _kubernetes_version_pinned(spec: StackSpec) -> Iterator[Problem]:
    if spec.cluster.kubernetes_version not in ADDON_VERSIONS:
        yield Problem(
            ("cluster", "kubernetesVersion"),
            f"{spec.cluster.kubernetes_version} has no pinned EKS add-on versions; "
            f"supported: {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}",
        )


def _instance_types_known(spec: StackSpec, catalog: Catalog) -> Iterator[Problem]:
    for i, name in enumerate(spec.cluster.system_pool.instance_types):
        if name not in catalog.instance_types:
            yield Problem(("cluster", "systemPool", "instanceTypes", i), _unknown_instance(name, catalog))
    for p, pool in enumerate(spec.gpu_pools):
        gpu_counts = set()
        usable: list[InstanceType] = []
        for i, name in enumerate(pool.instance_types):
            path = ("gpuPools", p, "instanceTypes", i)
            instance = catalog.instance_types.get(name)
            if instance is None:
                yield Problem(path, _unknown_instance(name, catalog))
            elif instance.gpu_count == 0:
                yield Problem(path, f"{name} has no GPU")
            elif not (instance.offered_on_demand if pool.capacity_type == "onDemand" else instance.offered_spot):
                yield Problem(path, f"{name} is not sold as {pool.capacity_type} capacity (see its priceSource in the catalog)")
            else:
                gpu_counts.add(instance.gpu_count)
                usable.append(instance)
        mismatch = _shape_mismatch(usable)
        if mismatch:
            yield Problem(("gpuPools", p, "instanceTypes"), mismatch)
        if gpu_counts and pool.headroom_gpus > pool.max_size * min(gpu_counts):
            yield Problem(
                ("gpuPools", p, "headroomGpus"),
                f"{pool.headroom_gpus} GPUs of headroom but the pool holds at most "
                f"{pool.max_size * min(gpu_counts)} (maxSize {pool.max_size} x {min(gpu_counts)} GPUs)",
            )


def node_shape(instance: InstanceType) -> tuple[str | None, int, int, float]:
    """What Cluster Autoscaler assumes of every node of a group: GPU model and count, vCPUs, memory."""
    return (instance.gpu, instance.gpu_count, instance.vcpu, instance.memory_gib)


def _describe_shape(instance: InstanceType) -> str:
    return f"{instance.gpu_count} x {instance.gpu}, {instance.vcpu} vCPU, {instance.memory_gib:g} GiB"


def _shape_mismatch(instances: list[InstanceType]) -> str | None:
    """One shape per pool. Cluster Autoscaler builds a group's node template from one instance type (the
    first of a mixed instances policy) and its AWS README asks that a group's types "have the same amount
    of RAM and number of CPU cores"; the planner, the GPU label and the pods' requests assume one GPU
    model and count per pool too. Types of another shape belong in a pool of their own, which the
    priority expander orders against this one."""
    if not instances:
        return None
    first = instances[0]
    others = [i for i in instances[1:] if node_shape(i) != node_shape(first)]
    if not others:
        return None
    shapes = "; ".join(f"{i.name} is {_describe_shape(i)}" for i in [first, *others])
    return (
        "the instance types of a pool must share one shape (GPU model and count, vCPUs, memory: Cluster "
        f"Autoscaler sizes a group by one type): {shapes}; give each shape a pool of its own and name those "
        "pools in the services"
    )


def _unknown_instance(name: str, catalog: Catalog) -> str:
    family = name.split(".")[0]
    known = sorted(n for n in catalog.instance_types if n.startswith(family + "."))
    hint = f"; known {family} sizes: {', '.join(known)}" if known else ""
    return f"unknown instance type {name!r}{hint}"


def _models_known(spec: StackSpec, catalog: Catalog) -> Iterator[Problem]:
    for s, service in enumerate(spec.services):
        model: ModelSpec = service.model
        if isinstance(model.architecture, str) and model.architecture not in catalog.models:
            yield Problem(
                ("services", s, "model", "architecture"),
                f"unknown catalog model {model.architecture!r}; known: {', '.join(sorted(catalog.models))}",
            )
        elif catalog.architecture_for(model) is None:
            yield Problem(
                ("services", s, "model", "name"),
                f"{model.name!r} is not in the catalog; give model.architecture (a catalog id or the architecture inline)",
            )


SINGLE_NODE_ENGINES = ("triton",)
"""Engines whose replica the manifests run as one pod (vLLM spans nodes with LeaderWorkerSet)."""
TRITON_FILE_BACKENDS = ("onnxruntime", "tensorrt", "python")
"""Triton backends that load model files from the node cache, so they need s3:// weights."""


def _triton_backend_has_files(spec: StackSpec, s: int, architecture: ModelArchitecture) -> Iterator[Problem]:
    service = spec.services[s]
    if service.engine != "triton":
        return
    backend = service.triton_backend(architecture.kind)
    if backend in TRITON_FILE_BACKENDS and not service.model.uri.startswith("s3://"):
        yield Problem(
            ("services", s, "model", "uri"),
            f"Triton's {backend} backend loads model files from s3://; {service.model.uri} has none to load",
        )


def _engine_args_known(spec: StackSpec, s: int, architecture: ModelArchitecture) -> Iterator[Problem]:
    """Every engine runs vLLM except Triton's batched backends; vLLM's own parser (its options, read from
    the pinned release into the catalog) decides which engineArgs exist and whether they take a value."""
    service = spec.services[s]
    if service.engine == "triton" and service.triton_backend(architecture.kind) != "vllm":
        return
    options = vllm_options()
    for revision, engine_args in service.engine_args_by_revision():
        prefix = ("services", s, *([revision] if revision else []), "engineArgs")
        for key, value in engine_args.items():
            problem = _engine_arg_problem(key.replace("_", "-"), value, options)
            if problem:
                yield Problem((*prefix, key), problem)


def _engine_arg_problem(flag: str, value: object, options: dict[str, str]) -> str | None:
    arity = options.get(f"--{flag}")
    if arity is None:
        close = difflib.get_close_matches(f"--{flag}", list(options), n=1)
        hint = f"; did you mean {close[0][2:]}?" if close else ""
        return f"vLLM {vllm_options_version()} has no option --{flag}{hint}"
    if value is False and f"--no-{flag}" not in options:
        return f"--{flag} is a switch without a --no- form: leave it out instead of false"
    if isinstance(value, bool) and arity != "flag" and value is True:
        return f"--{flag} takes a value, not true"
    if not isinstance(value, bool) and arity == "flag":
        return f"--{flag} is a switch: give true or false, not {value!r}"
    return None


def _service_fits(spec: StackSpec, s: int, architecture: ModelArchitecture, catalog: Catalog) -> Iterator[Problem]:
    service = spec.services[s]
    context = architecture.context_length
    if service.max_model_len is not None and service.max_model_len > context:
        yield Problem(("services", s, "maxModelLen"), f"{service.max_model_len} exceeds the model's context length {context}")
        return
    pools = {pool.name: pool for pool in spec.gpu_pools}
    for p, pool_name in enumerate(service.pools):
        pool = pools[pool_name]
        for instance_name in pool.instance_types:
            instance = catalog.instance_types[instance_name]
            target = ServiceOnPool(service, architecture, instance, pool.max_size)
            shape_problem = _shape_problem(target)
            if shape_problem:
                field = "tensorParallelSize" if "tensor" in shape_problem else "pipelineParallelSize"
                yield Problem(("services", s, field), f"on pool {pool_name} ({instance_name}): {shape_problem}")
                return
            replica = choose_replica(target, catalog)
            if replica is None:
                yield Problem(("services", s, "pools", p), _does_not_fit(target, catalog))
                break
            if service.engine in SINGLE_NODE_ENGINES and replica.gpus > instance.gpu_count:
                yield Problem(
                    ("services", s, "pools", p),
                    f"a {service.engine} replica must fit one node, but on {instance_name} it needs "
                    f"{replica.gpus} GPUs ({instance.gpu_count} per node); use vllm or a larger instance type",
                )
                break


def _shape_problem(target: ServiceOnPool) -> str | None:
    service = target.service
    gpus = target.instance.gpu_count
    tp, pp = service.tensor_parallel_size, service.pipeline_parallel_size
    if isinstance(tp, int):
        allowed = tensor_parallel_options(target.architecture, gpus)
        if tp not in allowed:
            return (
                f"tensor parallel {tp} must divide the node's {gpus} GPUs and the model's "
                f"{target.architecture.attention_heads} attention heads; allowed: {allowed}"
            )
    if isinstance(pp, int):
        if pp > target.max_nodes:
            return f"pipeline parallel {pp} needs {pp} nodes but the pool's maxSize is {target.max_nodes}"
        if pp > 1 and isinstance(tp, int) and tp != gpus:
            return f"pipeline parallel across nodes needs tensor parallel = the node's {gpus} GPUs, not {tp}"
    return None


def _does_not_fit(target: ServiceOnPool, catalog: Catalog) -> str:
    largest = candidates(target, catalog)[-1]
    weights_gib = largest.weight_bytes / c.GIB
    kv_gib = kv_bytes_per_token(target.architecture, largest.kv_bytes_per_element) * target.max_model_len / c.GIB
    short_gib = -kv_cache_bytes_per_gpu(largest) * largest.gpus / c.GIB
    usable = largest.gpu.memory_gib * largest.gpus * largest.engine.gpu_memory_utilization
    what = "the weights" if short_gib > 0 else f"one {target.max_model_len}-token sequence of KV cache"
    return (
        f"{target.service.model.name} does not fit on {target.instance.name}: {weights_gib:.1f} GiB of "
        f"{target.service.model.dtype} weights + {kv_gib:.1f} GiB KV cache for one {target.max_model_len}-token "
        f"sequence, but TP={largest.tensor_parallel} x PP={largest.pipeline_parallel} gives {usable:.1f} GiB at "
        f"gpu-memory-utilization {largest.engine.gpu_memory_utilization} (not enough room for {what}); "
        "lower maxModelLen, quantize, or use larger GPUs"
    )

"""Tensor and pipeline parallel sizes: the ones a service fixes, or the smallest that fit (`auto`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from components.catalog import Catalog, InstanceType
from components.planner import constants as c
from components.planner.engine import engine_settings
from components.planner.memory import Replica, kv_cache_bytes_per_gpu, kv_cache_tokens
from components.spec.models import ModelArchitecture, ServiceSpec


@dataclass(frozen=True)
class ServiceOnPool:
    """What the planner needs to size one service on one pool's instance type."""

    service: ServiceSpec
    architecture: ModelArchitecture
    instance: InstanceType
    max_nodes: int

    @property
    def max_model_len(self) -> int:
        return self.service.max_model_len or self.architecture.context_length


def build_replica(target: ServiceOnPool, catalog: Catalog, tensor_parallel: int, pipeline_parallel: int) -> Replica:
    gpu = catalog.gpu_of(target.instance)
    return Replica(
        architecture=target.architecture,
        gpu=gpu,
        interconnect=target.instance.gpu_interconnect,
        weight_dtype=target.service.model.dtype,
        tensor_parallel=tensor_parallel,
        pipeline_parallel=pipeline_parallel,
        engine=engine_settings(target.service, gpu),
    )


def tensor_parallel_options(architecture: ModelArchitecture, gpus_per_node: int) -> list[int]:
    """TP sizes vLLM accepts on one node: they divide the node's GPUs and the attention heads, and
    either divide the KV heads or are a multiple of them."""
    return [
        tp
        for tp in range(1, gpus_per_node + 1)
        if gpus_per_node % tp == 0
        and architecture.attention_heads % tp == 0
        and (architecture.kv_heads % tp == 0 or tp % architecture.kv_heads == 0)
    ]


def fits(replica: Replica, max_model_len: int, sequences: int = 1, sequence_tokens: int | None = None) -> bool:
    """Weights, reserve and KV for one `max_model_len` sequence (and `sequences` of `sequence_tokens`) fit."""
    if replica.architecture.kind == "encoder":
        return kv_cache_bytes_per_gpu(replica) >= 0
    tokens = kv_cache_tokens(replica)
    return tokens >= max_model_len and tokens >= sequences * (sequence_tokens or 0)


def candidates(target: ServiceOnPool, catalog: Catalog) -> list[Replica]:
    """Every TP x PP the service allows on this pool, fewest GPUs first."""
    service = target.service
    gpus_per_node = target.instance.gpu_count
    tps = (
        [service.tensor_parallel_size]
        if isinstance(service.tensor_parallel_size, int)
        else tensor_parallel_options(target.architecture, gpus_per_node)
    )
    if isinstance(service.pipeline_parallel_size, int):
        shapes = [(tp, service.pipeline_parallel_size) for tp in tps]
    else:
        shapes = [(tp, 1) for tp in tps]
        if gpus_per_node in tps:
            deepest = min(target.max_nodes, target.architecture.layers)
            shapes += [(gpus_per_node, pp) for pp in range(2, deepest + 1)]
    shapes.sort(key=lambda shape: (shape[0] * shape[1], shape[1]))
    return [build_replica(target, catalog, tp, pp) for tp, pp in shapes]


def choose_replica(
    target: ServiceOnPool, catalog: Catalog, serves_slo: Callable[[Replica], bool] | None = None
) -> Replica | None:
    """The smallest shape with room for batching (that can meet the SLO, when `serves_slo` is given:
    a larger TP is the remedy for a slow step), else the smallest with room, else the smallest that fits."""
    options = candidates(target, catalog)
    workload = target.service.workload
    sequence_tokens = workload.input_tokens + workload.output_tokens
    roomy = [r for r in options if fits(r, target.max_model_len, c.AUTO_MIN_CONCURRENT_SEQUENCES, sequence_tokens)]
    if serves_slo is not None:
        serving = next((replica for replica in roomy if serves_slo(replica)), None)
        if serving is not None:
            return serving
    if roomy:
        return roomy[0]
    return next((replica for replica in options if fits(replica, target.max_model_len)), None)

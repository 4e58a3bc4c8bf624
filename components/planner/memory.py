"""GPU memory of one replica: weights, what vLLM reserves, and the KV cache left over."""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.catalog import Gpu
from components.planner import constants as c
from components.planner.engine import EngineSettings
from components.spec.models import ModelArchitecture


@dataclass(frozen=True)
class Replica:
    """One copy of a model on TP x PP GPUs of one kind: the unit every estimate is made for."""

    architecture: ModelArchitecture
    gpu: Gpu
    interconnect: str
    weight_dtype: str
    tensor_parallel: int
    pipeline_parallel: int
    engine: EngineSettings

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def weight_bytes(self) -> float:
        return self.architecture.parameters * c.WEIGHT_BYTES_PER_PARAMETER[self.weight_dtype]

    @property
    def kv_bytes_per_element(self) -> float:
        return c.KV_CACHE_BYTES_PER_ELEMENT[self.engine.kv_cache_dtype]


def kv_bytes_per_token(architecture: ModelArchitecture, bytes_per_element: float) -> float:
    """Whole-model KV cache per token: 2 (K and V) x layers x KV heads x head dim x bytes."""
    return 2 * architecture.layers * architecture.kv_heads * architecture.head_dimension * bytes_per_element


def kv_bytes_per_token_per_gpu(replica: Replica) -> float:
    """KV heads split over TP (replicated when TP exceeds them), layers split over PP."""
    arch = replica.architecture
    heads_per_gpu = max(1.0, arch.kv_heads / replica.tensor_parallel)
    layers_per_gpu = math.ceil(arch.layers / replica.pipeline_parallel)
    return 2 * layers_per_gpu * heads_per_gpu * arch.head_dimension * replica.kv_bytes_per_element


def reserved_bytes_per_gpu(replica: Replica) -> float:
    """Non-KV, non-weight memory vLLM's profile run finds: runtime, NCCL, peak activations, logits."""
    arch = replica.architecture
    intermediate = arch.intermediate_size or 4 * arch.hidden_size
    per_token = (4 * arch.hidden_size + 2 * intermediate / replica.tensor_parallel) * c.ACTIVATION_BYTES
    activations = replica.engine.max_num_batched_tokens * per_token
    logits = replica.engine.max_num_seqs * arch.vocab_size * c.LOGITS_BYTES / replica.tensor_parallel
    runtime = c.NON_TORCH_MEMORY_GIB + (c.NCCL_MEMORY_GIB if replica.gpus > 1 else 0.0)
    return runtime * c.GIB + activations + logits


def kv_cache_bytes_per_gpu(replica: Replica) -> float:
    """What vLLM hands to the KV cache: the utilisation share of the GPU minus weights and reserve (may be < 0)."""
    budget = replica.gpu.memory_gib * c.GIB * replica.engine.gpu_memory_utilization
    return budget - replica.weight_bytes / replica.gpus - reserved_bytes_per_gpu(replica)


def kv_cache_tokens(replica: Replica) -> int:
    """Tokens of KV cache a replica holds; 0 when the weights alone do not fit."""
    free = kv_cache_bytes_per_gpu(replica)
    return max(0, int(free // kv_bytes_per_token_per_gpu(replica)))

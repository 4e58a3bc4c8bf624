"""The engine settings that shape capacity: vLLM's defaults for the GPU, overridden by `engineArgs`."""

from __future__ import annotations

from dataclasses import dataclass
from components.catalog import Gpu
from components.planner import constants as c
from components.spec.models import ServiceSpec


@dataclass(frozen=True)
class EngineSettings:
    gpu_memory_utilization: float
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_cache_dtype: str


def engine_settings(service: ServiceSpec, gpu: Gpu) -> EngineSettings:
    large = gpu.memory_gib >= c.LARGE_GPU_MEMORY_GIB and "A100" not in gpu.name
    kv_dtype = service.engine_arg("kv-cache-dtype")
    return EngineSettings(
        gpu_memory_utilization=float(service.engine_arg("gpu-memory-utilization") or c.VLLM_GPU_MEMORY_UTILIZATION),
        max_num_seqs=int(
            service.engine_arg("max-num-seqs") or (c.VLLM_MAX_NUM_SEQS_LARGE_GPU if large else c.VLLM_MAX_NUM_SEQS_SMALL_GPU)
        ),
        max_num_batched_tokens=int(
            service.engine_arg("max-num-batched-tokens")
            or (c.VLLM_MAX_NUM_BATCHED_TOKENS_LARGE_GPU if large else c.VLLM_MAX_NUM_BATCHED_TOKENS_SMALL_GPU)
        ),
        kv_cache_dtype="fp8" if str(kv_dtype or service.model.kv_cache_dtype).startswith("fp8") else "auto",
    )


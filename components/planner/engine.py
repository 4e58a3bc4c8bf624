"""The engine settings that shape capacity: vLLM's defaults for the GPU, overridden by `engineArgs`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import Gpu
from components.planner import constants as c
from components.spec.models import ServiceSpec


@dataclass(frozen=True)
class EngineSettings:
    gpu_memory_utilization: float
    max_num_seqs: int
    max_num_batched_tokens: int
    kv_cache_dtype: str


def engine_arg(engine_args: dict[str, Any], name: str) -> Any:
    """`engineArgs` may spell a flag with dashes or underscores; both mean the same vLLM argument."""
    for key, value in engine_args.items():
        if key.replace("_", "-") == name:
            return value
    return None


def engine_settings(service: ServiceSpec, gpu: Gpu) -> EngineSettings:
    large = gpu.memory_gib >= c.LARGE_GPU_MEMORY_GIB and "A100" not in gpu.name
    args = service.engine_args
    kv_dtype = engine_arg(args, "kv-cache-dtype")
    return EngineSettings(
        gpu_memory_utilization=float(engine_arg(args, "gpu-memory-utilization") or c.VLLM_GPU_MEMORY_UTILIZATION),
        max_num_seqs=int(
            engine_arg(args, "max-num-seqs") or (c.VLLM_MAX_NUM_SEQS_LARGE_GPU if large else c.VLLM_MAX_NUM_SEQS_SMALL_GPU)
        ),
        max_num_batched_tokens=int(
            engine_arg(args, "max-num-batched-tokens")
            or (c.VLLM_MAX_NUM_BATCHED_TOKENS_LARGE_GPU if large else c.VLLM_MAX_NUM_BATCHED_TOKENS_SMALL_GPU)
        ),
        kv_cache_dtype="fp8" if str(kv_dtype or service.model.kv_cache_dtype).startswith("fp8") else "auto",
    )


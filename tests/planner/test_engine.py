"""vLLM's batch defaults by GPU and their overrides from the spec."""

import pytest

from components.catalog import load_catalog
from components.planner.engine import engine_settings
from components.spec.models import ServiceSpec


def service(engine_args=None, kv_cache_dtype="auto") -> ServiceSpec:
    return ServiceSpec.model_validate(
        {"name": "chat", "engine": "vllm",
         "model": {"name": "m", "uri": "s3://models-bucket/m", "kvCacheDtype": kv_cache_dtype},
         "pools": ["p"], "replicas": {"max": 1}, "engineArgs": engine_args or {},
         "workload": {"inputTokens": 10, "outputTokens": 10, "peakRequestsPerSecond": 1}}
    )


@pytest.mark.parametrize(
    "gpu,seqs,tokens",
    [("L4", 256, 2048), ("A100-SXM4-80GB", 256, 2048), ("H100-SXM5-80GB", 1024, 8192), ("H200-SXM-141GB", 1024, 8192)],
)
def test_defaults_follow_vllm_by_gpu_memory_except_a100(gpu, seqs, tokens):
    settings = engine_settings(service(), load_catalog().gpus[gpu])
    assert (settings.gpu_memory_utilization, settings.max_num_seqs, settings.max_num_batched_tokens) == (0.9, seqs, tokens)
    assert settings.kv_cache_dtype == "auto"


def test_engine_args_override_the_defaults():
    args = {"gpu_memory_utilization": 0.8, "max-num-seqs": 64, "max-num-batched-tokens": 16384, "kv-cache-dtype": "fp8_e4m3"}
    settings = engine_settings(service(args), load_catalog().gpus["L4"])
    assert (settings.gpu_memory_utilization, settings.max_num_seqs, settings.max_num_batched_tokens) == (0.8, 64, 16384)
    assert settings.kv_cache_dtype == "fp8"


def test_model_kv_cache_dtype_applies_without_engine_args():
    assert engine_settings(service(kv_cache_dtype="fp8"), load_catalog().gpus["L4"]).kv_cache_dtype == "fp8"

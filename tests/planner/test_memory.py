"""Memory of one replica, each expected value worked by hand from the fixture's numbers."""

import dataclasses

import pytest

from components.planner.memory import (
    kv_bytes_per_token,
    kv_bytes_per_token_per_gpu,
    kv_cache_bytes_per_gpu,
    kv_cache_tokens,
    reserved_bytes_per_gpu,
)


def test_kv_bytes_per_token_is_two_times_layers_kv_heads_head_dim_bytes(llama_8b, llama_70b):
    assert kv_bytes_per_token(llama_8b, 2) == 2 * 32 * 8 * 128 * 2 == 131_072
    assert kv_bytes_per_token(llama_70b, 2) == 327_680
    assert kv_bytes_per_token(llama_70b, 1) == 163_840


def test_kv_heads_split_over_tensor_parallel(replica_8b):
    tp4 = dataclasses.replace(replica_8b, tensor_parallel=4)
    assert kv_bytes_per_token_per_gpu(tp4) == 2 * 32 * 2 * 128 * 2


def test_kv_heads_replicated_when_tensor_parallel_exceeds_them(replica_8b):
    tp16 = dataclasses.replace(replica_8b, tensor_parallel=16)
    assert kv_bytes_per_token_per_gpu(tp16) == 2 * 32 * 1 * 128 * 2


def test_layers_split_over_pipeline_parallel(replica_8b):
    pp2 = dataclasses.replace(replica_8b, pipeline_parallel=2)
    assert kv_bytes_per_token_per_gpu(pp2) == 2 * 16 * 8 * 128 * 2


def test_weights_count_two_bytes_per_parameter_in_bfloat16(replica_8b):
    assert replica_8b.weight_bytes == 16_060_522_496
    assert dataclasses.replace(replica_8b, weight_dtype="fp8").weight_bytes == 8_030_261_248
    assert dataclasses.replace(replica_8b, weight_dtype="int4").weight_bytes == 4_015_130_624


def test_reserve_is_runtime_plus_profile_activations_plus_logits(replica_8b):
    # runtime 0.75 GiB; activations 8192 tokens x (4 x 4096 + 2 x 14336) x 2 B; logits 1024 x 128256 x 4 B
    assert reserved_bytes_per_gpu(replica_8b) == 805_306_368 + 738_197_504 + 525_336_576


def test_kv_cache_gets_utilisation_share_minus_weights_and_reserve(replica_8b):
    # 80 GiB x 0.9 = 77,309,411,328 B; minus 16,060,522,496 weights; minus 2,068,840,448 reserve
    assert kv_cache_bytes_per_gpu(replica_8b) == pytest.approx(59_180_048_384)
    assert kv_cache_tokens(replica_8b) == 451_507  # 59,180,048,384 / 131,072 = 451,507.94


def test_no_kv_cache_when_weights_do_not_fit(replica_8b, llama_70b):
    too_big = dataclasses.replace(replica_8b, architecture=llama_70b)
    assert kv_cache_bytes_per_gpu(too_big) < 0
    assert kv_cache_tokens(too_big) == 0

"""Roofline step times, worked by hand with the IDEAL efficiency (datasheet figures, no overheads)."""

import dataclasses

import pytest

from components.planner.constants import IDEAL, Efficiency
from components.planner.performance import (
    Workload,
    _weights_read_bytes,
    max_batch,
    output_tokens_per_second,
    step_seconds,
    time_to_first_token_seconds,
)


def test_lone_decode_step_is_bound_by_reading_weights_and_kv(replica_8b):
    # bytes: 16,060,522,496 weights + 1,000 x 131,072 KV = 16,191,594,496 at 3.35 TB/s
    # flops: 2 x 8.03e9 + 4 x 1,000 x 131,072 = 1.66e10 at 989 TFLOP/s -> 17 us, so memory bound
    assert step_seconds(replica_8b, 1, 1000, 0, 0, IDEAL) == pytest.approx(16_191_594_496 / 3.35e12)


def test_large_prefill_step_is_bound_by_compute(replica_8b):
    # 8,192 prompt tokens with a mean attention span of 512:
    # 2 x 8,030,261,248 x 8,192 + 4 x 8,192 x 512 x (32 x 128 x 32) = 1.3378e14 FLOPs at 989 TFLOP/s
    flops = 2 * 8_030_261_248 * 8192 + 4 * 8192 * 512 * 131_072
    assert step_seconds(replica_8b, 0, 0, 8192, 512, IDEAL) == pytest.approx(flops / 989e12)


def test_fp8_weights_use_fp8_tensor_cores(replica_8b):
    fp8 = dataclasses.replace(replica_8b, weight_dtype="fp8")
    flops = 2 * 8_030_261_248 * 8192 + 4 * 8192 * 512 * 131_072
    assert step_seconds(fp8, 0, 0, 8192, 512, IDEAL) == pytest.approx(flops / 1979e12)


def test_efficiency_and_overheads_slow_a_step(replica_8b):
    slow = Efficiency(0.5, 0.5, 0.5, 0.002, {"nvlink": 1e-5, "pcie": 3e-5, "none": 0.0}, 0.5, 0.0)
    assert step_seconds(replica_8b, 1, 1000, 0, 0, slow) == pytest.approx(16_191_594_496 / 1.675e12 + 0.002)
    tp2 = dataclasses.replace(replica_8b, tensor_parallel=2)
    # half the weights and KV per GPU, plus two all-reduces per layer, each 10 us plus
    # 2 x (1/2) x 1 token x 4,096 x 2 bytes = 8,192 bytes over 450 GB/s x 0.5
    allreduce = 1e-5 + 8192 / 225e9
    expected = (8_030_261_248 + 1000 * 65_536) / 1.675e12 + 64 * allreduce + 0.002
    assert step_seconds(tp2, 1, 1000, 0, 0, slow) == pytest.approx(expected)


def test_moe_step_reads_only_the_experts_its_tokens_touch(replica_8b, mixtral):
    moe = dataclasses.replace(replica_8b, architecture=mixtral)
    # per expert (46,702,792,704 - 12,879,925,248) / 6; one token touches 2 experts: the active weights
    assert _weights_read_bytes(moe, 1) == pytest.approx(12_879_925_248 * 2)
    # 4 tokens touch 8 x (1 - 0.75^4) = 5.46875 experts on average
    per_expert = (46_702_792_704 - 12_879_925_248) / 6
    shared = 46_702_792_704 - 8 * per_expert
    assert _weights_read_bytes(moe, 4) == pytest.approx((shared + 5.46875 * per_expert) * 2)
    assert _weights_read_bytes(moe, 10_000) == pytest.approx(46_702_792_704 * 2)


def test_batch_limited_by_kv_cache_then_max_num_seqs_then_token_budget(replica_8b):
    # 451,507 KV tokens / 1,200 per sequence = 376
    assert max_batch(replica_8b, Workload(1000, 200)) == 376
    # 451,507 / 300 = 1,505 but max-num-seqs is 1,024
    assert max_batch(replica_8b, Workload(100, 200)) == 1024
    # each sequence brings 1 + 4000/10 = 401 tokens per step: 8,192 / 401 = 20
    assert max_batch(replica_8b, Workload(4000, 10)) == 20


def test_throughput_is_batch_over_step_time(replica_8b):
    workload = Workload(1000, 200)
    step = step_seconds(replica_8b, 64, 1100, 64 * 5, 500, IDEAL)
    assert output_tokens_per_second(replica_8b, workload, 64, IDEAL) == pytest.approx(64 / step)


def test_time_to_first_token_counts_prompt_chunks(replica_8b):
    workload = Workload(20_000, 100)
    # budget per step 8,192 - 10 running = 8,182 -> 3 chunks
    step = step_seconds(replica_8b, 10, 20_050, 8182, 10_000, IDEAL)
    assert time_to_first_token_seconds(replica_8b, workload, 10, IDEAL) == pytest.approx(3 * step)

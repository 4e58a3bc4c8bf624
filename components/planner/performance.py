"""Roofline estimates of a replica's speed under continuous batching with chunked prefill.

A vLLM engine step runs every running sequence's next decode token together with a chunk of
waiting prompts. The step costs the larger of its HBM traffic (weights once, plus each
sequence's KV cache) and its tensor-core work (2 FLOPs per active parameter per token, plus
attention), each divided by what the GPU achieves; plus fixed per-step and all-reduce costs.
In steady state at batch b with mean lengths I in / O out, each step carries b decode tokens
and b x I / O prompt tokens (every finished sequence was once a prompt of I tokens), so one
formula gives saturated throughput (b / step), inter-token latency (the step) and, with the
chunk budget, time to first token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.planner import constants as c
from components.planner.constants import Efficiency
from components.planner.memory import Replica, kv_bytes_per_token_per_gpu, kv_cache_tokens


@dataclass(frozen=True)
class Workload:
    input_tokens: int
    output_tokens: int


def _flops_per_second(replica: Replica, efficiency: Efficiency) -> float:
    """Achieved tensor FLOP/s: FP8 cores for W8A8 weights where the GPU has them, else 16-bit."""
    gpu = replica.gpu
    if replica.weight_dtype in c.FP8_COMPUTE_DTYPES and gpu.fp8_dense_tflops:
        return gpu.fp8_dense_tflops * 1e12 * efficiency.compute_fp8
    return gpu.bf16_dense_tflops * 1e12 * efficiency.compute


def _weights_read_bytes(replica: Replica, tokens: float) -> float:
    """Weight bytes a step streams from HBM: shared weights plus the experts its tokens touch."""
    arch = replica.architecture
    if arch.experts <= 0 or arch.active_experts <= 0 or tokens <= 0:
        return replica.weight_bytes
    per_expert = (arch.parameters - arch.parameters_per_token) / (arch.experts - arch.active_experts)
    shared = arch.parameters - arch.experts * per_expert
    touched = arch.experts * (1 - (1 - arch.active_experts / arch.experts) ** tokens)
    return (shared + touched * per_expert) * c.WEIGHT_BYTES_PER_PARAMETER[replica.weight_dtype]


def step_seconds(
    replica: Replica,
    decode_sequences: float,
    context_tokens: float,
    prefill_tokens: float,
    prefill_context: float,
    efficiency: Efficiency,
) -> float:
    """One engine step: `decode_sequences` tokens at mean context `context_tokens`, plus `prefill_tokens`
    prompt tokens whose mean attention span is `prefill_context`."""
    arch = replica.architecture
    gpus = replica.gpus
    pp = replica.pipeline_parallel
    micro_decode = decode_sequences / pp
    micro_prefill = prefill_tokens / pp
    tokens = micro_decode + micro_prefill
    memory_bytes = _weights_read_bytes(replica, tokens) / gpus + (
        micro_decode * context_tokens * kv_bytes_per_token_per_gpu(replica)
    )
    attention_width = arch.attention_heads * arch.head_dimension * arch.layers
    flops = (
        2 * arch.parameters_per_token * tokens
        + 4 * micro_decode * context_tokens * attention_width
        + 4 * micro_prefill * prefill_context * attention_width
    ) / gpus
    stage = max(
        memory_bytes / (replica.gpu.memory_bandwidth_gbps * 1e9 * efficiency.memory_bandwidth),
        flops / _flops_per_second(replica, efficiency),
    )
    if replica.tensor_parallel > 1:
        stage += 2 * math.ceil(arch.layers / pp) * _allreduce_seconds(replica, tokens, efficiency)
    return pp * stage + efficiency.step_overhead_s


def _allreduce_seconds(replica: Replica, tokens: float, efficiency: Efficiency) -> float:
    """One ring all-reduce of the step's 16-bit activations: each GPU sends 2 (TP - 1) / TP of them."""
    tp = replica.tensor_parallel
    volume = 2 * (tp - 1) / tp * tokens * replica.architecture.hidden_size * 2
    bandwidth = replica.gpu.interconnect_gbps * 1e9 * efficiency.interconnect
    return efficiency.allreduce_latency_s[replica.interconnect] + volume / bandwidth


def max_batch(replica: Replica, workload: Workload, kv_tokens: int | None = None) -> int:
    """Most sequences a replica runs at once: KV cache, `max-num-seqs` and the per-step token budget."""
    kv_tokens = kv_cache_tokens(replica) if kv_tokens is None else kv_tokens
    by_kv = kv_tokens // (workload.input_tokens + workload.output_tokens)
    tokens_per_sequence_step = 1 + workload.input_tokens / max(workload.output_tokens, 1)
    by_budget = int(replica.engine.max_num_batched_tokens / tokens_per_sequence_step)
    return max(0, min(by_kv, replica.engine.max_num_seqs, by_budget))


def steady_step_seconds(replica: Replica, workload: Workload, batch: float, efficiency: Efficiency) -> float:
    ratio = workload.input_tokens / workload.output_tokens
    return step_seconds(
        replica,
        decode_sequences=batch,
        context_tokens=workload.input_tokens + workload.output_tokens / 2,
        prefill_tokens=batch * ratio,
        prefill_context=workload.input_tokens / 2,
        efficiency=efficiency,
    )


def output_tokens_per_second(replica: Replica, workload: Workload, batch: float, efficiency: Efficiency) -> float:
    """Saturated output throughput of one replica running `batch` sequences."""
    if batch <= 0:
        return 0.0
    return batch / steady_step_seconds(replica, workload, batch, efficiency)


def inter_token_seconds(replica: Replica, workload: Workload, batch: float, efficiency: Efficiency) -> float:
    return steady_step_seconds(replica, workload, batch, efficiency)


def time_to_first_token_seconds(replica: Replica, workload: Workload, batch: float, efficiency: Efficiency) -> float:
    """A new prompt is prefilled in chunks of what the step budget leaves after the running decodes."""
    budget = max(1.0, replica.engine.max_num_batched_tokens - batch)
    chunk = min(workload.input_tokens, budget)
    chunks = math.ceil(workload.input_tokens / budget)
    step = step_seconds(
        replica,
        decode_sequences=batch,
        context_tokens=workload.input_tokens + workload.output_tokens / 2,
        prefill_tokens=chunk,
        prefill_context=workload.input_tokens / 2,
        efficiency=efficiency,
    )
    return chunks * step + efficiency.api_overhead_s


def encoder_step_seconds(replica: Replica, workload: Workload, efficiency: Efficiency) -> float:
    """An encoder (embedding, reranking) step: a full token budget of prompts, no decode."""
    tokens = max(replica.engine.max_num_batched_tokens, workload.input_tokens)
    return step_seconds(replica, 0, 0, tokens, workload.input_tokens, efficiency)

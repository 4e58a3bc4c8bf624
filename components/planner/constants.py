"""Every tunable number of the planner, with where it comes from.

Engine defaults mirror vLLM (the engine under all three stacks for LLMs: Ray Serve LLM and
Triton's vLLM backend run it too); efficiency factors are calibrated against the published
measurements in `components/catalog/data/throughput_measurements.yaml` by
`tests/planner/test_calibration.py`, which prints the error per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3

# --- vLLM defaults (vllm/engine/arg_utils.py, EngineArgs.get_batch_defaults, OpenAI server) ---
VLLM_GPU_MEMORY_UTILIZATION = 0.9
LARGE_GPU_MEMORY_GIB = 70
"""GPUs with at least this much memory (and not A100) get vLLM's larger batch defaults."""
VLLM_MAX_NUM_SEQS_SMALL_GPU = 256
VLLM_MAX_NUM_SEQS_LARGE_GPU = 1024
VLLM_MAX_NUM_BATCHED_TOKENS_SMALL_GPU = 2048
VLLM_MAX_NUM_BATCHED_TOKENS_LARGE_GPU = 8192
VLLM_OFFLINE_MAX_NUM_SEQS_SMALL_GPU = 256
VLLM_OFFLINE_MAX_NUM_SEQS_LARGE_GPU = 1024
VLLM_OFFLINE_MAX_NUM_BATCHED_TOKENS_SMALL_GPU = 8192
VLLM_OFFLINE_MAX_NUM_BATCHED_TOKENS_LARGE_GPU = 16384
"""The same function's `LLM` class (offline) defaults, which throughput benchmarks run with."""

WEIGHT_BYTES_PER_PARAMETER = {"bfloat16": 2.0, "float16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
KV_CACHE_BYTES_PER_ELEMENT = {"auto": 2.0, "fp8": 1.0}
FP8_COMPUTE_DTYPES = frozenset({"fp8"})
"""Weight dtypes whose matrix multiplies run on FP8 tensor cores (W8A8); int8/int4 are weight-only here."""

# --- memory vLLM keeps outside weights and KV cache, per GPU ---
NON_TORCH_MEMORY_GIB = 0.75
"""CUDA context, cuBLAS workspaces and CUDA graphs: about 0.5-1 GiB per GPU in vLLM's startup logs."""
NCCL_MEMORY_GIB = 0.5
"""Extra per GPU when tensor or pipeline parallel > 1 (NCCL buffers and custom all-reduce)."""
ACTIVATION_BYTES = 2
"""Activations are 16-bit; the profile run holds about 4 x hidden + 2 x intermediate / TP per token."""
LOGITS_BYTES = 4
"""vLLM computes the sampled positions' logits in float32 during its profile run."""

# --- auto parallelism ---
AUTO_MIN_CONCURRENT_SEQUENCES = 16
"""`auto` picks the smallest TP x PP whose KV cache holds this many workload-length sequences:
below it, batches are too thin for decode to use the GPU's compute."""


@dataclass(frozen=True)
class Efficiency:
    """How far real kernels fall short of the datasheet, and fixed costs per step."""

    memory_bandwidth: float
    """Achieved / datasheet HBM bandwidth on weight and KV reads."""
    compute: float
    """Achieved / datasheet dense 16-bit tensor FLOP/s on the matrix multiplies of a mixed step."""
    compute_fp8: float
    """The same for FP8 (W8A8) matrix multiplies, which reach a smaller share of their higher peak."""
    step_overhead_s: float
    """Scheduling, sampling, detokenisation and kernel launch gaps per engine step."""
    allreduce_latency_s: dict[str, float]
    """Latency of one tensor-parallel all-reduce by interconnect (two per layer per step)."""
    interconnect: float
    """Achieved / datasheet GPU-to-GPU bandwidth of a ring all-reduce; infinite means fully overlapped."""
    api_overhead_s: float
    """HTTP, tokenisation and queue hand-off before the first step sees a request."""


CALIBRATED = Efficiency(
    memory_bandwidth=0.6,
    compute=0.45,
    compute_fp8=0.35,
    step_overhead_s=0.0,
    allreduce_latency_s={"nvlink": 10e-6, "pcie": 30e-6, "none": 0.0},
    interconnect=0.3,
    api_overhead_s=0.010,
)
"""Fitted by `fit_efficiency` (components/planner/calibration.py) to the calibration table; all-reduce
latencies and the API overhead are not fitted (typical NCCL and HTTP figures); see the module docstring."""

IDEAL = Efficiency(
    memory_bandwidth=1.0,
    compute=1.0,
    compute_fp8=1.0,
    step_overhead_s=0.0,
    allreduce_latency_s={"nvlink": 0.0, "pcie": 0.0, "none": 0.0},
    interconnect=math.inf,
    api_overhead_s=0.0,
)
"""Datasheet roofline with communication fully hidden: an upper bound no real engine can beat."""

# --- from mean latency to the 99th percentile the SLO names ---
TTFT_P99_OVER_MEAN = 2.0
"""Under Poisson arrivals prefill queues; vLLM benchmark runs near saturation show p99 TTFT at 2-3x mean."""
ITL_P99_OVER_MEAN = 1.5
"""Chunked prefill stretches the steps that carry a prompt chunk; p99 ITL runs about 1.3-1.6x mean."""

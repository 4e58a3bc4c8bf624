"""The planner's throughput model replayed on published measurements, and the fit of its efficiencies.

A measurement is replayed with the engine's offline defaults (benchmarks run `LLM` or push
every request at once) capped by the benchmark's own concurrency. The roofline bound uses
datasheet figures, the whole GPU memory for KV cache and no overheads: no real run can beat it.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass, replace

from components.catalog import Catalog
from components.catalog.measurements import Measurement
from components.planner import constants as c
from components.planner.constants import CALIBRATED, IDEAL, Efficiency
from components.planner.engine import EngineSettings
from components.planner.memory import Replica, kv_bytes_per_token_per_gpu
from components.planner.performance import Workload, max_batch, output_tokens_per_second


@dataclass(frozen=True)
class Replay:
    measurement: Measurement
    predicted: float
    upper_bound: float

    @property
    def error(self) -> float:
        """Signed relative error of the prediction against the measured figure."""
        return self.predicted / self.measurement.output_tokens_per_second - 1


def _engine(measurement: Measurement, gpu_name: str, large: bool) -> EngineSettings:
    """vLLM's offline defaults for the GPU, the benchmark's concurrency as the batch cap."""
    seqs = c.VLLM_OFFLINE_MAX_NUM_SEQS_LARGE_GPU if large else c.VLLM_OFFLINE_MAX_NUM_SEQS_SMALL_GPU
    tokens = c.VLLM_OFFLINE_MAX_NUM_BATCHED_TOKENS_LARGE_GPU if large else c.VLLM_OFFLINE_MAX_NUM_BATCHED_TOKENS_SMALL_GPU
    return EngineSettings(
        gpu_memory_utilization=c.VLLM_GPU_MEMORY_UTILIZATION,
        max_num_seqs=min(seqs, measurement.concurrency or seqs),
        max_num_batched_tokens=tokens,
        kv_cache_dtype=measurement.kv_cache_dtype,
    )


def _replica(measurement: Measurement, catalog: Catalog) -> Replica:
    gpu = catalog.gpus[measurement.gpu]
    large = gpu.memory_gib >= c.LARGE_GPU_MEMORY_GIB and "A100" not in gpu.name
    interconnect = next(
        (i.gpu_interconnect for i in catalog.instance_types.values() if i.gpu == measurement.gpu), "nvlink"
    )
    return Replica(
        architecture=catalog.models[measurement.model],
        gpu=gpu,
        interconnect=interconnect,
        weight_dtype=measurement.dtype,
        tensor_parallel=measurement.tensor_parallel_size,
        pipeline_parallel=measurement.pipeline_parallel_size,
        engine=_engine(measurement, gpu.name, large),
    )


def _throughput(replica: Replica, measurement: Measurement, efficiency: Efficiency, batch: int) -> float:
    workload = Workload(measurement.input_tokens, measurement.output_tokens)
    return measurement.replicas * output_tokens_per_second(replica, workload, batch, efficiency)


def _bound_batch(replica: Replica, measurement: Measurement) -> int:
    """The most sequences any engine could hold: all GPU memory but the weights as KV cache,
    no step budget, capped only by the benchmark's concurrency."""
    free = replica.gpu.memory_gib * c.GIB - replica.weight_bytes / replica.gpus
    sequences = int(free // kv_bytes_per_token_per_gpu(replica)) // (measurement.input_tokens + measurement.output_tokens)
    return min(sequences, measurement.concurrency or sequences)


def replay(measurement: Measurement, catalog: Catalog, efficiency: Efficiency = CALIBRATED) -> Replay:
    replica = _replica(measurement, catalog)
    workload = Workload(measurement.input_tokens, measurement.output_tokens)
    predicted = _throughput(replica, measurement, efficiency, max_batch(replica, workload))
    upper = _throughput(replica, measurement, IDEAL, _bound_batch(replica, measurement))
    return Replay(measurement, predicted, upper)


def fit_efficiency(measurements: tuple[Measurement, ...], catalog: Catalog) -> tuple[Efficiency, float]:
    """Grid search for the efficiencies that minimise the median absolute log error."""
    best: tuple[float, Efficiency] | None = None
    for memory, compute, overhead in itertools.product(
        [0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9],
        [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75],
        [0.0, 0.001, 0.002, 0.003, 0.005, 0.008],
    ):
        candidate = replace(CALIBRATED, memory_bandwidth=memory, compute=compute, step_overhead_s=overhead)
        errors = [abs(math.log(replay(m, catalog, candidate).predicted / m.output_tokens_per_second)) for m in measurements]
        score = statistics.median(errors) + 0.5 * statistics.mean(errors)
        if best is None or score < best[0]:
            best = (score, candidate)
    assert best is not None
    return best[1], best[0]

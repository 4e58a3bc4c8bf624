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


FIT_GRID = {
    "memory_bandwidth": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8),
    "compute": (0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6),
    "compute_fp8": (0.2, 0.25, 0.3, 0.35, 0.4),
    "step_overhead_s": (0.0, 0.001, 0.002, 0.004),
    "interconnect": (0.2, 0.3, 0.5, 0.7),
}
"""Plausible ranges of each fitted efficiency; the fit picks from these values only."""

WITHIN = 0.30
"""The planner must predict at least 80% of the measurements within this relative error."""


def fit_efficiency(measurements: tuple[Measurement, ...], catalog: Catalog) -> Efficiency:
    """The grid point predicting most measurements within 30%; ties go to the smaller median, then
    mean, absolute log error, then to the first point in grid order."""
    best: tuple[tuple[int, float, float], Efficiency] | None = None
    names = list(FIT_GRID)
    for values in itertools.product(*FIT_GRID.values()):
        candidate = replace(CALIBRATED, **dict(zip(names, values, strict=False)))
        replays = [replay(m, catalog, candidate) for m in measurements]
        within = sum(abs(r.error) <= WITHIN for r in replays)
        errors = [abs(math.log1p(r.error)) for r in replays]
        score = (-within, round(statistics.median(errors), 6), round(statistics.mean(errors), 6))
        if best is None or score < best[0]:
            best = (score, candidate)
    assert best is not None
    return best[1]


def calibration_report(catalog: Catalog, measurements: tuple[Measurement, ...]) -> str:
    """A Markdown table of every measurement: measured, predicted, error and the roofline bound."""
    lines = [
        "| measurement | engine | model | GPU x TP | in/out | concurrency | measured tok/s | predicted | error | roofline bound |",
        "| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    replays = [replay(m, catalog) for m in measurements]
    for r in replays:
        m = r.measurement
        lines.append(
            f"| {m.id} | {m.engine} | {m.model} {m.dtype} | {m.gpu} x {m.tensor_parallel_size} | "
            f"{m.input_tokens}/{m.output_tokens} | {m.concurrency or 'offline'} | {m.output_tokens_per_second:,.0f} | "
            f"{r.predicted:,.0f} | {r.error:+.0%} | {r.upper_bound:,.0f} |"
        )
    within = sum(abs(r.error) <= WITHIN for r in replays)
    lines.append("")
    lines.append(f"{within} of {len(replays)} within +-{WITHIN:.0%}; the bound is above every measurement: "
                 f"{all(r.upper_bound >= r.measurement.output_tokens_per_second for r in replays)}.")
    return "\n".join(lines)


def calibration_page(catalog: Catalog, measurements: tuple[Measurement, ...]) -> str:
    """docs/calibration.md: the fitted efficiencies and the table, regenerated by `make docs`."""
    fitted = ", ".join(
        f"`{name}` = {getattr(CALIBRATED, name)}" for name in FIT_GRID
    )
    return "\n".join(
        [
            "# Planner calibration",
            "",
            "Generated by `python -m components.planner.calibration` (`make docs`); do not edit.",
            "Measurements: `components/catalog/data/throughput_measurements.yaml`, each with its source.",
            "Predicted: the planner's saturated output throughput at the measurement's model, GPU, parallelism,",
            "lengths and concurrency (offline runs: as many sequences as vLLM's offline defaults and the KV cache allow).",
            "Roofline bound: datasheet bandwidth and FLOP/s, all GPU memory but the weights as KV cache,",
            "communication hidden, no overheads.",
            "",
            f"Fitted efficiencies ({fitted}) are the grid point of `FIT_GRID` that predicts the most rows within",
            f"+-{WITHIN:.0%}; `tests/planner/test_calibration.py` re-runs the fit and fails if the constants differ.",
            "",
            calibration_report(catalog, measurements),
            "",
        ]
    )


if __name__ == "__main__":
    from components.catalog import load_catalog
    from components.catalog.measurements import load_measurements

    print(calibration_page(load_catalog(), load_measurements()), end="")

"""How one replica of a service performs on one pool, and the concurrency that keeps it inside its SLO."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from components.planner import constants as c
from components.planner.constants import Efficiency
from components.planner.memory import Replica, kv_cache_tokens
from components.planner.performance import (
    Workload,
    encoder_step_seconds,
    inter_token_seconds,
    max_batch,
    output_tokens_per_second,
    time_to_first_token_seconds,
)
from components.spec.models import ServiceSpec


@dataclass
class ReplicaSizing:
    """One replica's figures at the concurrency the planner runs it at."""

    kv_cache_tokens: int
    max_concurrent_sequences: int
    planned_concurrency: int
    max_output_tokens_per_second: float
    requests_per_second: float
    ttft_s: float
    itl_s: float | None
    slo_met: bool
    reasons: list[str] = field(default_factory=list)


def size_replica(service: ServiceSpec, replica: Replica, efficiency: Efficiency = c.CALIBRATED) -> ReplicaSizing:
    workload = Workload(service.workload.input_tokens, service.workload.output_tokens)
    if replica.architecture.kind == "encoder" or workload.output_tokens == 0:
        return _size_prefill_only(service, replica, workload, efficiency)
    kv_tokens = kv_cache_tokens(replica)
    ceiling = max_batch(replica, workload, kv_tokens)
    if ceiling < 1:
        return ReplicaSizing(
            kv_tokens, 0, 0, 0.0, 0.0, math.inf, math.inf, False,
            [f"the KV cache ({kv_tokens} tokens) holds no {workload.input_tokens + workload.output_tokens}-token sequence"],
        )
    saturated = output_tokens_per_second(replica, workload, ceiling, efficiency)
    batch, reasons = _slo_concurrency(service, replica, workload, ceiling, efficiency)
    if batch == 0:
        batch_for_figures, met = 1, False
    else:
        batch_for_figures, met = batch, True
    throughput = output_tokens_per_second(replica, workload, batch_for_figures, efficiency)
    return ReplicaSizing(
        kv_cache_tokens=kv_tokens,
        max_concurrent_sequences=ceiling,
        planned_concurrency=batch,
        max_output_tokens_per_second=saturated,
        requests_per_second=throughput / workload.output_tokens if met else 0.0,
        ttft_s=time_to_first_token_seconds(replica, workload, batch_for_figures, efficiency),
        itl_s=inter_token_seconds(replica, workload, batch_for_figures, efficiency),
        slo_met=met,
        reasons=reasons,
    )


def serves_slo_alone(service: ServiceSpec, replica: Replica, efficiency: Efficiency = c.CALIBRATED) -> bool:
    """Whether a lone request meets the SLO on this replica: the least any batch size needs."""
    workload = Workload(service.workload.input_tokens, service.workload.output_tokens)
    if replica.architecture.kind == "encoder" or workload.output_tokens == 0:
        return _meets(service, encoder_step_seconds(replica, workload, efficiency) + efficiency.api_overhead_s, None)[0]
    return all(
        _meets(
            service,
            time_to_first_token_seconds(replica, workload, 1, efficiency),
            inter_token_seconds(replica, workload, 1, efficiency),
        )
    )


def _meets(service: ServiceSpec, ttft_s: float, itl_s: float | None) -> tuple[bool, bool]:
    slo = service.slo
    if slo is None:
        return True, True
    ttft_ok = ttft_s * c.TTFT_P99_OVER_MEAN * 1000 <= slo.ttft_p99_ms
    itl_ok = slo.itl_p99_ms is None or itl_s is None or itl_s * c.ITL_P99_OVER_MEAN * 1000 <= slo.itl_p99_ms
    return ttft_ok, itl_ok


def _slo_concurrency(
    service: ServiceSpec, replica: Replica, workload: Workload, ceiling: int, efficiency: Efficiency
) -> tuple[int, list[str]]:
    """Largest batch (TTFT and ITL grow with it) whose estimated p99s meet the SLO; 0 when even 1 fails."""

    def ok(batch: int) -> tuple[bool, bool]:
        return _meets(
            service,
            time_to_first_token_seconds(replica, workload, batch, efficiency),
            inter_token_seconds(replica, workload, batch, efficiency),
        )

    ttft_ok, itl_ok = ok(1)
    if not (ttft_ok and itl_ok):
        return 0, _slo_reasons(service, replica, workload, efficiency, ttft_ok, itl_ok)
    low, high = 1, ceiling
    while low < high:
        middle = (low + high + 1) // 2
        if all(ok(middle)):
            low = middle
        else:
            high = middle - 1
    return low, []


def _slo_reasons(
    service: ServiceSpec, replica: Replica, workload: Workload, efficiency: Efficiency, ttft_ok: bool, itl_ok: bool
) -> list[str]:
    assert service.slo is not None
    shape = f"{replica.gpu.name} TP={replica.tensor_parallel} PP={replica.pipeline_parallel}"
    reasons = []
    if not ttft_ok:
        ttft = time_to_first_token_seconds(replica, workload, 1, efficiency) * c.TTFT_P99_OVER_MEAN * 1000
        reasons.append(
            f"TTFT p99 is about {ttft:.0f} ms even for a lone request on {shape} "
            f"(target {service.slo.ttft_p99_ms:.0f} ms): shorter prompts, more TP or faster GPUs"
        )
    if not itl_ok:
        itl = inter_token_seconds(replica, workload, 1, efficiency) * c.ITL_P99_OVER_MEAN * 1000
        reasons.append(
            f"ITL p99 is about {itl:.1f} ms even for a lone request on {shape} "
            f"(target {service.slo.itl_p99_ms:.0f} ms): more TP, a smaller dtype or more memory bandwidth"
        )
    return reasons


def _size_prefill_only(service: ServiceSpec, replica: Replica, workload: Workload, efficiency: Efficiency) -> ReplicaSizing:
    """Embedding and reranking: each request is one prompt; a step processes a full token budget."""
    step = encoder_step_seconds(replica, workload, efficiency)
    per_step = max(1, replica.engine.max_num_batched_tokens // workload.input_tokens)
    latency = step + efficiency.api_overhead_s
    ttft_ok, _ = _meets(service, latency, None)
    reasons = [] if ttft_ok else [
        f"latency p99 is about {latency * c.TTFT_P99_OVER_MEAN * 1000:.0f} ms per batch on {replica.gpu.name} "
        f"(target {service.slo.ttft_p99_ms:.0f} ms)"  # type: ignore[union-attr]
    ]
    return ReplicaSizing(
        kv_cache_tokens=0,
        max_concurrent_sequences=per_step,
        planned_concurrency=per_step if ttft_ok else 0,
        max_output_tokens_per_second=0.0,
        requests_per_second=per_step / step if ttft_ok else 0.0,
        ttft_s=latency,
        itl_s=None,
        slo_met=ttft_ok,
        reasons=reasons,
    )

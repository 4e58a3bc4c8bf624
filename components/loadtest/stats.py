"""Benchmark figures from request results: pure arithmetic, the same definitions as vLLM's
`vllm bench serve` (vllm/benchmarks/serve.py, calculate_metrics), so the two can be compared.

- TTFT, end-to-end latency: one value per successful request;
- ITL: every gap between successive chunks of every successful request, pooled;
- output tokens/s and requests/s: over the wall-clock duration of the whole run;
- percentiles: linear interpolation between closest ranks (numpy's default method).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol


class Timed(Protocol):
    """What the statistics read from a request result (openai_stream.RequestResult has it)."""

    @property
    def ok(self) -> bool: ...

    ttft: float
    itl: list[float]
    latency: float
    output_tokens: int
    prompt_tokens: int | None
    error: str | None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; the values need not be sorted."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Distribution:
    """Summary of one latency, in milliseconds; all zero when nothing was measured."""

    count: int
    mean: float
    p50: float
    p90: float
    p99: float

    @classmethod
    def of_seconds(cls, values: Sequence[float]) -> Distribution:
        """Summarise values given in seconds, reported in ms (the unit SLOs are written in)."""
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ms = [v * 1000 for v in values]
        return cls(len(ms), sum(ms) / len(ms), percentile(ms, 50), percentile(ms, 90), percentile(ms, 99))


@dataclass(frozen=True)
class Figures:
    """Everything `inferfleet bench` reports for one load level."""

    requests: int
    completed: int
    failed: int
    duration_s: float
    requests_per_s: float
    output_tokens_per_s: float
    total_output_tokens: int
    mean_prompt_tokens: float | None
    ttft_ms: Distribution
    itl_ms: Distribution
    e2e_ms: Distribution
    errors: dict[str, int]

    @property
    def error_ratio(self) -> float:
        """Failed requests over all requests sent: what an availability SLO bounds."""
        return self.failed / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data for `--json`, with the derived error ratio included."""
        return asdict(self) | {"error_ratio": self.error_ratio}


def figures(results: Sequence[Timed], duration_s: float) -> Figures:
    """Aggregate a run's results; `duration_s` is the wall clock from first send to last answer."""
    if duration_s <= 0:
        raise ValueError("duration must be positive")
    done = [r for r in results if r.ok]
    errors: dict[str, int] = {}
    for result in results:
        if not result.ok:
            errors[str(result.error)] = errors.get(str(result.error), 0) + 1
    prompt_tokens = [r.prompt_tokens for r in done if r.prompt_tokens is not None]
    output_tokens = sum(r.output_tokens for r in done)
    return Figures(
        requests=len(results),
        completed=len(done),
        failed=len(results) - len(done),
        duration_s=duration_s,
        requests_per_s=len(done) / duration_s,
        output_tokens_per_s=output_tokens / duration_s,
        total_output_tokens=output_tokens,
        mean_prompt_tokens=sum(prompt_tokens) / len(prompt_tokens) if prompt_tokens else None,
        ttft_ms=Distribution.of_seconds([r.ttft for r in done]),
        itl_ms=Distribution.of_seconds([gap for r in done for gap in r.itl]),
        e2e_ms=Distribution.of_seconds([r.latency for r in done]),
        errors=errors,
    )

"""How long a replica may take to start: weights from the node cache (or S3) into GPU memory, engine
warm-up (CUDA graphs, KV cache profiling) and a margin. Probes derive their budgets from it so a big
model is not killed while loading and a small one is not waited on for nothing."""

from __future__ import annotations

import math

from components.planner.plan import ServicePoolPlan

LOAD_GIB_PER_SECOND = 0.5
"""Conservative weight load rate per replica: S3 at a few Gbit/s on the first replica of a node,
NVMe after; both are faster, the margin covers a cold node."""
ENGINE_WARMUP_SECONDS = 120
"""Compilation, CUDA graph capture and memory profiling after the weights are in."""
MIN_LOAD_SECONDS = 180
PROBE_PERIOD_SECONDS = 10


def load_seconds(entry: ServicePoolPlan) -> int:
    """Seconds from container start to ready that a replica of this shape may take."""
    weights_seconds = entry.weights_gib / LOAD_GIB_PER_SECOND
    return max(MIN_LOAD_SECONDS, math.ceil(weights_seconds + ENGINE_WARMUP_SECONDS))


def startup_failure_threshold(entry: ServicePoolPlan) -> int:
    """failureThreshold of a startup probe every PROBE_PERIOD_SECONDS that allows load_seconds."""
    return math.ceil(load_seconds(entry) / PROBE_PERIOD_SECONDS)

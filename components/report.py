"""The plan as a person reads it: aligned tables per service, per pool and for the fleet."""

from __future__ import annotations

from collections.abc import Sequence

from components.planner import StackPlan


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").isdigit()


def render_plan(plan: StackPlan) -> str:
    services = table(
        ["service", "pool", "role", "instance", "TP", "PP", "weights GiB", "KV tokens", "max seqs",
         "planned seqs", "max out tok/s", "TTFT ms", "ITL ms", "min replicas", "peak replicas", "SLO ok"],
        [
            [s.name, s.pool, s.role, s.instance_type, s.tensor_parallel_size, s.pipeline_parallel_size,
             s.weights_gib, s.kv_cache_tokens_per_replica, s.max_concurrent_sequences, s.planned_concurrency,
             s.max_output_tokens_per_second_per_replica, s.ttft_ms, s.itl_ms,
             s.replicas_min, s.replicas_needed, s.slo_feasible]
            for s in plan.services
        ],
    )
    reasons = [f"  {s.name} on {s.pool}: {reason}" for s in plan.services for reason in s.reasons]
    pools = table(
        ["pool", "instance", "capacity", "GPUs/node", "min", "max", "nodes idle", "nodes at peak", "$/h min",
         "$/h idle", "$/h at peak", "$/h max"],
        [
            [p.name, p.instance_type, p.capacity_type, p.gpus_per_node, p.min_size, p.max_size,
             p.nodes_at_min_replicas, p.nodes_at_peak, p.hourly_usd_min, p.hourly_usd_at_min_replicas,
             p.hourly_usd_at_peak, p.hourly_usd_max]
            for p in plan.pools
        ],
    )
    cost = plan.cost
    per_million = "-" if cost.usd_per_million_output_tokens is None else f"${cost.usd_per_million_output_tokens:,.3f}"
    summary = "\n".join(
        [
            f"fixed (EKS control plane, NAT): ${cost.fixed_hourly_usd:,.3f}/h",
            f"fleet: ${cost.hourly_usd_min:,.2f}/h at pool minimums, ${cost.hourly_usd_at_min_replicas:,.2f}/h idle "
            f"(services at min replicas), ${cost.hourly_usd_at_peak:,.2f}/h at peak, ${cost.hourly_usd_max:,.2f}/h at max",
            f"month: ${cost.monthly_usd_min:,.0f} at min to ${cost.monthly_usd_max:,.0f} at max",
            f"peak output: {cost.peak_output_tokens_per_second:,.0f} tokens/s; {per_million} per million output tokens",
        ]
    )
    parts = [f"plan for {plan.environment}", "", "services", services]
    if reasons:
        parts += ["", "why not feasible", *reasons]
    parts += ["", "pools (idle: every service at its min replicas)", pools, "", "cost", summary]
    return "\n".join(parts) + "\n"

"""`inferfleet bench` output: a table per run for people, or one JSON document for programs."""

from __future__ import annotations

import math
from typing import Any

from components.loadtest.bench import BenchRun
from components.loadtest.slo import SloCheck

COLUMNS = (
    "load", "ok", "failed", "req/s", "out tok/s",
    "TTFT p50", "TTFT p90", "TTFT p99", "ITL p50", "ITL p90", "ITL p99", "E2E p50", "E2E p90", "E2E p99",
)


def render_text(run: BenchRun, slo: dict[str, list[SloCheck]] | None = None) -> str:
    """Aligned table (latencies in ms), the errors seen, then the SLO verdict per level."""
    rows = [list(COLUMNS)]
    for result in run.levels:
        f = result.figures
        rows.append([
            result.level.label(), str(f.completed), str(f.failed), f"{f.requests_per_s:.2f}", f"{f.output_tokens_per_s:.1f}",
            *(f"{value:.1f}" for d in (f.ttft_ms, f.itl_ms, f.e2e_ms) for value in (d.p50, d.p90, d.p99)),
        ])
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [f"model {run.model}; prompts {run.prompt_source}; latencies in ms"]
    lines += ["  ".join(cell.rjust(width) if i else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths, strict=True))) for row in rows]
    for result in run.levels:
        for error, count in sorted(result.figures.errors.items(), key=lambda item: -item[1]):
            lines.append(f"{result.level.label()}: {count} x {error}")
    for label, checks in (slo or {}).items():
        for check in checks:
            lines.append(f"{label}: {check}")
    return "\n".join(lines) + "\n"


def render_json(run: BenchRun, slo: dict[str, list[SloCheck]] | None = None) -> dict[str, Any]:
    """Every figure of every level, and each SLO term with its verdict."""
    levels = []
    for result in run.levels:
        entry: dict[str, Any] = {
            "concurrency": result.level.concurrency,
            "request_rate": result.level.request_rate,
            **result.figures.to_json(),
        }
        checks = (slo or {}).get(result.level.label())
        if checks is not None:
            entry["slo"] = [
                {"name": c.name, "measured": None if math.isinf(c.measured) else c.measured, "limit": c.limit, "unit": c.unit, "ok": c.ok} for c in checks
            ]
        levels.append(entry)
    return {"model": run.model, "prompts": run.prompt_source, "levels": levels}

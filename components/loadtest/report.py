"""`inferfleet bench` output: a table per run for people, or one JSON document for programs."""

from __future__ import annotations

import json
import math
from typing import Any

from components.loadtest.bench import BenchRun
from components.loadtest.slo import SloCheck

STALL_WARN_MS = 10.0
"""A level whose client stalled longer than this gets a line saying so (stalls.py): the load it offered was off."""
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
    for result in run.levels:
        if result.client_stall_ms > STALL_WARN_MS:
            lines.append(f"{result.level.label()}: the client's event loop ran up to {result.client_stall_ms:.0f} ms late "
                         "(a busy machine): arrivals keep the kernel's stamps, but requests due meanwhile left late")
    for label, checks in (slo or {}).items():
        for check in checks:
            lines.append(f"{label}: {check}")
    return "\n".join(lines) + "\n"


def request_lines(run: BenchRun) -> list[str]:
    """One JSON line per request of every level, in send order (`--save-requests`): when it was sent (ms after
    its level's clock started), its TTFT, every ITL gap and its end-to-end time (ms), its token counts, its
    error, and the longest its bytes waited before the client read them (what a user-space stamp would have
    added), so that a slow level can be read request by request."""
    lines = []
    for result in run.levels:
        for index, r in enumerate(sorted(result.requests, key=lambda r: r.start)):
            lines.append(json.dumps({
                "level": result.level.label(), "index": index, "sent_ms": round((r.start - result.started) * 1000, 3),
                "ttft_ms": round(r.ttft * 1000, 3) if r.ok else None, "itl_ms": [round(g * 1000, 3) for g in r.itl],
                "e2e_ms": round(r.latency * 1000, 3) if r.ok else None, "prompt_tokens": r.prompt_tokens,
                "output_tokens": r.output_tokens, "error": r.error, "read_delay_ms": round(r.read_delay * 1000, 3),
            }))
    return lines


def render_json(run: BenchRun, slo: dict[str, list[SloCheck]] | None = None) -> dict[str, Any]:
    """Every figure of every level, and each SLO term with its verdict."""
    levels = []
    for result in run.levels:
        entry: dict[str, Any] = {
            "concurrency": result.level.concurrency,
            "request_rate": result.level.request_rate,
            **result.figures.to_json(),
            "client_stall_ms": round(result.client_stall_ms, 3),
            "client_read_delay_ms": round(max((r.read_delay for r in result.requests), default=0.0) * 1000, 3),
        }
        checks = (slo or {}).get(result.level.label())
        if checks is not None:
            entry["slo"] = [
                {"name": c.name, "measured": None if math.isinf(c.measured) else c.measured, "limit": c.limit, "unit": c.unit, "ok": c.ok} for c in checks
            ]
        levels.append(entry)
    return {"model": run.model, "prompts": run.prompt_source, "levels": levels}

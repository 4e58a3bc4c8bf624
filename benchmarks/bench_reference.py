"""How far `inferfleet bench` (and vLLM's own client, where .venv-vllm exists) is from the truth, measured
against the reference server (components/loadtest/reference_server.py), and where the error comes from.

For each case (streams, API, framing) each client runs one closed-loop level against a fresh reference
server; the error of every reported latency statistic (TTFT, ITL and E2E mean, p50, p90, p99) against
the server's own record is taken, and the worst is printed with the statistic it was. For ours at the
largest stream count, the TTFT error is also split per request (the first token names its record):
request path (client stamp to the kernel's receive stamp at the server) and response path (server write
to the client's stamp). `--busy N` runs N CPU-bound processes beside, as other jobs on a CI machine would;
`--repeat K` runs every case K times and reports the worst.

    .venv/bin/python -m benchmarks.bench_reference [--busy 0] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.bench_clients import Load, OurClient, Report, VllmClient, start_busy
from components.loadtest import runtime
from components.loadtest.bench import BenchConfig, Level, run_level
from components.loadtest.prompts import Prompt, synthetic_prompts
from components.loadtest.reference_server import (
    STATED_TOLERANCE,
    ReferenceServer,
    Schedule,
    errors,
    record_index,
    true_figures,
)
from components.loadtest.stats import percentile
from components.loadtest.stream_client import StreamClient
from components.local.processes import stop
from components.local.vllm_cpu import installed_vllm_python
from components.local.vllm_server import write_tiny_model


@dataclass(frozen=True)
class Case:
    streams: int
    requests: int
    output_tokens: int
    api: str
    framing: str
    ttft_ms: float
    itl_ms: float

    def load(self) -> Load:
        return Load(self.streams, self.requests, 32, self.output_tokens, 0.5, self.api)

    def schedule(self) -> Schedule:
        return Schedule(self.ttft_ms, self.itl_ms, 0.5, self.framing, seed=self.streams)  # type: ignore[arg-type]


CASES = [
    Case(1, 12, 8, "chat", "chunked", 100, 20),
    Case(1, 12, 8, "completions", "length", 100, 20),
    Case(16, 64, 16, "chat", "length", 150, 30),
    Case(16, 64, 16, "completions", "chunked", 150, 30),
    Case(256, 512, 32, "chat", "chunked", 200, 40),
    Case(256, 512, 32, "completions", "length", 200, 40),
]
PROBES = 2


def worst(report: Report, truth: Any) -> tuple[str, float, float]:
    """(statistic, error ms, error as a share of the truth) of the statistic farthest from the truth."""
    latency_errors = {k: v for k, v in errors(report.as_level(), truth).items() if "." in k}
    name = max(latency_errors, key=lambda k: abs(latency_errors[k]))
    latency, statistic = name.split(".")
    true = getattr(getattr(truth, latency), statistic)
    return name, latency_errors[name], latency_errors[name] / true


def measure(case: Case, ours: OurClient, theirs: VllmClient | None, tokenizer: Path | None) -> dict[str, Any]:
    row: dict[str, Any] = {"case": vars(case)}
    with ReferenceServer(case.schedule()) as server:
        report = ours.bench(server.url, "reference", case.load(), seed=1)
        truth = true_figures(server.records()["records"][PROBES:])
    row["inferfleet"] = worst(report, truth) + (report.output_tokens == truth.total_output_tokens,)
    if theirs is not None and tokenizer is not None:
        with ReferenceServer(case.schedule()) as server:
            report = theirs.bench(server.url, "reference", str(tokenizer), case.load(), seed=1)
            truth = true_figures(server.records()["records"][VllmClient.warmups(case.load()):])
        row["vllm"] = worst(report, truth) + (report.output_tokens == truth.total_output_tokens,)
    return row


def split(case: Case) -> dict[str, dict[str, float]]:
    """Ours at `case`, per request: TTFT error split into the request and the response path (ms)."""
    with ReferenceServer(case.schedule()) as server:
        async def level() -> list:
            config = BenchConfig(url=server.url, levels=[Level(case.streams, None)], num_prompts=case.requests,
                                 output_tokens=case.output_tokens, model="reference", api=case.api)  # type: ignore[arg-type]
            rng = random.Random(0)
            prompts = [Prompt(p.text, rng.randint(case.output_tokens // 2, case.output_tokens * 3 // 2))
                       for p in synthetic_prompts(case.requests, words=32)]
            async with StreamClient(server.url) as client:
                await client.open(case.streams)
                return await run_level(client, config, "reference", config.levels[0], prompts, None)
        results = runtime.run(level())
        records = {r["index"]: r for r in server.records()["records"]}
    request, response = [], []
    for result in results:
        record = records[record_index(result.text)]
        request.append((record["received"] - result.start) * 1000)
        response.append((result.start + result.ttft - record["writes"][0]) * 1000)
    return {name: {"p50": percentile(v, 50), "p99": percentile(v, 99), "max": max(v)}
            for name, v in (("request path", request), ("response path", response))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside, as other jobs would")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-reference-"))
    python = installed_vllm_python()
    rows = []
    with ExitStack() as running:
        for _ in range(args.busy):
            running.callback(stop, start_busy())
        ours = OurClient(work)
        running.callback(ours.close)
        theirs, tokenizer = None, None
        if python is not None:
            tokenizer = work / "tiny-llama"
            write_tiny_model(python, tokenizer)
            theirs = VllmClient(work, python)
            running.callback(theirs.close)
        for case in CASES:
            for _ in range(args.repeat):
                rows.append(measure(case, ours, theirs, tokenizer))
        paths = split(CASES[-2])
    result = {"setting": {"busy": args.busy, "repeat": args.repeat, "cpus": os.cpu_count(),
                          "tolerance": vars(STATED_TOLERANCE)}, "cases": rows, "split_at_256": paths}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"worst error of any latency statistic (mean, p50, p90, p99 of TTFT, ITL, E2E) against the reference; "
          f"{args.busy} CPU-bound processes beside, {args.repeat} run(s) per case")
    print(f"{'streams':>7}  {'api':<11}  {'framing':<7}  {'inferfleet bench':<30}  vllm bench serve")
    for row in rows:
        c = row["case"]
        cells = [f"{row[k][0]} {row[k][1]:+.2f} ms ({row[k][2]:+.1%}){'' if row[k][3] else ' TOKENS'}" if k in row else "-"
                 for k in ("inferfleet", "vllm")]
        print(f"{c['streams']:>7}  {c['api']:<11}  {c['framing']:<7}  {cells[0]:<30}  {cells[1]}")
    print("ours at 256 streams, TTFT error per request (ms): " + "; ".join(
        f"{name} p50 {v['p50']:.2f}, p99 {v['p99']:.2f}, max {v['max']:.2f}" for name, v in paths.items()))


if __name__ == "__main__":
    sys.exit(main())

"""`inferfleet bench` beside vLLM's own `vllm bench serve`, on the real vLLM (CPU build) serving the tiny model.

A benchmark, not a test: on a shared 2-core machine, two clients taking turns at one engine see the
machine change under them, so their agreement is a figure with a spread, reported in the README, not a
pass or fail. What `inferfleet bench` measures is proven against a server with a known schedule instead
(tests/loadtest/test_bench_reference.py).

The vLLM server runs prod's chat arguments (components/local, as `make local` does). Both clients drive
it with the same load: chat completions, `--concurrency` requests in flight, random prompts of about
`--input-tokens` tokens (vLLM's random dataset; our synthetic prompts sized from the server's token
counts) and `--output-tokens` output tokens (`ignore_eos`), both lengths drawn per request within
±`--range-ratio`. After one uncounted warm-up run each, they take turns for `--rounds` rounds in ABBA order,
each round a fresh seed; the agreement is the median over rounds of the paired relative difference, and
its spread (the rounds' minimum and maximum) is printed beside it. `--busy N` runs N CPU-bound processes
for the whole run, as other jobs on a CI machine would. Every round of ours is also written request by
request (`--save-requests`) into `--work`, to read a slow round.

    .venv/bin/python -m benchmarks.bench_vllm_agreement [--rounds 12] [--busy 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from statistics import median

from benchmarks.bench_clients import Load, OurClient, Report, VllmClient, start_busy
from components.local.processes import LOOPBACK, free_port, stop, wait_ready
from components.local.service import local_service
from components.local.vllm_cpu import REPO_ROOT, installed_vllm_python
from components.local.vllm_server import STARTUP_TIMEOUT_S, start_vllm, write_tiny_model

KEYS = {"mean TTFT": ("ttft_ms", "mean"), "median TTFT": ("ttft_ms", "p50"), "median ITL": ("itl_ms", "p50")}
CLIENT_CPU = max(os.sched_getaffinity(0))
"""Both clients run on this one CPU, which vLLM's CPU backend leaves to its API server (it binds its engine's
threads to the others): a client beside the engine's thread slows every step it takes."""


def figure(report: Report, name: str) -> float:
    if name == "output tokens/s":
        return report.output_tokens_per_s
    latency, statistic = KEYS[name]
    return report.latencies[latency][statistic]


def rounds(args: argparse.Namespace, work: Path, url: str, model: str, tokenizer: str) -> list[tuple[Report, Report]]:
    """(ours, vLLM's) per round, after one uncounted warm-up each."""
    load = Load(args.concurrency, args.num_prompts, args.input_tokens, args.output_tokens, args.range_ratio)
    python = installed_vllm_python()
    assert python is not None
    ours, theirs = OurClient(work, CLIENT_CPU), VllmClient(work, python, CLIENT_CPU)
    try:
        ours.bench(url, model, load, 999)
        theirs.bench(url, model, tokenizer, load, 999)
        pairs = []
        for seed in range(1, args.rounds + 1):
            if seed % 2:  # ABBA: a load on the machine that grows or fades weighs on both alike
                mine = ours.bench(url, model, load, seed, work / f"ours-{seed}.jsonl")
                pairs.append((mine, theirs.bench(url, model, tokenizer, load, 1000 + seed)))
            else:
                other = theirs.bench(url, model, tokenizer, load, 1000 + seed)
                pairs.append((ours.bench(url, model, load, seed, work / f"ours-{seed}.jsonl"), other))
            print(f"round {seed}: " + "; ".join(
                f"{name} {figure(pairs[-1][0], name):.1f} / {figure(pairs[-1][1], name):.1f}"
                for name in (*KEYS, "output tokens/s")) + f"; our loop's worst stall {pairs[-1][0].client_stall_ms:.1f} ms, "
                f"worst read delay {pairs[-1][0].client_read_delay_ms:.1f} ms",
                file=sys.stderr, flush=True)
        return pairs
    finally:
        ours.close()
        theirs.close()


def summary(pairs: list[tuple[Report, Report]]) -> dict[str, dict[str, float]]:
    """Per figure: the median, minimum and maximum over rounds of ours / vLLM's - 1."""
    out = {}
    for name in (*KEYS, "output tokens/s"):
        differences = [figure(o, name) / figure(t, name) - 1 for o, t in pairs]
        out[name] = {"median": median(differences), "min": min(differences), "max": max(differences)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--num-prompts", type=int, default=48)
    parser.add_argument("--input-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--range-ratio", type=float, default=0.5)
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes to run beside, as other jobs would")
    parser.add_argument("--work", type=Path, help="where logs and per-request files go (default: a temporary directory)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    python = installed_vllm_python()
    if python is None:
        raise SystemExit("no .venv-vllm: build it with scripts/vllm_cpu_venv.sh")
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-agreement-"))
    work.mkdir(parents=True, exist_ok=True)
    chat = local_service(REPO_ROOT / "stacks" / "prod.yaml", "chat")
    served = chat.container_args[chat.container_args.index("--served-model-name") + 1]
    model_dir = work / "tiny-llama"
    write_tiny_model(python, model_dir)
    port = free_port()
    with ExitStack() as running:
        for _ in range(args.busy):
            running.callback(stop, start_busy())
        process = start_vllm(python, chat.container_args, model_dir=model_dir, port=port, log=work / "vllm.log")
        running.callback(stop, process)
        url = f"http://{LOOPBACK}:{port}"
        wait_ready(f"{url}/health", process, work / "vllm.log", "vLLM", STARTUP_TIMEOUT_S)
        pairs = rounds(args, work, url, served, str(model_dir))
    result = {"setting": vars(args) | {"work": str(work), "cpus": os.cpu_count()}, "agreement": summary(pairs),
              "rounds": [{"inferfleet": asdict(o), "vllm": asdict(t)} for o, t in pairs]}
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(f"{args.rounds} rounds of {args.num_prompts} requests at concurrency {args.concurrency}, "
          f"{args.busy} CPU-bound processes beside; per-round files in {work}")
    print(f"{'ours / vLLM - 1':<16} {'median':>8} {'min':>8} {'max':>8}")
    for name, spread in result["agreement"].items():
        print(f"{name:<16} {spread['median']:+8.1%} {spread['min']:+8.1%} {spread['max']:+8.1%}")
    cpu = [o.client_cpu_s / t.client_cpu_s for o, t in pairs if t.client_cpu_s]
    if cpu:
        print(f"client CPU, ours / vLLM's: {median(cpu):.2f}")


if __name__ == "__main__":
    main()

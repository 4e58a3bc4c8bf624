"""`inferfleet bench` and vLLM's own `vllm bench serve`, each in a long-lived process that runs one load per call.

Shared by the e2e tests (both clients against the reference server, and ours against the real vLLM) and
by benchmarks/bench_vllm_agreement.py (both clients against the real vLLM, round after round):

- each client runs in one process driven over stdin: vLLM's `vllm bench serve` main in .venv-vllm
  (importing vLLM takes ~15 s), ours the `inferfleet bench` command's main in this venv;
- each freezes its heap out of the cyclic GC once its imports are done: with torch and vLLM imported,
  one full collection in vLLM's client takes 0.6 s and stalls every stream it has open, a pause that
  comes from keeping vLLM imported in a driver, not from what vLLM's client means by TTFT;
- a driver may be pinned to one CPU (`cpu`), so that it does not land on the engine's core.

A run that has not finished in `timeout_s` is killed; a failure raises DriverError with the driver's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from components.local.processes import log_tail
from components.local.vllm_cpu import REPO_ROOT, vllm_env

ROUND_TIMEOUT_S = 600

FROZEN = """
import contextlib, gc, io, json, sys
out = sys.stdout
def started():
    gc.collect()
    gc.freeze()
    print("started", file=out, flush=True)
"""

# Runs in .venv-vllm: vLLM's `vllm bench serve` (vllm/benchmarks/serve.py). The `vllm` console script
# cannot start in that venv (its distribution is named vllm-cpu), so the subcommand's own parser and
# main are called, as `vllm bench serve` does.
VLLM_BENCH_DRIVER = FROZEN + """
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
started()
for line in sys.stdin:
    with contextlib.redirect_stdout(sys.stderr):
        main(parser.parse_args(json.loads(line)))
    print("done", file=out, flush=True)
"""

# Runs in this venv: `inferfleet bench` (components.cli main).
OUR_BENCH_DRIVER = FROZEN + """
from components.cli import main
started()
for line in sys.stdin:
    figures = io.StringIO()
    with contextlib.redirect_stdout(figures):
        code = main(json.loads(line))
    print(json.dumps({"exit": code, "output": figures.getvalue()}), file=out, flush=True)
"""


def start_busy() -> subprocess.Popen[bytes]:
    """A CPU-bound process in its own session (stop it with components.local.processes.stop): other jobs on a
    shared machine, made reproducible."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)


class DriverError(RuntimeError):
    """A client failed, hung or said something unexpected; the message carries its log's tail."""


@dataclass(frozen=True)
class Load:
    """One run's load: closed loop at `concurrency`, synthetic prompts, `ignore_eos` output lengths."""

    concurrency: int
    num_prompts: int
    input_tokens: int
    output_tokens: int
    range_ratio: float = 0.0
    api: str = "chat"


@dataclass(frozen=True)
class Report:
    """What one run of a client reports, in one shape for both (latencies in ms).

    `latencies` holds {"ttft_ms" | "itl_ms" | "e2e_ms": {"mean", "p50", "p90", "p99"}}, the keys of
    `inferfleet bench --json` and of reference_server.errors.
    """

    completed: int
    output_tokens: int
    output_tokens_per_s: float
    mean_prompt_tokens: float
    latencies: dict[str, dict[str, float]]
    client_cpu_s: float = 0.0
    client_stall_ms: float | None = None
    """Ours only: the longest its event loop was late while timing (components/loadtest/stalls.py)."""
    client_read_delay_ms: float | None = None
    """Ours only: the longest a response's bytes waited in the socket before it read them (what stamping in user
    space, as vLLM's client does, would have added to a token's time)."""

    def as_level(self) -> dict[str, Any]:
        """In `inferfleet bench --json`'s level shape, for reference_server.errors."""
        return {**self.latencies, "output_tokens_per_s": self.output_tokens_per_s}


class Driver:
    """One client in a long-lived process, one run per `run`."""

    def __init__(self, name: str, argv: list[str], work: Path, cpu: int | None, **popen: Any) -> None:
        self.name = name
        self.log_path = work / f"{name}.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        text=True, **popen)
        if cpu is not None:
            os.sched_setaffinity(self.process.pid, {cpu})
        self.expect("started")

    def run(self, argv: list[str]) -> Report:
        cpu_before = self.cpu_s()
        self.send(json.dumps(argv))
        watchdog = threading.Timer(ROUND_TIMEOUT_S, self.process.kill)
        watchdog.start()
        try:
            report = self.finish()
        finally:
            watchdog.cancel()
        return replace(report, client_cpu_s=self.cpu_s() - cpu_before)

    def cpu_s(self) -> float:
        """CPU seconds the client's process has used: on two cores, a client's own work slows the server."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def finish(self) -> Report:
        raise NotImplementedError

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read(self) -> str:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        return stdout.readline().strip()

    def expect(self, word: str) -> None:
        line = self.read()
        if line != word:
            self.fail(f"said {line!r}, expected {word!r}")

    def fail(self, why: str) -> None:
        self.log.flush()
        raise DriverError(f"{self.name} {why}:\n{log_tail(self.log_path, 30)}")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()


class OurClient(Driver):
    """`inferfleet bench` (this venv)."""

    def __init__(self, work: Path, cpu: int | None = None) -> None:
        super().__init__("inferfleet-bench", [sys.executable, "-c", OUR_BENCH_DRIVER], work, cpu, cwd=REPO_ROOT)

    def bench(self, url: str, model: str, load: Load, seed: int, save_requests: Path | None = None) -> Report:
        argv = ["bench", url, "--model", model, "--api", load.api, "--concurrency", str(load.concurrency),
                "--num-prompts", str(load.num_prompts), "--input-tokens", str(load.input_tokens),
                "--output-tokens", str(load.output_tokens), "--ignore-eos", "--range-ratio", str(load.range_ratio),
                "--seed", str(seed), "--json"]
        if save_requests is not None:
            argv += ["--save-requests", str(save_requests)]
        return self.run(argv)

    def finish(self) -> Report:
        outcome = json.loads(self.read() or "null")
        if not outcome or outcome["exit"] != 0:
            self.fail(f"failed: {outcome}")
        (level,) = json.loads(outcome["output"])["levels"]
        latencies = {key: {s: level[key][s] for s in ("mean", "p50", "p90", "p99")} for key in ("ttft_ms", "itl_ms", "e2e_ms")}
        return Report(level["completed"], level["total_output_tokens"], level["output_tokens_per_s"],
                      level["mean_prompt_tokens"], latencies, client_stall_ms=level["client_stall_ms"],
                      client_read_delay_ms=level["client_read_delay_ms"])


class VllmClient(Driver):
    """vLLM's `vllm bench serve` (.venv-vllm), its random dataset tokenized with `tokenizer` (a model directory)."""

    def __init__(self, work: Path, python: Path, cpu: int | None = None) -> None:
        self.work = work
        super().__init__("vllm-bench", [str(python), "-c", VLLM_BENCH_DRIVER], work, cpu, env=vllm_env(), cwd=work)

    def bench(self, url: str, model: str, tokenizer: str, load: Load, seed: int) -> Report:
        self.result = self.work / f"vllm-{seed}.json"
        backend, endpoint = {"chat": ("openai-chat", "/v1/chat/completions"), "completions": ("openai", "/v1/completions")}[load.api]
        return self.run([
            "--backend", backend, "--endpoint", endpoint, "--base-url", url, "--model", model, "--tokenizer", tokenizer,
            "--dataset-name", "random", "--random-input-len", str(load.input_tokens),
            "--random-output-len", str(load.output_tokens), "--random-range-ratio", str(load.range_ratio),
            "--num-prompts", str(load.num_prompts), "--max-concurrency", str(load.concurrency), "--ignore-eos",
            "--seed", str(seed), "--disable-tqdm", "--ready-check-timeout-sec", "0", "--num-warmups", str(self.warmups(load)),
            "--percentile-metrics", "ttft,itl,e2el", "--metric-percentiles", "50,90,99",
            "--save-result", "--save-detailed", "--result-dir", str(self.work), "--result-filename", self.result.name,
        ])

    @staticmethod
    def warmups(load: Load) -> int:
        """Uncounted requests sent first, one per stream, as `inferfleet bench` opens its connections before its
        clock starts: without them the first wave of a run times TCP connects queued in aiohttp (at 256 streams
        against the reference server, +100 ms on mean TTFT)."""
        return load.concurrency

    def finish(self) -> Report:
        self.expect("done")
        r = json.loads(self.result.read_text())
        names = {"ttft_ms": "ttft", "itl_ms": "itl", "e2e_ms": "e2el"}
        latencies = {
            key: {"mean": r[f"mean_{name}_ms"], "p50": r[f"p50_{name}_ms"], "p90": r[f"p90_{name}_ms"], "p99": r[f"p99_{name}_ms"]}
            for key, name in names.items()
        }
        return Report(r["completed"], r["total_output_tokens"], r["output_throughput"],
                      r["total_input_tokens"] / r["completed"], latencies)

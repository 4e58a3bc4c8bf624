"""`inferfleet bench` against the real vLLM, and against vLLM's own benchmark client at the same load.

Both clients drive the session's vLLM server (conftest.py) with the same shape of load: chat
completions, `CONCURRENCY` requests in flight, random prompts of `INPUT_TOKENS` tokens (vLLM's random
dataset; our synthetic prompts sized by the server's token counts), exactly `OUTPUT_TOKENS` output
tokens (`ignore_eos`). They must agree within 10% on mean and median TTFT and on output tokens/s.

Two cores serve, and other work may share them, so one run of each client is at the mercy of
whatever else runs at that moment (measured here: single rounds of the same client vary by 7-25%
while other jobs run). So:

- one uncounted warm-up run first: the first load after the server starts is slower (CPU kernels
  see new batch shapes), and it must not count against whichever client happens to go first;
- the clients take turns for `ROUNDS` rounds in ABBA order, each round a fresh seed;
- each round pairs the two runs next to each other in time, and the agreement is the median over
  rounds of ours / vLLM's - 1: a burst of other work that lands on one run of one round moves the
  mean of the rounds, not the median of the pairs. The means over rounds are reported too. vLLM's client
runs in one long-lived .venv-vllm process (importing vLLM takes ~15 s), driven round by round over
stdin; ours is the `inferfleet bench` command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, median, pstdev
from typing import IO

import pytest

from e2e.local_servers import REQUEST_TIMEOUT_S, Server
from e2e.vllm_cpu import REPO_ROOT, vllm_env, vllm_python

CONCURRENCY = 4
PROMPTS_PER_ROUND = 16
ROUNDS = 6
INPUT_TOKENS = 128
OUTPUT_TOKENS = 32
TOLERANCE = 0.10

# Runs in .venv-vllm: vLLM's `vllm bench serve` (vllm/benchmarks/serve.py) once per stdin line of
# JSON arguments. The `vllm` console script cannot start in this venv (its distribution is named
# vllm-cpu), so the subcommand's own parser and main are called, as `vllm bench serve` does.
VLLM_BENCH_DRIVER = """
import contextlib, json, sys
from vllm.benchmarks.serve import add_cli_args, main
from vllm.utils.argparse_utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
print("ready", flush=True)
for line in sys.stdin:
    with contextlib.redirect_stdout(sys.stderr):
        main(parser.parse_args(json.loads(line)))
    print("done", flush=True)
"""


@dataclass(frozen=True)
class Round:
    mean_ttft_ms: float
    median_ttft_ms: float
    output_tokens_per_s: float
    completed: int
    output_tokens: int
    mean_prompt_tokens: float


def model_dir(server: Server) -> str:
    """The served model's directory (vLLM lists it as the model's `root`): vLLM's client needs its tokenizer."""
    with urllib.request.urlopen(f"{server.url}/v1/models", timeout=REQUEST_TIMEOUT_S) as response:
        (model,) = json.load(response)["data"]
    return str(model["root"])


def ours(server: Server, seed: int) -> Round:
    done = subprocess.run(
        [sys.executable, "-m", "components.cli", "bench", server.url, "--model", server.served_name,
         "--concurrency", str(CONCURRENCY), "--num-prompts", str(PROMPTS_PER_ROUND),
         "--input-tokens", str(INPUT_TOKENS), "--output-tokens", str(OUTPUT_TOKENS), "--ignore-eos",
         "--seed", str(seed), "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (level,) = json.loads(done.stdout)["levels"]
    return Round(level["ttft_ms"]["mean"], level["ttft_ms"]["p50"], level["output_tokens_per_s"],
                 level["completed"], level["total_output_tokens"], level["mean_prompt_tokens"])


class VllmBench:
    """vLLM's benchmark client in one .venv-vllm process, one `vllm bench serve` run per call."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.log = (work / "vllm-bench.log").open("w")
        self.process = subprocess.Popen(
            [str(vllm_python()), "-c", VLLM_BENCH_DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self.log, text=True, env=vllm_env(), cwd=work,
        )
        self._expect("ready")

    def run(self, server: Server, tokenizer: str, seed: int) -> Round:
        name = f"vllm-{seed}.json"
        argv = [
            "--backend", "openai-chat", "--endpoint", "/v1/chat/completions", "--base-url", server.url,
            "--model", server.served_name, "--tokenizer", tokenizer,
            "--dataset-name", "random", "--random-input-len", str(INPUT_TOKENS), "--random-output-len", str(OUTPUT_TOKENS),
            "--num-prompts", str(PROMPTS_PER_ROUND), "--max-concurrency", str(CONCURRENCY), "--ignore-eos",
            "--seed", str(seed), "--disable-tqdm", "--save-result", "--result-dir", str(self.work), "--result-filename", name,
        ]
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        self._expect("done")
        result = json.loads((self.work / name).read_text())
        return Round(result["mean_ttft_ms"], result["median_ttft_ms"], result["output_throughput"],
                     result["completed"], result["total_output_tokens"], result["total_input_tokens"] / result["completed"])

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()

    def _expect(self, word: str) -> None:
        stdout: IO[str] | None = self.process.stdout
        assert stdout is not None
        line = stdout.readline().strip()
        if line != word:
            self.log.flush()
            tail = "\n".join((self.work / "vllm-bench.log").read_text(errors="replace").splitlines()[-30:])
            pytest.fail(f"vLLM's benchmark client said {line!r}, expected {word!r}:\n{tail}", pytrace=False)


def spread(rounds: list[Round]) -> dict[str, float]:
    """Coefficient of variation over one client's rounds: how noisy the machine was (shown on failure)."""
    return {
        key: pstdev(values) / mean(values)
        for key in ("mean_ttft_ms", "median_ttft_ms", "output_tokens_per_s")
        if (values := [getattr(r, key) for r in rounds])
    }


def averaged(rounds: list[Round]) -> dict[str, float]:
    return {
        "mean_ttft_ms": mean(r.mean_ttft_ms for r in rounds),
        "median_ttft_ms": mean(r.median_ttft_ms for r in rounds),
        "output_tokens_per_s": mean(r.output_tokens_per_s for r in rounds),
        "mean_prompt_tokens": mean(r.mean_prompt_tokens for r in rounds),
    }


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_agrees_with_vllms_own_benchmark_client(server: Server, tmp_path: Path) -> None:
    tokenizer = model_dir(server)
    vllm = VllmBench(tmp_path)
    try:
        vllm.run(server, tokenizer, seed=999)  # warm-up, not counted
        theirs_rounds, ours_rounds = [], []
        for seed in range(1, ROUNDS + 1):  # a fresh seed per round: no prompt is ever served from the prefix cache
            # ABBA order: a load on the machine that grows or fades through the test weighs on both alike
            if seed % 2:
                ours_rounds.append(ours(server, seed))
                theirs_rounds.append(vllm.run(server, tokenizer, 1000 + seed))
            else:
                theirs_rounds.append(vllm.run(server, tokenizer, 1000 + seed))
                ours_rounds.append(ours(server, seed))
    finally:
        vllm.close()

    for r in ours_rounds + theirs_rounds:
        assert r.completed == PROMPTS_PER_ROUND and r.output_tokens == PROMPTS_PER_ROUND * OUTPUT_TOKENS, r
    a, b = averaged(ours_rounds), averaged(theirs_rounds)
    differences = {key: median(getattr(o, key) / getattr(t, key) - 1 for o, t in zip(ours_rounds, theirs_rounds, strict=True))
                   for key in a}
    report = {
        "difference": differences,  # median over rounds of the paired relative difference
        "inferfleet": a, "vllm": b, "difference_of_means": {key: (a[key] - b[key]) / b[key] for key in a},
        "round_to_round_variation": {"inferfleet": spread(ours_rounds), "vllm": spread(theirs_rounds)},
        "rounds": {"inferfleet": ours_rounds, "vllm": theirs_rounds},
    }
    (tmp_path / "agreement.json").write_text(json.dumps(report, indent=2, default=lambda o: o.__dict__))
    print(json.dumps(report, indent=2, default=lambda o: o.__dict__))
    # Prompts are sized from the server's token counts: within 10% of vLLM's exact random-token prompts.
    assert abs(differences["mean_prompt_tokens"]) <= TOLERANCE, report
    for key in ("mean_ttft_ms", "median_ttft_ms", "output_tokens_per_s"):
        assert abs(differences[key]) <= TOLERANCE, f"{key} differs by {differences[key]:+.1%}: {json.dumps(report, default=lambda o: o.__dict__)}"


@pytest.mark.e2e
def test_bench_reports_every_level_against_the_real_server(server: Server) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "components.cli", "bench", server.url, "--concurrency", "1,2",
         "--num-prompts", "4", "--input-tokens", "32", "--output-tokens", "8", "--ignore-eos"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"model {server.served_name}; prompts synthetic: ~32 input tokens")
    assert lines[1].split()[:5] == ["load", "ok", "failed", "req/s", "out"]
    assert [line.split()[:4] for line in lines[2:4]] == [["concurrency", "1", "4", "0"], ["concurrency", "2", "4", "0"]]
    assert len(lines) == 4, "no errors expected"

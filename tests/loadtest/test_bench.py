"""`inferfleet bench` end to end against the OpenAI-compatible peer: levels, figures, prompts,
the SLO verdict from a stack file, and every way the command refuses to run."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cli import main
from components.loadtest import bench as bench_module
from components.loadtest import stats
from components.loadtest.openai_stream import Received, RequestResult, timed
from components.loadtest.report import render_json, render_text
from loadtest.openai_peer import OpenAIPeer

ROOT = Path(__file__).resolve().parents[2]
DEV = (ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8")


@pytest.fixture
def peer() -> Iterator[OpenAIPeer]:
    running = OpenAIPeer()
    yield running
    running.stop()


def bench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["bench", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    return code, out, err


def bench_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = bench(capsys, *argv, "--json")
    return code, json.loads(out)


def test_each_concurrency_level_is_a_run_of_num_prompts(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = bench_json(capsys, peer.url, "--concurrency", "1,4", "--num-prompts", "8",
                              "--input-tokens", "32", "--output-tokens", "5")
    assert code == 0
    assert report["model"] == "tiny"
    assert [level["concurrency"] for level in report["levels"]] == [1, 4]
    for level in report["levels"]:
        assert (level["requests"], level["completed"], level["failed"], level["error_ratio"]) == (8, 8, 0, 0.0)
        assert level["total_output_tokens"] == 40
        assert level["ttft_ms"]["count"] == 8 and level["itl_ms"]["count"] == 8 * 4
        assert level["output_tokens_per_s"] > 0 and level["requests_per_s"] > 0
    # two probes (sizing, warm-up) and then 16 counted requests, every one streaming with usage
    assert len(peer.bodies) == 2 + 16
    counted = peer.bodies[2:]
    assert all(b["max_tokens"] == 5 and b["stream_options"] == {"include_usage": True} for b in counted)
    # the peer counts a word as a token (+3): 32 tokens -> 32 words per synthetic prompt
    assert {len(b["messages"][0]["content"].split()) for b in counted} == {32}
    assert len({b["messages"][0]["content"] for b in counted}) == 16, "prompts repeat: the prefix cache would flatter TTFT"


def test_a_closed_loop_sends_the_next_request_before_timing_the_last(
    peer: OpenAIPeer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The concurrency slot comes back when a stream ends, not once it is parsed: held through the parsing,
    the next request would leave late and miss the engine step it could have joined (vLLM's client parses as
    it reads, so its next request leaves at once)."""
    next_sent_first = []

    async def timed_once_the_next_is_sent(received: Received) -> RequestResult:
        sent = len(peer.bodies)
        for _ in range(100):
            if len(peer.bodies) > sent:
                break
            await asyncio.sleep(0.01)
        next_sent_first.append(len(peer.bodies) > sent)
        return await timed(received)

    monkeypatch.setattr(bench_module, "timed", timed_once_the_next_is_sent)
    code, report = bench_json(capsys, peer.url, "--concurrency", "1", "--num-prompts", "4",
                              "--input-tokens", "8", "--output-tokens", "2")
    assert code == 0 and report["levels"][0]["completed"] == 4
    assert next_sent_first == [True, True, True, False]


def test_a_range_ratio_varies_each_requests_lengths(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = bench_json(capsys, peer.url, "--concurrency", "4", "--num-prompts", "40", "--input-tokens", "40",
                              "--output-tokens", "10", "--range-ratio", "0.5", "--ignore-eos")
    (level,) = report["levels"]
    assert code == 0 and level["completed"] == 40
    assert "(lengths ±50%)" in report["prompts"]
    counted = peer.bodies[2:]
    outputs = [b["max_tokens"] for b in counted]
    assert min(outputs) >= 5 and max(outputs) <= 15 and len(set(outputs)) > 3
    assert level["total_output_tokens"] == sum(outputs)
    words = [len(b["messages"][0]["content"].split()) for b in counted]
    assert min(words) >= 20 and max(words) <= 60 and len(set(words)) > 3


def test_request_rate_runs_open_loop(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = bench_json(capsys, peer.url, "--request-rate", "200", "--num-prompts", "10",
                              "--input-tokens", "8", "--output-tokens", "2", "--api", "completions")
    (level,) = report["levels"]
    assert code == 0 and (level["request_rate"], level["concurrency"], level["completed"]) == (200, None, 10)
    assert all("prompt" in b for b in peer.bodies)


def test_poisson_arrivals_are_drawn_from_the_seed() -> None:
    rng = random.Random(7)  # exponential gaps at the rate, the first request at once
    expected = [0.0]
    for _ in range(9):
        expected.append(expected[-1] + rng.expovariate(20))
    assert bench_module.arrival_offsets(10, 20, seed=7) == expected
    assert bench_module.arrival_offsets(3, None, seed=7) == [0.0, 0.0, 0.0]


def test_no_request_is_sent_before_its_arrival(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    """Only the lower bound is asserted: a busy machine may send late, never early."""
    code, report = bench_json(capsys, peer.url, "--request-rate", "20", "--num-prompts", "10", "--seed", "7",
                              "--input-tokens", "4", "--output-tokens", "1")
    (level,) = report["levels"]
    assert code == 0 and level["completed"] == 10
    assert level["duration_s"] >= bench_module.arrival_offsets(10, 20, seed=7)[-1]


def test_prompt_file_lengths_are_used(peer: OpenAIPeer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "one two", "output_tokens": 2}\n{"prompt": "three"}\n')
    code, report = bench_json(capsys, peer.url, "--prompts", str(prompts), "--num-prompts", "4", "--output-tokens", "3")
    assert code == 0 and report["levels"][0]["total_output_tokens"] == 2 + 3 + 2 + 3
    assert [b["max_tokens"] for b in peer.bodies[1:]] == [2, 3, 2, 3]  # after one warm-up probe


def test_an_empty_prompt_file_stops_the_run(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench(capsys, peer.url, "--prompts", "/dev/null", "--num-prompts", "2")
    assert code == 1 and err == "inferfleet bench: /dev/null: no prompts\n"
    assert peer.bodies == []


def test_text_report_has_a_row_per_level_and_the_errors_seen(capsys: pytest.CaptureFixture[str]) -> None:
    peer = OpenAIPeer(fail_every=3)  # the probes are requests 1 and 2; then 3 and 6 fail (level 1), 9 (level 2)
    try:
        code, out, _ = bench(capsys, peer.url, "--concurrency", "1,2", "--num-prompts", "4",
                             "--input-tokens", "8", "--output-tokens", "2")
    finally:
        peer.stop()
    lines = out.splitlines()
    assert code == 0, out  # errors alone, without an SLO to judge them, do not fail the run
    assert lines[0] == "model tiny; prompts synthetic: ~8 input tokens (8 words), 2 output tokens; latencies in ms"
    assert lines[1].split() == ["load", "ok", "failed", "req/s", "out", "tok/s", "TTFT", "p50", "TTFT", "p90", "TTFT", "p99",
                                "ITL", "p50", "ITL", "p90", "ITL", "p99", "E2E", "p50", "E2E", "p90", "E2E", "p99"]
    assert [line.split()[:4] for line in lines[2:4]] == [["concurrency", "1", "2", "2"], ["concurrency", "2", "3", "1"]]
    assert lines[4].startswith("concurrency 1: 2 x HTTP 500 from ") and lines[5].startswith("concurrency 2: 1 x HTTP 500 from ")


def write_stack(tmp_path: Path, slo: str) -> Path:
    """dev.yaml with another slo block (the file's stem must stay dev)."""
    old = "    slo:\n      ttftP99Ms: 3000\n      itlP99Ms: 150\n"
    assert DEV.count(old) == 1
    path = tmp_path / "dev.yaml"
    path.write_text(DEV.replace(old, slo), encoding="utf-8")
    return path


def test_slo_met_exits_0_and_says_so(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = bench(capsys, peer.url, "--stack", str(ROOT / "stacks" / "dev.yaml"), "--service", "chat",
                         "--num-prompts", "4", "--input-tokens", "16", "--output-tokens", "4")
    assert code == 0, out
    assert "concurrency 1: ok: TTFT p99 " in out and "(SLO 3000.0 ms)" in out
    assert "concurrency 1: ok: ITL p99 " in out


def test_workload_lengths_come_from_the_service(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = bench_json(capsys, peer.url, "--stack", str(ROOT / "stacks" / "dev.yaml"), "--service", "chat",
                              "--num-prompts", "2")
    assert code == 0
    assert {b["max_tokens"] for b in peer.bodies[2:]} == {256}  # dev's chat: outputTokens 256, inputTokens 1024
    assert {len(b["messages"][0]["content"].split()) for b in peer.bodies[2:]} == {1024}
    assert [c["name"] for c in report["levels"][0]["slo"]] == ["TTFT p99", "ITL p99"]


def test_itl_breach_exits_1_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = write_stack(tmp_path, "    slo:\n      ttftP99Ms: 3000\n      itlP99Ms: 5\n")
    peer = OpenAIPeer(token_delay_s=0.03)
    try:
        code, out, _ = bench(capsys, peer.url, "--stack", str(stack), "--service", "chat",
                             "--num-prompts", "3", "--input-tokens", "8", "--output-tokens", "4")
    finally:
        peer.stop()
    assert code == 1
    assert "concurrency 1: ok: TTFT p99" in out
    assert "concurrency 1: BREACH: ITL p99 " in out and "(SLO 5.0 ms)" in out


def test_errors_breach_availability(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stack = write_stack(tmp_path, "    slo:\n      ttftP99Ms: 3000\n      availability: 0.99\n")
    # an availability SLO needs a service that cannot scale to zero
    stack.write_text(stack.read_text().replace("replicas: {min: 0, max: 2}", "replicas: {min: 1, max: 2}"))
    peer = OpenAIPeer()
    try:
        code, report = bench_json(capsys, peer.url, "--stack", str(stack), "--service", "chat",
                                  "--num-prompts", "3", "--prompts", str(_prompts(tmp_path)))
        assert code == 0 and [c["ok"] for c in report["levels"][0]["slo"]] == [True, True]
        peer.fail_every = 2  # after the warm-up probe (request 1), requests 2 and 4 fail
        code, out, _ = bench(capsys, peer.url, "--stack", str(stack), "--service", "chat",
                             "--num-prompts", "3", "--prompts", str(_prompts(tmp_path)))
    finally:
        peer.stop()
    assert code == 1
    assert "concurrency 1: BREACH: error ratio 66.6667% (SLO 1.0000%)" in out
    assert "concurrency 1: 2 x HTTP 500 from " in out


def test_a_failing_warm_up_stops_the_run_with_its_reason(capsys: pytest.CaptureFixture[str]) -> None:
    peer = OpenAIPeer(fault="http500")
    try:
        code, out, err = bench(capsys, peer.url, "--input-tokens", "8", "--num-prompts", "2")
    finally:
        peer.stop()
    assert (code, out) == (1, "")
    assert err.startswith(f"inferfleet bench: probe request failed: HTTP 500 from {peer.url}/v1/chat/completions: ")


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "hi", "output_tokens": 2}\n')
    return path


def test_unknown_service_is_a_located_stack_problem(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    stack = ROOT / "stacks" / "dev.yaml"
    code, out, _ = bench(capsys, peer.url, "--stack", str(stack), "--service", "nope", "--input-tokens", "4")
    assert code == 1
    assert out == f"{stack}:27: services: no service named 'nope'; the stack has: chat\n"
    assert peer.bodies == []


def test_invalid_stack_reports_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "dev.yaml"
    path.write_text(DEV.replace("      ttftP99Ms: 3000\n", "      ttftP99Ms: fast\n"), encoding="utf-8")
    code, out, _ = bench(capsys, "http://127.0.0.1:9", "--stack", str(path), "--service", "chat")
    assert code == 1
    assert out.startswith(f"{path}:42: services.0.slo.ttftP99Ms: ")


def test_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = bench(capsys, "http://127.0.0.1:9", "--input-tokens", "4")
    assert code == 1 and out == ""
    assert err.startswith("inferfleet bench: cannot connect to http://127.0.0.1:9: ") and err.count("\n") == 1


def test_lengths_are_required_without_a_stack(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench(capsys, peer.url)
    assert (code, err) == (1, "inferfleet bench: give --prompts FILE, --input-tokens N, or --stack/--service for the workload's lengths\n")


@pytest.mark.parametrize(
    "argv",
    [
        ["--stack", "stacks/dev.yaml"],
        ["--request-rate", "2", "--concurrency", "1,2"],
        ["--prompts", "prompts.jsonl", "--range-ratio", "0.5"],
    ],
)
def test_flag_combinations_that_make_no_sense_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench(capsys, "http://127.0.0.1:9", *argv)
    assert code == 2 and err.startswith("inferfleet bench: ")


@pytest.mark.parametrize("url", ["localhost:8000", "foo", "http://", "grpc://h:8001"])
def test_a_url_that_is_not_http_is_a_usage_error(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = bench(capsys, url, "--input-tokens", "4")
    assert (code, err) == (2, f"inferfleet bench: needs an http:// or https:// base URL, got {url!r}\n")


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--concurrency", "1,x"], ["--request-rate", "-1"], ["--num-prompts", "0"],
                                  ["--range-ratio", "1"], ["--range-ratio", "-0.1"], ["--range-ratio", "x"]])
def test_bad_flag_values_are_argparse_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "http://127.0.0.1:9", *argv])
    assert exit_.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_level_whose_client_stalled_is_named_in_the_report() -> None:
    figures = stats.figures([RequestResult(ttft=0.01, itl=[0.002], latency=0.012, output_tokens=2)], 1.0)
    run = bench_module.BenchRun("m", "synthetic", [
        bench_module.LevelResult(bench_module.Level(4, None), figures, client_stall_ms=212.0),
        bench_module.LevelResult(bench_module.Level(8, None), figures, client_stall_ms=3.0),
    ])
    warnings = [line for line in render_text(run).splitlines() if "ran up to" in line]
    assert warnings == ["concurrency 4: the client's event loop ran up to 212 ms late (a busy machine): arrivals keep "
                        "the kernel's stamps, but requests due meanwhile left late"]
    assert [level["client_stall_ms"] for level in render_json(run)["levels"]] == [212.0, 3.0]


def test_an_slo_given_as_flags_is_judged_like_the_stacks(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    """What the deploy gate passes: the service's SLO as flags, no stack file."""
    code, report = bench_json(capsys, peer.url, "--num-prompts", "4", "--input-tokens", "8", "--output-tokens", "3",
                              "--slo-ttft-p99-ms", "60000", "--slo-itl-p99-ms", "60000", "--slo-availability", "0.99")
    assert code == 0
    assert [check["name"] for check in report["levels"][0]["slo"]] == ["TTFT p99", "ITL p99", "error ratio"]
    code, out, _ = bench(capsys, peer.url, "--num-prompts", "2", "--input-tokens", "8", "--output-tokens", "3",
                         "--slo-ttft-p99-ms", "0.001")
    assert code == 1 and "BREACH: TTFT p99" in out


@pytest.mark.parametrize(("flags", "message"), [
    (["--slo-itl-p99-ms", "50"], "--slo-ttft-p99-ms is required with the other --slo-* flags"),
    (["--slo-ttft-p99-ms", "500", "--slo-availability", "2"], "--slo availability:"),
    (["--slo-ttft-p99-ms", "500", "--stack", "stacks/dev.yaml", "--service", "chat"], "not both"),
])
def test_slo_flags_are_checked_before_any_request(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str],
                                                  flags: list[str], message: str) -> None:
    code, _, err = bench(capsys, peer.url, "--input-tokens", "8", *flags)
    assert code == 2 and message in err
    assert peer.bodies == []

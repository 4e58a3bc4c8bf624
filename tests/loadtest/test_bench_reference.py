"""`inferfleet bench` reports what a server did: checked against the reference server's own record.

The reference server (components/loadtest/reference_server.py) streams every request on a schedule it
draws in advance and stamps each write, in its own process. The command's reported TTFT, ITL and
end-to-end mean, p50, p90 and p99 must lie within TOLERANCE of the figures those stamps give
(`true_figures`), at 1, 16 and 256 streams, for chat and completions, chunked and Content-Length
responses; token counts and request counts must be exact, and every request must reuse one of the
connections the closed loop opened.

Why this holds on a busy machine: the truth is what the server did, not what it meant to do, so a
server whose timers wake late does not count against the client; what remains is the request path
(client stamp to server read) and the response path (server write to client read), which on loopback
stay well under a millisecond at the median even with two CPU-bound processes beside both peers
(README, "bench measured against a reference"). The schedule is slow enough (TTFT 100-300 ms, ITL
15-60 ms) that 5% of each figure is above the noise of a shared machine's scheduler.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from components.cli import main
from components.loadtest.reference_server import (
    LATENCIES,
    STATED_TOLERANCE,
    ReferenceServer,
    Schedule,
    errors,
    outside,
    record_index,
    true_figures,
)
from components.loadtest.stats import Distribution

TOLERANCE = STATED_TOLERANCE
PROBES = 2
"""Synthetic prompts are sized by two probe requests before the level (bench.py); they are not counted."""

CASES = [
    # streams, requests, output tokens, api, framing, TTFT ms, ITL ms
    pytest.param(1, 12, 8, "chat", "chunked", 100, 20, id="1-chat-chunked"),
    pytest.param(1, 12, 8, "completions", "length", 100, 20, id="1-completions-length"),
    pytest.param(16, 64, 16, "chat", "length", 150, 30, id="16-chat-length"),
    pytest.param(16, 64, 16, "completions", "chunked", 150, 30, id="16-completions-chunked"),
    pytest.param(256, 512, 32, "chat", "chunked", 200, 40, id="256-chat-chunked"),
    pytest.param(256, 512, 32, "completions", "length", 200, 40, id="256-completions-length"),
]


def run_bench(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> dict:
    code = main(["bench", url, "--model", "reference", "--input-tokens", "32", "--ignore-eos", "--json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    level: dict = json.loads(out)["levels"][0]
    return level


@pytest.mark.parametrize(("streams", "requests", "tokens", "api", "framing", "ttft_ms", "itl_ms"), CASES)
def test_bench_reports_the_reference_servers_schedule(
    capsys: pytest.CaptureFixture[str], streams: int, requests: int, tokens: int, api: str, framing: str,
    ttft_ms: float, itl_ms: float,
) -> None:
    with ReferenceServer(Schedule(ttft_ms, itl_ms, spread=0.5, framing=framing, seed=streams)) as server:  # type: ignore[arg-type]
        reported = run_bench(capsys, server.url, "--api", api, "--concurrency", str(streams),
                             "--num-prompts", str(requests), "--output-tokens", str(tokens), "--range-ratio", "0.5")
        done = server.records()
    counted = done["records"][PROBES:]
    truth = true_figures(counted)
    assert (reported["requests"], reported["completed"], reported["failed"]) == (requests, requests, 0)
    assert reported["total_output_tokens"] == truth.total_output_tokens == sum(len(r["writes"]) for r in counted)
    assert reported["mean_prompt_tokens"] == truth.mean_prompt_tokens
    for latency in LATENCIES:
        assert reported[latency]["count"] == getattr(truth, latency).count, latency
    assert {r["api"] for r in counted} == {api}
    assert len({r["connection"] for r in counted}) == streams, "every request rides one of the loop's kept-alive connections"
    assert outside(reported, truth, TOLERANCE) == [], errors(reported, truth)


def test_a_fresh_connection_per_request_is_counted_and_a_keep_alive_one_is_not(capsys: pytest.CaptureFixture[str]) -> None:
    """The connections a closed loop uses are opened before its clock starts and then reused: one per stream."""
    with ReferenceServer(Schedule(20, 5)) as server:
        run_bench(capsys, server.url, "--concurrency", "1,4", "--num-prompts", "8", "--output-tokens", "4")
        done = server.records()
    first, second = done["records"][PROBES : PROBES + 8], done["records"][PROBES + 8 :]
    assert len({r["connection"] for r in first}) == 1
    assert len({r["connection"] for r in second}) == 4
    assert {r["connection"] for r in done["records"][:PROBES]} <= {r["connection"] for r in first}


# --- the comparison itself can fail ---------------------------------------------------------------


def record(index: int, received: float, writes: list[float]) -> dict:
    return {"index": index, "connection": 1, "api": "chat", "received": received, "ttft_s": 0.0, "itl_s": 0.0,
            "prompt_tokens": 5, "writes": writes}


RECORDS = [record(0, 0.0, [0.100, 0.120, 0.140]), record(1, 0.05, [0.250, 0.280])]


def test_true_figures_are_what_a_perfect_client_would_time() -> None:
    truth = true_figures(RECORDS)
    assert truth.ttft_ms.mean == pytest.approx(150.0)  # 100 and 200 ms
    assert (truth.itl_ms.count, truth.itl_ms.p50) == (3, pytest.approx(20.0))  # 20, 20 and 30 ms
    assert truth.e2e_ms.mean == pytest.approx((140 + 230) / 2)
    assert (truth.total_output_tokens, truth.completed, truth.mean_prompt_tokens) == (5, 2, 5)
    assert truth.duration_s == pytest.approx(0.28)


def test_a_report_off_by_more_than_the_tolerance_is_named() -> None:
    truth = true_figures(RECORDS)
    exact = truth.to_json()
    assert outside(exact, truth, TOLERANCE) == []
    late = exact | {"ttft_ms": vars(replace(truth.ttft_ms, p50=truth.ttft_ms.p50 + 8.0))}  # 8 ms > 5% of 150
    (problem,) = outside(late, truth, TOLERANCE)
    assert problem.startswith("ttft_ms.p50: reported 158.00 ms, true 150.00 ms")
    slow = exact | {"output_tokens_per_s": truth.output_tokens_per_s * 0.9}
    assert [p.split(":")[0] for p in outside(slow, truth, TOLERANCE)] == ["output_tokens_per_s"]


def test_small_latencies_are_held_to_the_absolute_bound() -> None:
    assert TOLERANCE.bound_ms(10.0) == 2.0 and TOLERANCE.bound_ms(100.0) == 5.0
    truth = true_figures(RECORDS)
    itl = Distribution(**vars(truth.itl_ms) | {"mean": truth.itl_ms.mean + 2.5})
    assert [p.split(":")[0] for p in outside(truth.to_json() | {"itl_ms": vars(itl)}, truth, TOLERANCE)] == ["itl_ms.mean"]


def test_a_record_without_a_token_is_refused() -> None:
    with pytest.raises(ValueError, match="request 0 got no token"):
        true_figures([record(0, 0.0, [])])


def test_the_first_token_names_the_record_it_came_from() -> None:
    assert record_index("#17 t1 t2 ") == 17


def test_the_reference_server_draws_each_requests_schedule_from_its_seed() -> None:
    schedule = Schedule(100, 20, spread=0.5, seed=3)
    assert schedule.draw(7) == schedule.draw(7) != schedule.draw(8)
    ttfts = [schedule.draw(i)[0] for i in range(200)]
    assert 0.05 <= min(ttfts) < 0.06 and 0.14 < max(ttfts) <= 0.15
    with pytest.raises(ValueError):
        Schedule(spread=1.0)

"""`inferfleet smoke --engine vllm|ray-serve` against an OpenAI-compatible peer, healthy and broken."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from components.cli import main
from loadtest.openai_peer import OpenAIPeer


@pytest.fixture
def peer() -> Iterator[OpenAIPeer]:
    running = OpenAIPeer()
    yield running
    running.stop()


def smoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(["smoke", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, err
    return code, out.splitlines()


def test_healthy_server_passes_every_step(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = smoke(capsys, peer.url, "--engine", "vllm", "--max-tokens", "3")
    assert code == 0, lines
    assert lines[0] == f"ok   ready: GET {peer.url}/health: 200"
    assert lines[1] == "ok   models: 1 served (tiny); using tiny"
    assert lines[2].startswith("ok   stream: 3 tokens in 3 chunks, TTFT ") and lines[2].endswith("'t0 t1 t2 '")
    assert lines[3] == f"smoke passed: vllm at {peer.url}"
    (body,) = peer.bodies
    assert body["stream"] is True and body["max_tokens"] == 3 and body["stream_options"] == {"include_usage": True}


def test_json_output(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["smoke", peer.url, "--engine", "vllm", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["ok"] is True and [s["name"] for s in report["steps"]] == ["ready", "models", "stream"]


@pytest.mark.parametrize(
    ("fault", "line"),
    [
        ("not_ready", "FAIL ready: GET {url}/health: HTTP 503 (not ready): engine starting"),
        ("no_models", "FAIL models: GET {url}/v1/models: no models served"),
        ("http500", 'FAIL stream: chat completion with tiny: HTTP 500 from {url}/v1/chat/completions: {{"error": {{"message": "engine dead"}}}}'),
        ("malformed", "FAIL stream: chat completion with tiny: malformed SSE: data is not JSON: '{{oops'"),
        ("empty", "FAIL stream: chat completion with tiny: empty stream: no token chunk before [DONE]"),
        ("cut", "FAIL stream: chat completion with tiny: stream ended before [DONE]"),
    ],
)
def test_each_failure_names_its_reason_and_exits_1(fault: str, line: str, capsys: pytest.CaptureFixture[str]) -> None:
    peer = OpenAIPeer(fault=fault)  # type: ignore[arg-type]
    try:
        code, lines = smoke(capsys, peer.url, "--engine", "vllm")
    finally:
        peer.stop()
    assert code == 1
    assert lines[-2] == line.format(url=peer.url)
    assert lines[-1] == f"smoke FAILED: vllm at {peer.url}"


def test_a_hanging_stream_times_out(capsys: pytest.CaptureFixture[str]) -> None:
    peer = OpenAIPeer(fault="hang")
    try:
        code, lines = smoke(capsys, peer.url, "--engine", "vllm", "--timeout", "0.5")
    finally:
        peer.stop()
    assert (code, lines[-2]) == (1, "FAIL stream: chat completion with tiny: timed out after 0.5 s")


def test_a_model_that_is_not_served(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = smoke(capsys, peer.url, "--engine", "vllm", "--model", "llama")
    assert (code, lines[1]) == (1, "FAIL models: model 'llama' is not served; the server has: tiny")


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        code, lines = smoke(capsys, f"http://127.0.0.1:{port}", "--engine", "vllm")
    assert code == 1
    assert lines[0].startswith(f"FAIL ready: cannot connect to http://127.0.0.1:{port}/health: ")


def test_ray_serve_readiness_is_the_proxy_health_route(peer: OpenAIPeer, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = smoke(capsys, peer.url, "--engine", "ray-serve")
    assert (code, lines[0]) == (1, f"FAIL ready: GET {peer.url}/-/healthz: HTTP 404 (not ready): 404: Not Found")


def test_a_url_that_is_not_http_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["smoke", "localhost:8000", "--engine", "ray-serve"])
    err = capsys.readouterr().err
    assert (code, err) == (2, "inferfleet smoke: ray-serve needs an http:// or https:// base URL, got 'localhost:8000'\n")

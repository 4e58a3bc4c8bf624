"""A real vLLM server (the pinned release's CPU build) started the way the pods start it.

The manifests' server module and container arguments (`vllm_args` of prod's first vLLM replica
set) go through `cpu_args`, the one place GPU-only flags are mapped out, and serve a tiny random
Llama the test writes. The test then talks to it as the gateway and KEDA do:
a streaming chat completion, a plain completion, and a scrape of /metrics for the gauges the
ScaledObject's query reads (components/manifests/autoscaling.py).

The server is conftest.py's session-wide one (shared with test_prometheus_vllm.py). The cpu_args
tests at the bottom are pure and run in `make test`; the server tests are `e2e`.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from e2e.local_servers import REQUEST_TIMEOUT_S, Server, post
from e2e.vllm_cpu import CPU_MAX_MODEL_LEN, cpu_args

# What the ScaledObject's PromQL reads (components/manifests/autoscaling.py load_signal).
SCALING_GAUGES = ("vllm:num_requests_waiting", "vllm:num_requests_running")


@pytest.mark.e2e
def test_streaming_chat_completion(server: Server) -> None:
    request = post(
        f"{server.url}/v1/chat/completions",
        {
            "model": server.served_name,
            "messages": [{"role": "user", "content": "Hello! How are you today?"}],
            "max_tokens": 16,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/event-stream"
        events = [line.decode().removeprefix("data: ").strip() for line in response if line.startswith(b"data: ")]

    assert events and events[-1] == "[DONE]", events[-3:]
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" and chunk["model"] == server.served_name for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    deltas = [chunk["choices"][0] for chunk in chunks if chunk["choices"]]
    assert deltas[0]["delta"].get("role") == "assistant"
    assert deltas[-1]["finish_reason"] in ("length", "stop")
    assert sum(1 for d in deltas if d["delta"].get("content")) >= 2, "expected the answer in several chunks"
    usage = chunks[-1]["usage"]  # include_usage: a last chunk with no choices
    assert chunks[-1]["choices"] == [] and 1 <= usage["completion_tokens"] <= 16 and usage["prompt_tokens"] > 0


@pytest.mark.e2e
def test_plain_completion(server: Server) -> None:
    request = post(
        f"{server.url}/v1/completions",
        {"model": server.served_name, "prompt": "The quick brown fox", "max_tokens": 8, "temperature": 0},
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200
        body = json.load(response)
    assert body["object"] == "text_completion" and body["model"] == server.served_name
    (choice,) = body["choices"]
    assert isinstance(choice["text"], str) and choice["finish_reason"] in ("length", "stop")
    assert 1 <= body["usage"]["completion_tokens"] <= 8


@pytest.mark.e2e
def test_metrics_expose_the_scaling_gauges(server: Server) -> None:
    # After the completion tests (file order), so the counters below have moved (the Prometheus test
    # may have added more: at least two is what this file's own requests guarantee).
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=REQUEST_TIMEOUT_S) as response:
        assert response.status == 200
        samples = parse_prometheus_text(response.read().decode())

    for gauge in SCALING_GAUGES:
        labelled = [labels for name, labels, _ in samples if name == gauge]
        assert labelled, f"{gauge} missing from /metrics"
        assert any(labels.get("model_name") == server.served_name for labels in labelled), labelled
    finished = sum(value for name, _, value in samples if name == "vllm:request_success_total")
    assert finished >= 2, "the completions above should be counted"


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus_text(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) per sample of the Prometheus text format.

    prometheus_client's parser is not in the main venv, so this reads the format's sample lines
    (`name{label="value",...} value [timestamp]`) itself and fails on any line it cannot read.
    """
    samples = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, f"unreadable /metrics line: {line!r}"
        name, labels, value = match.groups()
        samples.append((name, dict(_LABEL.findall(labels or "")), float(value)))
    return samples


# --- cpu_args: pure, part of `make test` -------------------------------------------------------


def test_cpu_args_maps_gpu_flags_and_keeps_the_rest() -> None:
    args = cpu_args(
        [
            "--model=/models/x", "--tensor_parallel_size", "8", "-pp", "2",
            "--gpu-memory-utilization", "0.9", "--kv-cache-dtype", "fp8_e4m3",
            "--max-model-len", "16384", "--enable-expert-parallel",
            "--cudagraph-capture-sizes", "1", "2", "4", "--max-num-seqs", "128", "--enable-prefix-caching",
        ],
        model_dir="/tmp/tiny",
        port=1234,
    )
    assert args == [
        "--model", "/tmp/tiny", "--tensor-parallel-size", "1", "-pp", "1",
        "--max-model-len", str(CPU_MAX_MODEL_LEN),
        "--max-num-seqs", "128", "--enable-prefix-caching",
        "--port", "1234", "--host", "127.0.0.1",
    ]


def test_cpu_args_keeps_values_cpu_can_serve() -> None:
    vector = ["--model", "m", "--kv-cache-dtype", "auto", "--max-model-len", "512", "--port", "8000"]
    args = cpu_args(vector, model_dir="d", port=9)
    assert args == ["--model", "d", "--kv-cache-dtype", "auto", "--max-model-len", "512", "--port", "9", "--host", "127.0.0.1"]


def test_cpu_args_refuses_a_positional_model_tag() -> None:
    with pytest.raises(ValueError, match="positional"):
        cpu_args(["meta-llama/Llama-3.1-8B", "--port", "8000"], model_dir="d", port=9)

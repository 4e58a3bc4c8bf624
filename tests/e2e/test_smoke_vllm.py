"""`inferfleet smoke --engine vllm` against the real vLLM server (conftest.py's session server)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from e2e.local_servers import Server
from e2e.vllm_cpu import REPO_ROOT


def smoke(*argv: str) -> subprocess.CompletedProcess[str]:
    """The command as users run it, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "components.cli", "smoke", *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.e2e
def test_smoke_passes_against_the_real_server(server: Server) -> None:
    done = smoke(server.url, "--engine", "vllm", "--max-tokens", "8", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    ready, models, stream = report["steps"]
    assert ready == {"name": "ready", "ok": True, "detail": f"GET {server.url}/health: 200"}
    assert models["detail"] == f"1 served ({server.served_name}); using {server.served_name}"
    assert stream["ok"] and stream["detail"].startswith("8 tokens in ")  # usage counted by vLLM's tokenizer


@pytest.mark.e2e
def test_smoke_names_a_model_the_server_does_not_serve(server: Server) -> None:
    done = smoke(server.url, "--engine", "vllm", "--model", "not-served")
    assert done.returncode == 1
    assert f"FAIL models: model 'not-served' is not served; the server has: {server.served_name}" in done.stdout.splitlines()
    assert "Traceback" not in done.stderr


@pytest.mark.e2e
def test_smoke_reports_a_refused_request_from_the_real_server(server: Server) -> None:
    # More tokens than --max-model-len allows: vLLM refuses with HTTP 400, and smoke says why.
    done = smoke(server.url, "--engine", "vllm", "--max-tokens", "100000")
    assert done.returncode == 1
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("FAIL stream: ")]
    assert f"HTTP 400 from {server.url}/v1/chat/completions" in line and "Traceback" not in done.stderr

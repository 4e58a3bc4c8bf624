"""Starting and stopping the local servers the e2e tests talk to (vLLM, Prometheus).

Shared by conftest.py's session-wide vLLM server and the Prometheus test, so every server is started
in its own process group on a free loopback port, waited for the same way, and always torn down.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.vllm_cpu import LOOPBACK, generated_vllm_vectors

REQUEST_TIMEOUT_S = 120
POLL_S = 1.0


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    served_name: str


def container_args() -> list[str]:
    """The arguments the manifests give the first vLLM replica set of prod (a multi-GPU one)."""
    vectors = [v for v in generated_vllm_vectors() if v.where.startswith("stacks/prod.yaml")]
    assert vectors, "no vLLM replica set in stacks/prod.yaml"
    return vectors[0].args


def flag_value(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 60) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def start(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own session, so `stop` takes its children (vLLM's engine core) down too."""
    with log.open("w") as out:
        return subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail with the log's tail when the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode} while starting:\n{log_tail(log)}", pytrace=False)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_S)
    pytest.fail(f"{what} not ready after {timeout_s} s:\n{log_tail(log)}", pytrace=False)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (vLLM drains and exits), SIGKILL it if that hangs."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    try:  # children left behind after the parent exited
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def post(url: str, body: dict[str, Any]) -> urllib.request.Request:
    return urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )

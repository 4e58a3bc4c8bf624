"""Starting and stopping the local servers the e2e tests talk to (vLLM, Prometheus).

Shared by conftest.py's session-wide vLLM server and the Prometheus tests, so every server is started
in its own process group on a free loopback port, waited for the same way, and always torn down. The
process handling is components/local/processes.py (also what `make local` uses); here a server that
fails to start fails the test with its log's tail instead of raising.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.local import processes
from components.local.processes import free_port, log_tail, start, stop
from e2e.vllm_cpu import generated_vllm_vectors

__all__ = ["REQUEST_TIMEOUT_S", "Server", "container_args", "flag_value", "free_port", "log_tail", "post", "start",
           "stop", "wait_ready"]

REQUEST_TIMEOUT_S = 120


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


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float) -> None:
    """Poll `url` until it answers 200; fail the test with the log's tail when the process dies or time runs out."""
    try:
        processes.wait_ready(url, process, log, what, timeout_s)
    except processes.ServerStartError as error:
        pytest.fail(str(error), pytrace=False)


def post(url: str, body: dict[str, Any]) -> urllib.request.Request:
    return urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )

"""The one real vLLM server of an e2e run, and the tiny model it serves, shared by every test that needs them.

Session-scoped: starting vLLM on CPU takes most of a minute and a half, so the serving tests
(test_vllm_server.py) and the Prometheus test (test_prometheus_vllm.py) use the same process. It is
started by components/local/vllm_server.py, the same sequence `make local` runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from components.local.processes import LocalError
from components.local.vllm_server import STARTUP_TIMEOUT_S, start_vllm, write_tiny_model
from e2e.local_servers import Server, container_args, flag_value, free_port, stop, wait_ready
from e2e.vllm_cpu import LOOPBACK, vllm_python


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama (weights and tokenizer), written once per run with .venv-vllm's python."""
    python = vllm_python()
    model_dir = tmp_path_factory.mktemp("tiny-model") / "tiny-llama"
    try:
        write_tiny_model(python, model_dir)
    except LocalError as error:
        pytest.fail(str(error), pytrace=False)
    return model_dir


@pytest.fixture(scope="session")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Start the server with prod's arguments on the tiny model on a free loopback port, wait for /health."""
    python = vllm_python()
    work = tmp_path_factory.mktemp("vllm-cpu")
    args = container_args()
    port = free_port()
    log = work / "server.log"
    process = start_vllm(python, args, model_dir=tiny_model, port=port, log=log)
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_ready(f"{url}/health", process, log, "vLLM", STARTUP_TIMEOUT_S)
        yield Server(url, log, served_name=flag_value(args, "--served-model-name"))
    finally:
        stop(process)

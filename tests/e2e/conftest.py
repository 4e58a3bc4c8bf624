"""The one real vLLM server of an e2e run, shared by every test that talks to it.

Session-scoped: starting vLLM on CPU takes most of a minute and a half, so the serving tests
(test_vllm_server.py) and the Prometheus test (test_prometheus_vllm.py) use the same process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from components.manifests.vllm import SERVER_MODULE
from e2e.local_servers import Server, container_args, flag_value, free_port, start, stop, wait_ready
from e2e.vllm_cpu import LOOPBACK, TINY_MODEL_SCRIPT, cpu_args, vllm_env, vllm_python

STARTUP_TIMEOUT_S = 240  # about 90 s measured on 2 idle cores (most of it torch compile warm-up)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Write the tiny model, start the server with prod's arguments on a free loopback port, wait for /health."""
    python = vllm_python()
    work = tmp_path_factory.mktemp("vllm-cpu")
    model_dir = work / "tiny-llama"
    subprocess.run(
        [str(python), str(TINY_MODEL_SCRIPT), str(model_dir)],
        check=True,
        timeout=300,
        env=vllm_env(),
        capture_output=True,
    )
    args = container_args()
    port = free_port()
    argv = [str(python), "-m", SERVER_MODULE, *cpu_args(args, model_dir=model_dir, port=port)]
    log = work / "server.log"
    process = start(argv, log, env=vllm_env(VLLM_CPU_KVCACHE_SPACE="1"))
    try:
        url = f"http://{LOOPBACK}:{port}"
        wait_ready(f"{url}/health", process, log, "vLLM", STARTUP_TIMEOUT_S)
        yield Server(url, log, served_name=flag_value(args, "--served-model-name"))
    finally:
        stop(process)

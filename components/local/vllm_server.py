"""Starting the real vLLM (CPU build) on the tiny model with a replica set's generated arguments.

One sequence for `make local` and the e2e tests' session server: write the tiny model with .venv-vllm's
python, map the container arguments to CPU (`cpu_args`), start the OpenAI server module the manifests
run, in its own process group.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from components.local.processes import LocalError, start
from components.local.vllm_cpu import TINY_MODEL_SCRIPT, cpu_args, vllm_env
from components.manifests.vllm import SERVER_MODULE

STARTUP_TIMEOUT_S = 600
"""About 90 s measured on 2 idle cores (most of it torch compile warm-up), over 200 s on busy ones. Only a hang
waits this long: a server that exits while starting fails at once (processes.wait_ready polls it)."""
KV_CACHE_SPACE_GIB = "1"
"""VLLM_CPU_KVCACHE_SPACE: the tiny model needs little, and the machine has other work."""
MODEL_WRITE_TIMEOUT_S = 300
MODEL_STAMP = ".tiny-model-sha256"
"""In a written model directory: the hash of the script that wrote it, so an edit to it rewrites the model."""


def _script_hash() -> str:
    return hashlib.sha256(TINY_MODEL_SCRIPT.read_bytes()).hexdigest()


def write_tiny_model(python: Path, model_dir: Path) -> bool:
    """Write the tiny model into `model_dir` unless the current script already wrote it there; True if written.

    Written beside the target and renamed into place, so an interrupted write never looks complete (a
    reused model saves the ~15 s of importing torch and transformers on every local run).
    """
    stamp = model_dir / MODEL_STAMP
    if stamp.exists() and stamp.read_text() == _script_hash():
        return False
    partial = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        done = subprocess.run(
            [str(python), str(TINY_MODEL_SCRIPT), str(partial)],
            timeout=MODEL_WRITE_TIMEOUT_S, env=vllm_env(), capture_output=True, text=True,
        )
    except subprocess.TimeoutExpired:
        raise LocalError(f"writing the tiny model took over {MODEL_WRITE_TIMEOUT_S} s") from None
    if done.returncode != 0:
        raise LocalError(f"{TINY_MODEL_SCRIPT.name} exited {done.returncode}:\n{done.stderr[-4000:]}")
    (partial / MODEL_STAMP).write_text(_script_hash())
    shutil.rmtree(model_dir, ignore_errors=True)
    partial.rename(model_dir)
    return True


def vllm_argv(python: Path, args: Sequence[str], *, model_dir: Path, port: int) -> list[str]:
    """The command line: the server module the manifests run, with the container's arguments mapped to CPU."""
    return [str(python), "-m", SERVER_MODULE, *cpu_args(args, model_dir=model_dir, port=port)]


def start_vllm(python: Path, args: Sequence[str], *, model_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start the server in its own process group, logging to `log`; the caller waits for /health and stops it."""
    argv = vllm_argv(python, args, model_dir=model_dir, port=port)
    return start(argv, log, env=vllm_env(VLLM_CPU_KVCACHE_SPACE=KV_CACHE_SPACE_GIB))

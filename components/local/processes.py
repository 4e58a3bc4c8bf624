"""Local servers as process groups: started on a free loopback port, waited for, always torn down.

Each server gets its own session (process group), so one signal reaches the children it forks too
(vLLM's engine core, Ray's raylet) and nothing outlives the run that started it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"
"""Local servers listen on loopback only: nothing here is meant to be reachable from elsewhere."""
POLL_S = 1.0
STOP_GRACE_S = 30


class LocalError(RuntimeError):
    """A local run cannot go on; the message says why and what to do, in a line or a log's tail."""


class ServerStartError(LocalError):
    """A server exited while starting or did not become ready in time; the message carries its log's tail."""


def free_port() -> int:
    """A port free on loopback now, so concurrent runs on one machine do not collide."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 60) -> str:
    """The end of a server's log, for an error message that says why it failed."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no log)"


def start(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server in its own session, so `stop` takes its children (vLLM's engine core) down too."""
    with log.open("w") as out:
        return subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, what: str, timeout_s: float) -> None:
    """Poll `url` until it answers 200; ServerStartError with the log's tail when the process dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{what} exited with {process.returncode} while starting:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_S)
    raise ServerStartError(f"{what} not ready after {timeout_s} s:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (vLLM drains and exits), SIGKILL it if that hangs."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_GRACE_S)
    try:  # children left behind after the parent exited
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

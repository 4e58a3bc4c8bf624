"""`make local`'s program (`python -m components.local`) end to end: real vLLM, real Prometheus, smoke, bench.

Run as users run it, in its own process: with `--once` it must start both servers, pass its checks, print
where to look and exit 0; interrupted while vLLM starts it must exit 130. Either way no process it started
may be left: every process of the run carries a marker in its environment (children inherit it), and none
may carry it after the run, nor may anything still answer on the URLs it printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from components.local.prometheus import PROMETHEUS, prometheus_binary
from e2e.vllm_cpu import REPO_ROOT, vllm_python
from tests.tooling import missing_tool

RUN_TIMEOUT_S = 720
"""vLLM's start (about 90 s on 2 idle cores, 420 s allowed), smoke, bench and a few scrapes at 15 s."""
MARKER = "INFERFLEET_LOCAL_TEST_RUN"


def tools() -> None:
    vllm_python()
    if prometheus_binary() is None:
        missing_tool(f"{PROMETHEUS} is missing: install it with scripts/install_prometheus.sh")


def launch(work: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    """The program in its own session (so a hung run can be killed whole), with a marker only its processes carry."""
    marker = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "components.local", "--work", str(work), *extra],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=os.environ | {MARKER: marker}, start_new_session=True,
    )
    return process, marker


def marked_processes(marker: str) -> list[str]:
    """pid and command line of every process whose environment carries the marker."""
    needle = f"{MARKER}={marker}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{proc.name}: {command}")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def finish(process: subprocess.Popen[str], timeout_s: float, marker: str) -> str:
    """The run's whole output; a run past the timeout is killed, with every process it started (the servers
    run in sessions of their own, so the marker finds them), and fails the test."""
    try:
        output, _ = process.communicate(timeout=timeout_s)
        return output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        for line in marked_processes(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"python -m components.local ran past {timeout_s} s:\n{output[-6000:]}", pytrace=False)


def assert_nothing_left(marker: str, urls: list[str]) -> None:
    left = marked_processes(marker)
    assert not left, "processes left behind:\n" + "\n".join(left)
    still = [url for url in urls if answers(url)]
    assert not still, f"still answering after the run: {still}"


@pytest.mark.e2e
@pytest.mark.slow
def test_once_serves_checks_prints_where_to_look_and_stops_everything(tmp_path: Path) -> None:
    tools()
    started = time.monotonic()
    process, marker = launch(tmp_path, "--once")
    output = finish(process, RUN_TIMEOUT_S, marker)
    took = time.monotonic() - started
    print(output, f"\n(run took {took:.0f} s)")
    assert process.returncode == 0, output[-6000:]
    assert "Traceback" not in output
    vllm = re.search(r"^  vLLM +(http://127\.0\.0\.1:\d+) ", output, re.MULTILINE)
    prometheus = re.search(r"^  Prometheus +(http://127\.0\.0\.1:\d+) ", output, re.MULTILINE)
    assert vllm and prometheus, output
    assert f"smoke passed: vllm at {vllm[1]}" in output
    assert re.search(r"^concurrency 1 +4 +0 ", output, re.MULTILINE), output  # bench: 4 ok, 0 failed
    assert re.search(r"^  example +sum by \(inferfleet_service, inferfleet_replica_set\) \(rate\(vllm:request_success_total",
                     output, re.MULTILINE), output
    rules = sorted((tmp_path / "dev-chat" / "rules").glob("*.yml"))
    assert [r.name for r in rules] == ["inferfleet-chat.yml", "inferfleet-fleet.yml"]
    assert re.search(r"; [1-9]\d* rules loaded, none failing", output), output
    assert_nothing_left(marker, [f"{vllm[1]}/health", f"{prometheus[1]}/-/ready"])


@pytest.mark.e2e
def test_ctrl_c_while_vllm_starts_stops_everything(tmp_path: Path) -> None:
    tools()
    process, marker = launch(tmp_path)
    assert process.stdout is not None
    lines = []
    for line in process.stdout:  # the servers are up (or starting) once it waits for vLLM
        lines.append(line)
        if line.startswith("waiting for vLLM at "):
            break
    else:
        pytest.fail("".join(lines), pytrace=False)
    time.sleep(5)  # vLLM is importing torch; its engine process may be forking
    os.kill(process.pid, signal.SIGINT)
    output = "".join(lines) + finish(process, 120, marker)
    assert process.returncode == 130, output
    assert "interrupted; vLLM and Prometheus stopped" in output and "Traceback" not in output
    url = re.search(r"waiting for vLLM at (http://\S+)", output)
    assert url
    assert_nothing_left(marker, [f"{url[1]}/health"])

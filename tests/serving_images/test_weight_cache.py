"""The vLLM image's weight-cache entrypoint (serving_images/vllm/weight_cache.py) against a real S3 API:
moto's server on the loopback interface, the image's own boto3 (.venv-weights, built by
serving_images/vllm/test_venv.sh). Each test runs the entrypoint as the container would, as a process
whose arguments are the server command, and checks what lands in the node cache and whether the server
command was exec'd.

Proved here: a first start fills the cache and execs the server in the same process; a second start on
the node neither downloads nor needs S3; concurrent starts wait on the node lock and download once; a
copy cut short (killed mid-download, or a file lost later) is completed without refetching what is
whole, and stray files are removed; S3 unreachable, a missing bucket or an empty prefix stop the
container with one clear line and never start the server.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.tooling import missing_tool

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "serving_images" / "vllm" / "weight_cache.py"
VENV_PYTHON = ROOT / os.environ.get("WEIGHTS_VENV", ".venv-weights") / "bin" / "python"
"""The venv serving_images/vllm/test_venv.sh builds (same WEIGHTS_VENV override as the script)."""
LOOPBACK = "127.0.0.1"
MARKER = ".inferfleet-cache.json"
RUN_TIMEOUT_S = 120

SEED = """
import hashlib, json, sys, boto3
spec = json.load(sys.stdin)
client = boto3.client("s3")
if spec.get("create"):
    client.create_bucket(Bucket=spec["bucket"])
for key, size in spec.get("objects", {}).items():
    client.put_object(Bucket=spec["bucket"], Key=key, Body=(hashlib.sha256(key.encode()).digest() * (size // 32 + 1))[:size])
for key in spec.get("delete", []):
    client.delete_object(Bucket=spec["bucket"], Key=key)
"""


def content(key: str, size: int) -> bytes:
    """What SEED stores for a key: deterministic, different per key."""
    return (hashlib.sha256(key.encode()).digest() * (size // 32 + 1))[:size]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class S3:
    endpoint: str
    env: dict[str, str]

    def seed(self, bucket: str, objects: dict[str, int], create: bool = True, delete: tuple[str, ...] = ()) -> None:
        spec = {"bucket": bucket, "objects": objects, "create": create, "delete": list(delete)}
        subprocess.run(
            [str(VENV_PYTHON), "-c", SEED], input=json.dumps(spec), text=True, env=self.env, check=True,
            capture_output=True, timeout=RUN_TIMEOUT_S,
        )


def aws_env(endpoint: str) -> dict[str, str]:
    """Static test credentials and the local endpoint; nothing from the caller's AWS configuration."""
    keep = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {
        **keep,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    if not VENV_PYTHON.exists():
        missing_tool(f"{VENV_PYTHON} is missing: run serving_images/vllm/test_venv.sh")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(VENV_PYTHON), "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"moto exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
            try:
                socket.create_connection((LOOPBACK, port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto not listening after 60 s:\n{log.read_text()}", pytrace=False)
                time.sleep(0.2)
        endpoint = f"http://{LOOPBACK}:{port}"
        yield S3(endpoint, aws_env(endpoint))
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


SERVER = [sys.executable, "-c", "import os, sys; print(os.getpid()); print(sys.argv[1:])", "--model", "M"]
"""Stands in for vLLM: prints its pid (equal to the entrypoint's when exec'd) and its arguments."""


def start(s3: S3, source: str, target: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    variables = {**(env or s3.env), "INFERFLEET_MODEL_SOURCE": source, "INFERFLEET_MODEL_DIR": str(target)}
    return subprocess.Popen(
        [str(VENV_PYTHON), str(ENTRYPOINT), *SERVER], env=variables, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@dataclass(frozen=True)
class Run:
    pid: int
    code: int
    out: str
    err: str

    @property
    def served(self) -> bool:
        """The server command ran, in the entrypoint's own process (exec, not a child)."""
        lines = self.out.splitlines()
        return self.code == 0 and bool(lines) and lines[0] == str(self.pid) and "'--model', 'M'" in self.out


def finish(process: subprocess.Popen[str]) -> Run:
    out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    return Run(process.pid, process.returncode, out, err)


def run(s3: S3, source: str, target: Path, *, env: dict[str, str] | None = None) -> Run:
    return finish(start(s3, source, target, env=env))


MODEL = {
    "config.json": 700,
    "tokenizer/tokenizer.json": 5_000,
    "model-00001-of-00002.safetensors": 3_000_000,
    "model-00002-of-00002.safetensors": 2_000_000,
}


def seed_model(s3: S3, bucket: str, prefix: str = "org/model") -> str:
    s3.seed(bucket, {f"{prefix}/{path}": size for path, size in MODEL.items()})
    return f"s3://{bucket}/{prefix}"


def assert_exact_copy(target: Path, expected: dict[str, int], prefix: str = "org/model") -> None:
    files = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} - {MARKER}
    assert files == set(expected)
    for path, size in expected.items():
        assert (target / path).read_bytes() == content(f"{prefix}/{path}", size), path
    marker = json.loads((target / MARKER).read_text())
    assert marker["complete"] is True
    assert {path: entry["size"] for path, entry in marker["objects"].items()} == expected


def test_first_start_fills_the_cache_then_execs_the_server(s3: S3, tmp_path: Path) -> None:
    source = seed_model(s3, "first")
    s3.seed("first", {"org/model-extra/not-this.bin": 10}, create=False)  # same leading characters, other model
    target = tmp_path / "models" / "org/model" / "default"
    result = run(s3, source, target)
    assert result.served, result.err
    assert f"fetched {len(MODEL)} objects (0 already whole)" in result.err
    assert_exact_copy(target, MODEL)


def test_a_second_start_on_the_node_downloads_nothing_and_needs_no_s3(s3: S3, tmp_path: Path) -> None:
    source = seed_model(s3, "second")
    target = tmp_path / "cache" / "m"
    assert run(s3, source, target).served
    times = {p: p.stat().st_mtime_ns for p in target.rglob("*")}
    unreachable = {**s3.env, "AWS_ENDPOINT_URL_S3": f"http://{LOOPBACK}:{free_port()}", "AWS_MAX_ATTEMPTS": "1"}
    again = run(s3, source, target, env=unreachable)
    assert again.served, again.err
    assert "already holds" in again.err
    assert {p: p.stat().st_mtime_ns for p in target.rglob("*")} == times


def test_concurrent_starts_on_a_node_download_once(s3: S3, tmp_path: Path) -> None:
    """The test holds the node lock while three pods start, so all three are certainly waiting on it
    when it is released; then exactly one downloads and the others serve its copy."""
    source = seed_model(s3, "concurrent")
    target = tmp_path / "cache" / "m"
    target.parent.mkdir(parents=True)
    lock = os.open(f"{target}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    pods = [start(s3, source, target) for _ in range(3)]
    try:
        time.sleep(3)  # generous: each pod reaches the lock within a fraction of a second
        assert all(pod.poll() is None for pod in pods), "a pod did not wait for the node lock"
    finally:
        os.close(lock)
    results = [finish(pod) for pod in pods]
    assert all(result.served for result in results), [result.err for result in results]
    assert all("waiting for it" in result.err for result in results)
    assert sum("fetched" in result.err for result in results) == 1
    assert sum("already holds" in result.err for result in results) == 2
    assert_exact_copy(target, MODEL)


def test_a_copy_killed_mid_download_is_completed_on_the_next_start(s3: S3, tmp_path: Path) -> None:
    shards = {f"shard-{index:02d}.safetensors": 4_000_000 for index in range(12)}
    s3.seed("killed", {f"big/{path}": size for path, size in shards.items()})
    source, target = "s3://killed/big", tmp_path / "cache" / "big"
    pod = start(s3, source, target)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and pod.poll() is None:
        try:
            marker = json.loads((target / MARKER).read_text())
        except (OSError, ValueError):
            marker = {}
        if marker.get("objects") and not marker.get("complete"):
            pod.send_signal(signal.SIGKILL)  # a pod lost mid-copy: spot reclaim, OOM, node drain
            break
        time.sleep(0.01)
    finish(pod)
    assert pod.returncode == -signal.SIGKILL, "the copy finished before the test could interrupt it"
    marker = json.loads((target / MARKER).read_text())
    assert marker["complete"] is False
    whole = len(marker["objects"])
    assert 0 < whole < len(shards)
    result = run(s3, source, target)
    assert result.served, result.err
    assert "an earlier copy did not finish" in result.err
    assert f"fetched {len(shards) - whole} objects ({whole} already whole)" in result.err
    assert_exact_copy(target, shards, prefix="big")


def test_a_torn_copy_is_repaired_and_stray_files_removed(s3: S3, tmp_path: Path) -> None:
    """A cache with a truncated shard, a lost file and files S3 does not hold (a transfer's temporary
    file, a shard of an older revision that vLLM would load) is brought back to exactly the prefix."""
    source = seed_model(s3, "torn")
    target = tmp_path / "cache" / "m"
    assert run(s3, source, target).served
    (target / "model-00001-of-00002.safetensors").write_bytes(b"truncated")
    (target / "tokenizer" / "tokenizer.json").unlink()
    (target / "model-00002-of-00002.safetensors.3fA9c1d2").write_bytes(b"partial")
    (target / "old" / "model-00003-of-00003.safetensors").parent.mkdir()
    (target / "old" / "model-00003-of-00003.safetensors").write_bytes(b"stale")
    result = run(s3, source, target)
    assert result.served, result.err
    assert "is missing or has another size" in result.err
    assert "removed 2 files" in result.err
    assert f"fetched 2 objects ({len(MODEL) - 2} already whole)" in result.err
    assert_exact_copy(target, MODEL)
    assert not (target / "old").exists()


def test_a_changed_object_replaces_the_cached_one_when_the_copy_is_redone(s3: S3, tmp_path: Path) -> None:
    """Kept files must match the recorded ETag as well as the size: same size, new content is fetched."""
    source = seed_model(s3, "changed")
    target = tmp_path / "cache" / "m"
    assert run(s3, source, target).served
    marker = json.loads((target / MARKER).read_text())
    marker["complete"] = False
    marker["objects"]["config.json"]["etag"] = "0" * 32  # as if recorded from an older upload
    (target / MARKER).write_text(json.dumps(marker))
    result = run(s3, source, target)
    assert result.served, result.err
    assert f"fetched 1 objects ({len(MODEL) - 1} already whole)" in result.err
    assert_exact_copy(target, MODEL)


def test_unreachable_s3_stops_the_container_with_a_clear_error(s3: S3, tmp_path: Path) -> None:
    unreachable = {**s3.env, "AWS_ENDPOINT_URL_S3": f"http://{LOOPBACK}:{free_port()}", "AWS_MAX_ATTEMPTS": "2"}
    result = run(s3, "s3://somewhere/org/model", tmp_path / "cache" / "m", env=unreachable)
    assert result.code == 1 and result.out == ""
    (line,) = [line for line in result.err.splitlines() if "error:" in line]
    assert "s3://somewhere/org/model/" in line and "S3 is unreachable from this node" in line


def test_a_missing_bucket_or_empty_prefix_is_an_error_not_an_empty_model(s3: S3, tmp_path: Path) -> None:
    missing = run(s3, "s3://no-such-bucket/org/model", tmp_path / "a")
    assert missing.code == 1 and missing.out == ""
    assert "NoSuchBucket" in missing.err
    s3.seed("emptyish", {"other/file": 1})
    empty = run(s3, "s3://emptyish/org/model", tmp_path / "b")
    assert empty.code == 1 and empty.out == ""
    assert "no objects under s3://emptyish/org/model/" in empty.err


def test_without_a_source_the_server_starts_at_once(s3: S3) -> None:
    env = {key: value for key, value in s3.env.items() if not key.startswith("INFERFLEET_")}
    process = subprocess.Popen(
        [str(VENV_PYTHON), str(ENTRYPOINT), "--", *SERVER], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert finish(process).served


def test_a_source_without_a_target_is_a_usage_error(s3: S3) -> None:
    env = {**s3.env, "INFERFLEET_MODEL_SOURCE": "s3://bucket/prefix"}
    process = subprocess.Popen(
        [str(VENV_PYTHON), str(ENTRYPOINT), *SERVER], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    result = finish(process)
    assert result.code == 2 and result.out == ""
    assert "INFERFLEET_MODEL_DIR" in result.err

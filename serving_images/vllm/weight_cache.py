"""The vLLM image's entrypoint: copy the model's weights from S3 to the node-local NVMe cache once per
node, check the copy is complete, then exec the server command given as arguments.

    INFERFLEET_MODEL_SOURCE=s3://bucket/prefix INFERFLEET_MODEL_DIR=/models/<model>/<revision> \\
        python3 weight_cache.py vllm serve /models/<model>/<revision> --port 8000 ...

Why here and not in an aws-cli init container: a second container image per pod (pulled, scanned and
pinned on its own) only to run `aws s3 sync`; and `sync` decides what to copy from sizes and times,
never proves the copy complete. This module does the same job inside the serving image:

- Once per node. Every pod of every replica on a node mounts the same hostPath directory. The first
  takes an exclusive `flock` on `<dir>.lock` next to the model directory; the others wait on it, then
  find the completion marker and start at once. A kernel lock, not a lock file: a pod killed while
  downloading (OOM, spot reclaim, rollout) releases it with its process, so nobody waits on a dead
  holder.
- Complete or redone. The marker (`.inferfleet-cache.json` in the model directory) lists every object
  with its size and ETag and says `complete` only after each local file has been checked against the
  S3 listing. A start that finds no complete marker (an earlier pod died mid-copy) lists the prefix
  again, keeps the files already fetched whole (same size, same ETag as recorded), fetches the rest
  and removes anything S3 does not hold (partial temporary files, shards of an older revision that
  vLLM would otherwise load). A marker whose files are missing or have another size is redone too.
- Clear failure. An unreachable endpoint, a missing bucket, denied access or an empty prefix ends the
  container with one line on stderr naming the source and the cause, and the server is never started
  on a partial model: the pod restarts (CrashLoopBackOff with that line in its log).

Sizes, not checksums, are what is verified: the buckets are KMS-encrypted, so an ETag is not the MD5
of the content, and hashing 140 GB again would double a cold start. Each file is written by boto3's
transfer manager to a temporary name and renamed when whole, so a file under its final name is never
a torn write. Credentials, region and endpoint are boto3's usual chain (IRSA web identity in the pod;
AWS_ENDPOINT_URL_S3 for an S3-compatible endpoint; AWS_MAX_ATTEMPTS for retries).

Only the standard library and boto3 (pinned in requirements.txt): it runs in the engine's Python.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn
from urllib.parse import urlparse

SOURCE_ENV = "INFERFLEET_MODEL_SOURCE"
"""s3://bucket/prefix of the weights; unset or empty for models vLLM downloads itself (hf://)."""
TARGET_ENV = "INFERFLEET_MODEL_DIR"
"""The model's directory in the node-local cache, the path the server is given as --model."""
MARKER = ".inferfleet-cache.json"
LOCK_SUFFIX = ".lock"
MARKER_VERSION = 1
PROGRAM = "inferfleet-weights"
FILE_MODE_UMASK = 0o002
"""Group-writable files: the vLLM and Triton images run as different users in group 0 and share the cache."""
TRANSFER_CONCURRENCY = 16
"""Parallel ranged GETs per file: a single GET stream tops out far below an instance's network bandwidth."""
CHUNK_BYTES = 64 * 1024 * 1024


class FetchError(Exception):
    """A failure the operator must act on: the message names the source and the cause."""


@dataclass(frozen=True)
class S3Object:
    key: str
    path: str
    """The object's path under the model directory (its key less the prefix)."""
    size: int
    etag: str


def log(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def parse_source(uri: str) -> tuple[str, str]:
    """(bucket, prefix without surrounding slashes) of an s3:// URI."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise FetchError(f"{SOURCE_ENV}={uri!r} is not an s3://bucket/prefix URI")
    return parsed.netloc, parsed.path.strip("/")


def relative_path(key: str, prefix: str) -> str:
    """The key's path under the prefix; refuses keys that would land outside the model directory."""
    rest = key[len(prefix) + 1 :] if prefix else key
    parts = PurePosixPath(rest).parts
    if not rest or rest.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise FetchError(f"object key {key!r} does not map to a file under the model directory")
    return str(PurePosixPath(*parts))


def s3_client() -> Any:
    """boto3's client with the standard retry mode (AWS_MAX_ATTEMPTS sets the attempts, default 3)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"mode": "standard"}, connect_timeout=10, read_timeout=60))


def describe(error: Exception) -> str:
    """A botocore error in one line: the S3 error code where there is one, or that S3 is unreachable."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    if isinstance(error, (EndpointConnectionError, ConnectTimeoutError)):
        return f"S3 is unreachable from this node ({error})"
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        details = response["Error"]
        return f"{details.get('Code', 'error')}: {details.get('Message', '')}".rstrip(": ")
    return f"{type(error).__name__}: {error}"


def list_objects(client: Any, bucket: str, prefix: str) -> list[S3Object]:
    """Every object under the prefix (a directory boundary: prefix a/b does not take a/bc/...)."""
    from botocore.exceptions import BotoCoreError, ClientError

    listing_prefix = f"{prefix}/" if prefix else ""
    objects: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listing_prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue  # a console-made "folder" marker, not a file
                objects.append(
                    S3Object(item["Key"], relative_path(item["Key"], prefix), int(item["Size"]), item["ETag"].strip('"'))
                )
    except (BotoCoreError, ClientError) as error:
        raise FetchError(f"cannot list s3://{bucket}/{listing_prefix}: {describe(error)}") from error
    if not objects:
        raise FetchError(f"no objects under s3://{bucket}/{listing_prefix}: nothing to serve")
    return objects


def write_json_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write, fsync and rename: a reader sees the old marker or the new one, never half of one."""
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with temporary.open("w") as out:
        json.dump(document, out, indent=1, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_marker(target: Path) -> dict[str, Any] | None:
    try:
        document = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("version") == MARKER_VERSION else None


def marker_document(source: str, objects: dict[str, dict[str, Any]], complete: bool) -> dict[str, Any]:
    return {"version": MARKER_VERSION, "source": source, "complete": complete, "objects": objects}


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def cached_copy_problem(target: Path, source: str) -> str | None:
    """Why the node's copy cannot be served as it is; None when it is complete and intact."""
    marker = read_marker(target)
    if marker is None:
        return "no completion marker"
    if marker.get("source") != source:
        return f"the cache holds {marker.get('source')!r}"
    if not marker.get("complete"):
        return "an earlier copy did not finish"
    for path, entry in marker.get("objects", {}).items():
        if file_size(target / path) != entry.get("size"):
            return f"{path} is missing or has another size than recorded"
    return None


def remove_extras(target: Path, keep: set[str]) -> int:
    """Delete files S3 does not hold and the empty directories left. The marker stays; a temporary
    marker left by a killed pod goes (the caller holds the node lock, so no other pod is writing one)."""
    removed = 0
    for directory, _, files in os.walk(target, topdown=False):
        for name in files:
            path = Path(directory, name)
            relative = path.relative_to(target).as_posix()
            if relative in keep or relative == MARKER:
                continue
            path.unlink()
            removed += 1
        if Path(directory) != target and not os.listdir(directory):
            os.rmdir(directory)
    return removed


def download(client: Any, bucket: str, obj: S3Object, destination: Path) -> None:
    """One object through boto3's transfer manager (parallel ranged GETs, temp file renamed when whole)."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    destination.parent.mkdir(parents=True, exist_ok=True)
    config = TransferConfig(
        max_concurrency=TRANSFER_CONCURRENCY, multipart_chunksize=CHUNK_BYTES, multipart_threshold=CHUNK_BYTES
    )
    try:
        client.download_file(bucket, obj.key, str(destination), Config=config)
    except (BotoCoreError, ClientError) as error:
        raise FetchError(f"cannot download s3://{bucket}/{obj.key}: {describe(error)}") from error


def fetch(client: Any, source: str, target: Path) -> tuple[int, int]:
    """Bring the target to exactly the objects under source; (objects fetched, objects kept)."""
    bucket, prefix = parse_source(source)
    objects = list_objects(client, bucket, prefix)
    target.mkdir(parents=True, exist_ok=True)
    previous = read_marker(target)
    recorded: dict[str, Any] = previous.get("objects", {}) if previous and previous.get("source") == source else {}
    removed = remove_extras(target, {obj.path for obj in objects})
    if removed:
        log(f"removed {removed} files from {target} that {source} does not hold")
    def entry(obj: S3Object) -> dict[str, Any]:
        return {"size": obj.size, "etag": obj.etag}

    # Whole from an earlier copy: recorded with this object's size and ETag, and that size on disk.
    done = {
        obj.path: entry(obj)
        for obj in objects
        if recorded.get(obj.path) == entry(obj) and file_size(target / obj.path) == obj.size
    }
    kept = len(done)
    write_json_atomically(target / MARKER, marker_document(source, done, complete=False))
    for obj in objects:
        if obj.path in done:
            continue
        download(client, bucket, obj, target / obj.path)
        done[obj.path] = entry(obj)
        write_json_atomically(target / MARKER, marker_document(source, done, complete=False))
    for obj in objects:
        actual = file_size(target / obj.path)
        if actual != obj.size:
            raise FetchError(f"{target / obj.path}: {actual} bytes on disk, {obj.size} in s3://{bucket}/{obj.key}")
    write_json_atomically(target / MARKER, marker_document(source, done, complete=True))
    return len(objects) - kept, kept


@contextlib.contextmanager
def node_lock(target: Path) -> Iterator[None]:
    """An exclusive flock beside the model directory, shared by every pod that mounts the node's cache."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(f"{target}{LOCK_SUFFIX}", os.O_RDWR | os.O_CREAT, 0o664)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another pod on this node is filling {target}; waiting for it")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the last descriptor releases the lock


def ensure_weights(source: str, target: Path) -> str:
    """Make the node's copy of `source` at `target` complete; a line saying what was done."""
    parse_source(source)
    with node_lock(target):
        problem = cached_copy_problem(target, source)
        if problem is None:
            return f"{target} already holds {source} on this node"
        log(f"filling {target} from {source} ({problem})")
        started = time.monotonic()
        fetched, kept = fetch(s3_client(), source, target)
        seconds = time.monotonic() - started
        return f"fetched {fetched} objects ({kept} already whole) from {source} to {target} in {seconds:.1f} s"


def fail(message: str, code: int = 1) -> NoReturn:
    log(f"error: {message}")
    sys.exit(code)


def main(argv: list[str]) -> NoReturn:
    """Fill the cache when a source is set, then replace this process with the server command."""
    command = argv[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        fail(f"usage: {SOURCE_ENV}=s3://bucket/prefix {TARGET_ENV}=DIR {argv[0]} SERVER_COMMAND...", code=2)
    source = os.environ.get(SOURCE_ENV, "")
    if source:
        target = os.environ.get(TARGET_ENV, "")
        if not target:
            fail(f"{SOURCE_ENV} is set but {TARGET_ENV} (the model's directory in the node cache) is not", code=2)
        os.umask(FILE_MODE_UMASK)
        try:
            log(ensure_weights(source, Path(target)))
        except FetchError as error:
            fail(str(error))
        except OSError as error:
            fail(f"cannot write the node cache at {target}: {error}")
    try:
        os.execvp(command[0], command)
    except OSError as error:
        fail(f"cannot start {command[0]!r}: {error}", code=127)


if __name__ == "__main__":
    main(sys.argv)

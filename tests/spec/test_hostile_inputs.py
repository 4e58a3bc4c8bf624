"""Hostile input that cannot be a file in the corpus (devices, pipes, sizes, encodings), what the corpus's
secret-* files must never print, and bounded memory for the bombs. `inferfleet validate` always answers
with `FILE:LINE: path: message` lines and exit 1, never a traceback or an internal error."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from components.cli import main
from components.spec import StackError, read_spec
from components.spec.secrets import DETECTORS
from components.spec.yaml_source import MAX_BYTES, MAX_VALUES

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = Path(__file__).parent / "hostile"
STACKS = sorted((ROOT / "stacks").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<path>\S+): (?P<message>.+)$")


def validate(*paths: Path | str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", *map(str, paths)])
    return code, out.getvalue().splitlines(), err.getvalue()


def refused(path: Path | str) -> list[str]:
    """The problem lines of a refused file, checked for their shape."""
    code, lines, err = validate(path)
    assert code == 1 and "Traceback" not in err and "internal error" not in err, (lines, err)
    assert lines and all(PROBLEM_LINE.match(line) for line in lines), lines
    return lines


@pytest.mark.parametrize("stack", STACKS, ids=[stack.stem for stack in STACKS])
def test_the_example_stacks_still_validate(stack):
    code, lines, err = validate(stack)
    assert (code, lines) == (0, []), (lines, err)


def validate_in_a_process(path: Path | str) -> list[str]:
    """`inferfleet validate` in its own process, so that reading forever or blocking fails the test, not the run."""
    result = subprocess.run(
        [sys.executable, "-m", "components.cli", "validate", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr and "internal error" not in result.stderr, result
    return result.stdout.splitlines()


def test_a_character_device_is_refused_unread():
    assert validate_in_a_process("/dev/zero") == [
        "/dev/zero:1: <root>: is a character device, not a stack file: give a regular file"
    ]


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "dev.yaml"
    os.mkfifo(fifo)
    assert validate_in_a_process(fifo) == [f"{fifo}:1: <root>: is a named pipe, not a stack file: give a regular file"]


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path):
    path = tmp_path / "dev.yaml"
    with path.open("wb") as handle:
        handle.truncate(4 * 1000 * 1000)  # a 4 MB spec: sparse, nothing is parsed
    assert refused(path) == [
        f"{path}:1: <root>: is 4,000,000 bytes, more than the 1 MiB (1,048,576 bytes) a stack file may be "
        "(a stack is a few KB); refused unread"
    ]


def test_a_file_at_the_size_cap_is_read(tmp_path):
    stack = (ROOT / "stacks" / "dev.yaml").read_text(encoding="utf-8")
    padding = "# padding\n" * ((MAX_BYTES - len(stack.encode())) // 10)
    path = tmp_path / "dev.yaml"
    path.write_text(stack + padding + "#" * (MAX_BYTES - len((stack + padding).encode()) - 1) + "\n", encoding="utf-8")
    assert path.stat().st_size == MAX_BYTES
    assert read_spec(path).spec.environment == "dev"


def test_bytes_that_are_not_utf8_are_refused_at_their_line(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_bytes(b"environment: dev\ntags:\n  owner: \xff\xfe\n")
    assert refused(path) == [f"{path}:3: <root>: not UTF-8 text: invalid start byte"]


def test_a_file_of_zero_bytes_is_refused_at_its_line(tmp_path):
    path = tmp_path / "dev.yaml"
    path.write_bytes(b"\0" * 1000)
    assert refused(path) == [f"{path}:1: <root>: YAML syntax error: special characters are not allowed: U+0000"]


@pytest.mark.parametrize("path", sorted(HOSTILE.glob("secret-*.yaml")), ids=lambda path: path.stem)
def test_no_credential_of_a_secret_file_is_printed(path):
    text = path.read_text(encoding="utf-8")
    credentials = [m.group(0) for detector in DETECTORS for m in detector.pattern.finditer(text)]
    lines = refused(path)
    printed = "\n".join(lines)
    for credential in credentials:
        assert credential not in printed
    assert all("pulumi config set" in line or "no credentials" in line for line in lines), lines


def _peak_bytes(path: Path) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(StackError):
            read_spec(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name", ["yaml-merge-bomb", "yaml-merge-values-bomb", "yaml-alias-bomb"])
def test_bombs_are_refused_in_bounded_memory(name):
    """The merge bomb held 830 MB at 7 levels before; what the limits allow is 100,000 values (tens of MB)."""
    assert _peak_bytes(HOSTILE / f"{name}.yaml") < 64 * 1024 * 1024


def test_the_values_limit_is_the_one_the_readme_states():
    assert MAX_VALUES == 100_000

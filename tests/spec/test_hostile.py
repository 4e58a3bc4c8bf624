"""The hostile corpus (tests/spec/hostile/): one small stack per class of input `validate` must refuse.

Each file names what it tests in its first line and the problems it must produce in `# expect: PATH @ TEXT`
lines: `inferfleet validate FILE` exits 1, prints only `FILE:LINE: path: message` lines (never a traceback or
an internal error), and for each expectation a problem at PATH whose LINE holds TEXT (the offending key or
value). Its environment is its file's stem, so nothing but the hostile value is wrong.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from components.cli import main

HOSTILE = sorted((Path(__file__).parent / "hostile").glob("*.yaml"))
PROBLEM_LINE = re.compile(r"^(?P<file>.+):(?P<line>\d+): (?P<path>\S+): (?P<message>.+)$")
EXPECT = re.compile(r"^# expect: (?P<path>\S+) @ (?P<text>.+)$")


def _validate(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


def test_the_corpus_covers_every_class():
    stems = {path.stem for path in HOSTILE}
    for needed in ("pool-max-size-past-int32", "replicas-max-huge", "canary-replicas-huge", "root-volume-past-ebs",
                   "prometheus-volume-and-retention", "peak-rps-infinite", "slo-latencies-infinite",
                   "pipeline-num-cpus-infinite", "region-unknown", "zone-unknown", "tag-value-too-long",
                   "tag-key-too-long", "tags-too-many", "tag-characters-forbidden", "bucket-adjacent-periods",
                   "bucket-ip-address", "state-backend-bucket-invalid"):
        assert needed in stems


@pytest.mark.parametrize("path", HOSTILE, ids=[path.stem for path in HOSTILE])
def test_hostile_stack_is_refused_with_located_problems(path: Path):
    text = path.read_text(encoding="utf-8")
    expectations = [m.groupdict() for line in text.splitlines() if (m := EXPECT.match(line))]
    assert text.startswith("# Hostile input: ") and expectations, "each file says what it tests and what to expect"
    code, out, err = _validate(path)
    assert "Traceback" not in err and "internal error" not in err, err
    assert code == 1, (out, err)
    problems = []
    for line in out.splitlines():
        match = PROBLEM_LINE.match(line)
        assert match and match["file"] == str(path), line
        problems.append(match.groupdict())
    source_lines = text.splitlines()
    for expected in expectations:
        found = [p for p in problems if p["path"] == expected["path"]]
        assert found, f"no problem at {expected['path']}: {out}"
        assert any(expected["text"] in source_lines[int(p["line"]) - 1] for p in found), (expected, found)

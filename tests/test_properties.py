"""The whole pipeline under generated specs: whatever `validate` accepts, `plan` plans and `render` renders, with
no internal error and no traceback; what it refuses, it refuses with located lines.

tests/spec/test_mutations.py breaks stacks at random to fuzz `validate` alone; most of its cases are refused.
These cases stay close to valid on purpose (names, numbers, tags and engine arguments drawn from the ranges
the spec allows, with some values past them), so that many pass `validate` and go on through the planner
and the whole Pulumi program. A render takes a few seconds, hence the smaller number of examples.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import string
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from components.cli import main
from components.spec import limits

ROOT = Path(__file__).resolve().parent
BASE = yaml.safe_load((ROOT.parent / "stacks" / "dev.yaml").read_text(encoding="utf-8"))
PROBLEM_LINE = re.compile(r"^.+:\d+: \S+: .+$")
EXAMPLES = int(os.environ.get("INFERFLEET_PIPELINE_EXAMPLES", "12"))

label_chars = string.ascii_lowercase + string.digits + "-"
names = st.builds(
    lambda first, middle, last: (first + middle + last)[:40],
    st.sampled_from(string.ascii_lowercase),
    st.text(label_chars, max_size=40),
    st.sampled_from(string.ascii_lowercase + string.digits),
)


def sized(small: int, bound: int) -> st.SearchStrategy[int]:
    """Mostly ordinary values, sometimes anything up to the spec's bound."""
    ordinary = st.integers(1, small)
    return st.one_of(ordinary, ordinary, ordinary, st.integers(1, bound))


def rated(low: float, high: float, bound: float) -> st.SearchStrategy[float]:
    ordinary = st.floats(low, high)
    return st.one_of(ordinary, ordinary, ordinary, st.floats(low, bound))


ENGINE_ARGS = {
    "max-num-seqs": st.integers(1, 4096),
    "swap-space": st.integers(0, 64),
    "seed": st.integers(0, 2**31),
    "enable-chunked-prefill": st.booleans(),
    "disable-log-stats": st.booleans(),
}
PAST_THE_BOUNDS = {
    ("gpuPools", 0, "maxSize"): limits.MAX_POOL_NODES + 1,
    ("services", 0, "replicas", "max"): limits.MAX_REPLICAS + 1,
    ("services", 0, "workload", "peakRequestsPerSecond"): limits.MAX_REQUESTS_PER_SECOND * 2,
    ("services", 0, "slo", "ttftP99Ms"): limits.MAX_LATENCY_MS * 2,
    ("services", 0, "engineArgs", "max-num-seqs"): False,
}
"""One of these, in about one case in six, is set past what the spec allows."""


tag_text = st.text(string.ascii_letters + string.digits + " _.:/=+-@", min_size=1, max_size=40)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@st.composite
def stacks(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["environment"] = draw(st.one_of(st.just("dev"), names))
    pool = data["gpuPools"][0]
    old_pool, pool["name"] = pool["name"], draw(names)
    pool["maxSize"] = draw(sized(16, limits.MAX_POOL_NODES - 2))
    pool["minSize"] = draw(st.integers(min_value=0, max_value=3))
    service = data["services"][0]
    service["name"] = draw(names)
    service["pools"] = [pool["name"] if p == old_pool else p for p in service["pools"]]
    service["replicas"] = {"min": draw(st.integers(min_value=0, max_value=4)),
                           "max": draw(sized(16, limits.MAX_REPLICAS))}
    service["workload"]["peakRequestsPerSecond"] = draw(
        rated(limits.MIN_REQUESTS_PER_SECOND, 50.0, limits.MAX_REQUESTS_PER_SECOND))
    service["slo"]["ttftP99Ms"] = draw(rated(1.0, 5_000.0, limits.MAX_LATENCY_MS))
    chosen = draw(st.lists(st.sampled_from(sorted(ENGINE_ARGS)), max_size=3, unique=True))
    service["engineArgs"] = {key: draw(ENGINE_ARGS[key]) for key in chosen}
    data["tags"] = draw(st.dictionaries(tag_text, tag_text, max_size=6))
    past = draw(st.sampled_from([None] * 5 + sorted(PAST_THE_BOUNDS, key=str)))
    if past is not None:
        *parents, field = past
        target = data
        for key in parents:
            target = target[key]
        target[field] = PAST_THE_BOUNDS[past]
    return data


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=stacks())
def test_what_validate_accepts_plans_and_renders_and_the_rest_is_refused_with_located_lines(
        tmp_path_factory, data: dict[str, Any]) -> None:
    work = tmp_path_factory.mktemp("pipeline")
    path = work / f"{data['environment']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    code, out, err = run(["validate", str(path)])
    assert "Traceback" not in err and "internal error" not in err, err
    event(f"validate exit {code}")
    if code != 0:
        assert code == 1 and out.splitlines() and all(PROBLEM_LINE.match(line) for line in out.splitlines()), out
        return
    code, out, err = run(["plan", str(path), "--json"])
    assert code == 0 and "Traceback" not in err, err
    code, out, err = run(["render", str(path), "--out", str(work / "out")])
    assert "Traceback" not in err and "internal error" not in err, err
    assert code in (0, 1), (code, out, err)
    event(f"render exit {code}")
    assert not [line for line in out.splitlines() if line.startswith("check failed: aws-limits")], out

"""Fuzzing `inferfleet validate` with broken versions of the example stacks.

Whatever the file holds, the command answers with exit 0 (valid) or exit 1 and one
`FILE:LINE: path: message` line per problem, never a traceback or an internal error.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.cli import main

ROOT = Path(__file__).resolve().parents[2]
STACK_FILES = sorted((ROOT / "stacks").glob("*.yaml"))
STACK_DATA = {path.name: yaml.safe_load(path.read_text(encoding="utf-8")) for path in STACK_FILES}
STACK_TEXT = {path.name: path.read_text(encoding="utf-8") for path in STACK_FILES}
PROBLEM_LINE = re.compile(r"^.+:\d+: \S+: .+$")

EXAMPLES = int(os.environ.get("INFERFLEET_FUZZ_EXAMPLES", "200"))  # raise it for a longer hunt
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["", "auto", "spot", "onDemand", "10.0.0.0/8", "us-east-1a", "p5.48xlarge", "s3://b/x", "1.34", "yes"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=3),
    ),
    max_leaves=6,
)
KNOWN_KEYS = ["name", "size", "minSize", "maxSize", "maxModelLen", "warmPool", "pools", "slo", "replicas", "tags"]


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


@st.composite
def mutated_stacks(draw) -> tuple[str, Any]:
    name = draw(st.sampled_from(sorted(STACK_DATA)))
    data = copy.deepcopy(STACK_DATA[name])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        data = _mutate_once(draw, data)
    return name, data


def _mutate_once(draw, data: Any) -> Any:
    path = draw(st.sampled_from(_paths(data)))
    target = _get(data, path)
    kind = draw(
        st.sampled_from(["delete", "replace", "unknown-key", "duplicate-item", "remove-item", "number", "string"])
    )
    if not path:
        return draw(values) if kind == "replace" else data
    parent, key = _get(data, path[:-1]), path[-1]
    if kind == "delete":
        del parent[key]
    elif kind == "replace":
        parent[key] = draw(values)
    elif kind == "unknown-key" and isinstance(target, dict):
        target[draw(st.one_of(st.text(min_size=1, max_size=15), st.sampled_from(KNOWN_KEYS)))] = draw(values)
    elif kind == "duplicate-item" and isinstance(target, list) and target:
        target.append(copy.deepcopy(draw(st.sampled_from(target))))
    elif kind == "remove-item" and isinstance(target, list) and target:
        target.pop(draw(st.integers(min_value=0, max_value=len(target) - 1)))
    elif kind == "number" and isinstance(target, (int, float)) and not isinstance(target, bool):
        parent[key] = draw(
            st.sampled_from([0, -1, -target, target * 1000, 10**40, 0.5, 1e308, math.inf, -math.inf, math.nan])
        )
    elif kind == "string" and isinstance(target, str):
        parent[key] = draw(
            st.one_of(
                st.just(target.upper()),
                st.just(target + "x"),
                st.just(target[:-1]),
                st.just(""),
                st.text(max_size=30),
            )
        )
    else:
        parent[key] = draw(values)
    return data


@st.composite
def mutated_texts(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(STACK_TEXT)))
    lines = STACK_TEXT[name].splitlines(keepends=True)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "garbage", "indent", "dedent", "duplicate", "swap", "truncate"]))
        if kind == "delete" and len(lines) > 1:
            del lines[index]
        elif kind == "garbage":
            line = lines[index]
            at = draw(st.integers(min_value=0, max_value=len(line)))
            junk = draw(
                st.one_of(
                    st.text(min_size=1, max_size=5),
                    st.sampled_from([":", "- ", "[", "]", "{", "}", "&a ", "*a", "!!", "!tag ", "\t", "'", '"', "<<: ", "? ", "|", "#", "%", "@", "\x00", "\ufeff"]),
                )
            )
            lines[index] = line[:at] + junk + line[at:]
        elif kind == "indent":
            lines[index] = " " * draw(st.integers(min_value=1, max_value=3)) + lines[index]
        elif kind == "dedent":
            lines[index] = lines[index].lstrip(" ")
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "swap":
            other = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == "truncate":
            lines = lines[: index + 1]
    return name, "".join(lines)


def _validate(path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(path)])
    return code, out.getvalue(), err.getvalue()


def _assert_answered_like_a_compiler(path: Path) -> None:
    code, out, err = _validate(path)
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    assert code in (0, 1), (code, out, err)
    if code == 0:
        assert out == ""
        assert err == f"{path}: ok\n"
    else:
        lines = out.splitlines()
        assert lines, "exit 1 with no problem printed"
        for line in lines:
            assert PROBLEM_LINE.match(line), line
            assert line.startswith(f"{path}:"), line


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mutations")


@SETTINGS
@given(case=mutated_stacks())
def test_mutated_stack_data_is_answered_with_located_problems(fuzz_dir, case):
    name, data = case
    path = fuzz_dir / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    _assert_answered_like_a_compiler(path)


@SETTINGS
@given(case=mutated_texts())
def test_mutated_stack_text_is_answered_with_located_problems(fuzz_dir, case):
    name, text = case
    path = fuzz_dir / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _assert_answered_like_a_compiler(path)


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_are_answered_with_located_problems(tmp_path_factory, raw):
    path = tmp_path_factory.getbasetemp() / "dev.yaml"
    path.write_bytes(raw)
    _assert_answered_like_a_compiler(path)


@pytest.mark.parametrize("name", sorted(STACK_DATA))
def test_unmutated_round_trip_is_valid(fuzz_dir, name):
    path = fuzz_dir / name
    path.write_text(yaml.safe_dump(STACK_DATA[name], sort_keys=False), encoding="utf-8")
    assert _validate(path) == (0, "", f"{path}: ok\n")

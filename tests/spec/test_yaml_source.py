"""parse_yaml: plain data plus the 1-based line of every key and list item."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from components.spec.problems import Problem
from components.spec import yaml_source
from components.spec.yaml_source import YamlSyntaxError, parse_yaml

TEXT = """\
# a comment on line 1
environment: dev
aws:
  region: us-east-1
  availabilityZones:
    - us-east-1a
    - us-east-1b
gpuPools:
  - name: spot
    instanceTypes: [g6.xlarge, g6.2xlarge]
  -
    name: ondemand
    warmPool:
      size: 1
"""


def test_keys_and_items_carry_their_line():
    document = parse_yaml(TEXT)
    assert document.lines[("environment",)] == 2
    assert document.lines[("aws",)] == 3
    assert document.lines[("aws", "region")] == 4
    assert document.lines[("aws", "availabilityZones")] == 5
    assert document.lines[("aws", "availabilityZones", 0)] == 6
    assert document.lines[("aws", "availabilityZones", 1)] == 7
    assert document.lines[("gpuPools", 0)] == 9
    assert document.lines[("gpuPools", 0, "name")] == 9


def test_flow_sequence_items_are_on_the_line_they_are_written():
    document = parse_yaml(TEXT)
    assert document.lines[("gpuPools", 0, "instanceTypes")] == 10
    assert document.lines[("gpuPools", 0, "instanceTypes", 0)] == 10
    assert document.lines[("gpuPools", 0, "instanceTypes", 1)] == 10


def test_list_item_whose_content_starts_on_the_next_line_gets_the_content_line():
    document = parse_yaml(TEXT)
    assert document.lines[("gpuPools", 1)] == 12
    assert document.lines[("gpuPools", 1, "warmPool", "size")] == 14


def test_data_is_plain_python():
    document = parse_yaml(TEXT)
    assert document.data == {
        "environment": "dev",
        "aws": {"region": "us-east-1", "availabilityZones": ["us-east-1a", "us-east-1b"]},
        "gpuPools": [
            {"name": "spot", "instanceTypes": ["g6.xlarge", "g6.2xlarge"]},
            {"name": "ondemand", "warmPool": {"size": 1}},
        ],
    }


def test_line_of_falls_back_to_the_deepest_existing_parent():
    document = parse_yaml(TEXT)
    assert document.line_of(("gpuPools", 1, "warmPool", "state")) == 13
    assert document.line_of(("gpuPools", 1, "maxSize")) == 12
    assert document.line_of(("nothing", "here")) == 1
    assert document.line_of(()) == 1


def test_empty_text_is_none_data():
    assert parse_yaml("").data is None
    assert parse_yaml("# only a comment\n").data is None


def test_duplicate_key_reported_at_the_second_occurrence():
    document = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert document.duplicate_keys == [
        Problem(("b", "c"), "duplicate key 'c'"),
        Problem(("a",), "duplicate key 'a'"),
    ]
    assert document.duplicate_key_lines == [4, 5]
    assert document.data == {"a": 3, "b": {"c": 2}}


def test_key_written_three_times_reports_each_repeat_at_its_own_line():
    document = parse_yaml("a: 1\na: 2\na: 3\n")
    assert document.duplicate_key_lines == [2, 3]
    assert len(document.duplicate_keys) == 2


def test_same_key_in_sibling_mappings_is_not_a_duplicate():
    document = parse_yaml("pools:\n  - name: a\n  - name: b\n")
    assert document.duplicate_keys == []


@pytest.mark.parametrize(
    ("text", "line", "phrase"),
    [
        ("a: 1\nb: [1, 2\nc: 3\n", 3, "expected ',' or ']'"),
        ("a: 1\nb: c: d\n", 2, "mapping values are not allowed here"),
        ("a: 1\n\tb: 2\n", 2, "found character '\\t' that cannot start any token"),
        ("a:\n  - x\n  y: 1\n", 3, "expected <block end>"),
        ("a: 'unterminated\n", 2, "found unexpected end of stream"),
        ("a: 1\n---\nb: 2\n", 2, "expected a single document in the stream"),
        ("a: !custom x\n", 1, "could not determine a constructor for the tag '!custom'"),
    ],
)
def test_syntax_error_carries_the_line_of_the_problem(text, line, phrase):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == line
    assert raised.value.message.startswith("YAML syntax error: ")
    assert phrase in raised.value.message


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['true']\n",
        "a: !!python/object/apply:os.system\n  args: ['true']\n",
        "a: !!python/name:os.system ''\n",
    ],
)
def test_python_tags_are_refused_not_executed(text):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == 1
    assert "could not determine a constructor for the tag 'tag:yaml.org,2002:python/" in raised.value.message


@pytest.mark.parametrize("text", ["x: 1\na: !Ref [b]\n", "x: 1\na: !custom {b: 1}\n"])
def test_unknown_tag_on_a_collection_is_refused_not_dropped(text):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == 2
    assert "could not determine a constructor for the tag" in raised.value.message


def test_standard_collection_tags_are_accepted():
    assert parse_yaml("a: !!map {x: 1}\nb: !!seq [1]\n").data == {"a": {"x": 1}, "b": [1]}


@pytest.mark.parametrize(
    ("text", "label", "message"),
    [
        ("a: 1\n? [1, 2]\n: x\n", "[...]", "keys must be strings, not a list"),
        ("a: 1\n? {a: 1}\n: x\n", "{...}", "keys must be strings, not a mapping"),
        ("a: 1\n? !!set {a}\n: x\n", "{...}", "keys must be strings, not a set"),
        ("a: 1\n1: x\n", "1", "keys must be strings: YAML reads 1 as an integer; quote it if it is meant as text"),
        ("a: 1\n~: x\n", "~", "keys must be strings: YAML reads ~ as null; quote it if it is meant as text"),
        ("a: 1\nnull: x\n", "null", "keys must be strings: YAML reads null as null; quote it if it is meant as text"),
        ("a: 1\non: x\n", "on", "keys must be strings: YAML reads on as a boolean; quote it if it is meant as text"),
        ("a: 1\n1.5: x\n", "1.5", "keys must be strings: YAML reads 1.5 as a number; quote it if it is meant as text"),
        ("a: 1\n2024-01-01: x\n", "2024-01-01", "keys must be strings: YAML reads 2024-01-01 as a date; quote it if it is meant as text"),
    ],
)
def test_non_string_key_is_reported_at_its_line_and_left_out(text, label, message):
    document = parse_yaml(text)
    assert document.key_problems == [Problem((label,), message)]
    assert document.key_problem_lines == [2]
    assert document.data == {"a": 1}


def test_non_string_key_path_names_where_it_is():
    document = parse_yaml("services:\n  - name: chat\n    engineArgs:\n      1: one\n      ok: true\n")
    assert document.key_problems == [
        Problem(("services", 0, "engineArgs", "1"), "keys must be strings: YAML reads 1 as an integer; quote it if it is meant as text")
    ]
    assert document.key_problem_lines == [4]
    assert document.data == {"services": [{"name": "chat", "engineArgs": {"ok": True}}]}


def test_quoted_keys_are_strings():
    assert parse_yaml("'1': a\n\"~\": b\n'on': c\n").data == {"1": "a", "~": "b", "on": "c"}


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x\n  b: *x\n", "a: &x\n  - b: *x\n"])
def test_recursive_alias_is_an_error_not_a_crash(text):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == 1
    assert "an alias refers to itself" in raised.value.message


def test_very_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in raised.value.message


def test_plain_alias_copies_the_anchored_value():
    document = parse_yaml("a: &zones [us-east-1a, us-east-1b]\nb: *zones\n")
    assert document.data == {"a": ["us-east-1a", "us-east-1b"], "b": ["us-east-1a", "us-east-1b"]}
    assert document.lines[("b",)] == 2
    assert document.lines[("b", 1)] == 1  # the items are written at the anchor


def test_merge_key_merges_and_written_keys_override():
    document = parse_yaml(
        "base: &pool\n"
        "  capacityType: spot\n"
        "  maxSize: 4\n"
        "gpuPools:\n"
        "  - <<: *pool\n"
        "    name: a\n"
        "    maxSize: 8\n"
    )
    assert document.data["gpuPools"] == [{"capacityType": "spot", "maxSize": 8, "name": "a"}]
    assert document.duplicate_keys == []
    assert document.lines[("gpuPools", 0, "maxSize")] == 7
    assert document.lines[("gpuPools", 0, "capacityType")] == 2
    assert document.lines[("gpuPools", 0, "name")] == 6


def test_merge_of_several_mappings_first_one_wins_without_duplicate_reports():
    document = parse_yaml("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n")
    assert document.data["c"] == {"x": 1, "y": 1, "z": 2}
    assert document.duplicate_keys == []


def test_key_written_twice_next_to_a_merge_is_still_a_duplicate():
    document = parse_yaml("a: &a {x: 1}\nc:\n  <<: *a\n  y: 1\n  y: 2\n")
    assert document.duplicate_keys == [Problem(("c", "y"), "duplicate key 'y'")]
    assert document.duplicate_key_lines == [5]


def test_scalars_use_yaml_1_1_types():
    document = parse_yaml("a: 1\nb: 1.5\nc: true\nd: null\ne: '1.34'\nf: 1.34\n")
    assert document.data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "1.34", "f": 1.34}


@pytest.mark.parametrize(("text", "line", "code"), [("a: 1\nb: \x08x\n", 2, "U+0008"), ("a: 1\n\n\x00\n", 3, "U+0000")])
def test_non_printable_character_is_a_syntax_error_on_its_line(text, line, code):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == line
    assert raised.value.message == f"YAML syntax error: special characters are not allowed: {code}"


def test_byte_order_mark_is_ignored():
    assert parse_yaml("\ufeffa: 1\n").data == {"a": 1}


# Hostile structure: every limit refused at a line, in bounded time and memory


def nested_merges(depth: int, width: int = 10) -> str:
    """The shape of the issue's merge bomb: each level merges the one inside it `width` times (4.8 KB
    of it ran 33 s into MemoryError when PyYAML flattened every merge into a list of 10^depth entries)."""
    node = "&l0 {" + ", ".join(f"k{i}: {i}" for i in range(width)) + "}"
    for level in range(1, depth + 1):
        node = f"&l{level} {{<<: [{node}, " + ", ".join([f"*l{level - 1}"] * (width - 1)) + "]}"
    return "top: " + node + "\n"


def test_nested_merges_are_resolved_once_per_mapping_not_copied():
    document = parse_yaml(nested_merges(6))  # flattened the old way: 10^6 entries before a value was counted
    assert document.data == {"top": {f"k{i}": i for i in range(10)}}
    assert document.values < 1000


def test_nested_merges_stay_small_in_memory():
    import tracemalloc

    tracemalloc.start()
    try:
        parse_yaml(nested_merges(7))  # the depth: 830 MB and more before
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_merged_values_count_towards_the_limit():
    text = "m0: &m0 {" + ", ".join(f"k{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(10)) + "}\n"
    for level in range(1, 7):
        text += f"m{level}: &m{level}\n  <<: *m{level - 1}\n  more: [" + ", ".join([f"*m{level - 1}"] * 10) + "]\n"
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.message.startswith("YAML error: the document expands to more than 100,000 values")
    assert raised.value.line == 1  # the values being copied are written on line 1


def test_merging_one_large_mapping_many_times_counts_every_merged_key():
    text = "big: &big {" + ", ".join(f"k{i}: 0" for i in range(5000)) + "}\nmany:\n"
    text += "".join(f"  - <<: *big\n    n: {i}\n" for i in range(100))
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert "expands to more than 100,000 values" in raised.value.message


def test_alias_bomb_is_refused_at_the_line_where_it_passes_the_limit():
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in range(1, 9):
        text += f"{chr(97 + level)}: &{chr(97 + level)} [" + ", ".join([f"*{chr(96 + level)}"] * 10) + "]\n"
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.message.startswith("YAML error: the document expands to more than 100,000 values")
    assert raised.value.line == 1  # the anchored items being copied are written on line 1


def test_more_values_than_the_limit_are_refused_while_composing(monkeypatch):
    monkeypatch.setattr(yaml_source, "MAX_VALUES", 1000)
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml("a:\n" + "  - 0\n" * 1001)
    assert raised.value.message.startswith("YAML error: the document expands to more than 1,000 values")
    assert raised.value.line == 1000  # value 1,001: the mapping, the list, then items from line 2


def test_more_keys_than_the_limit_are_refused_while_composing(monkeypatch):
    monkeypatch.setattr(yaml_source, "MAX_VALUES", 1000)
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml("".join(f"k{i}: *a\n" if i else "k0: &a 0\n" for i in range(1001)))
    assert raised.value.message == "YAML error: the document has more than 1,000 keys; a stack needs far fewer"
    assert raised.value.line == 1001


def test_a_document_at_the_limit_is_read():
    document = parse_yaml("a:\n" + "  - 0\n" * 99_998)  # the mapping, the list and its items
    assert document.values == 100_000


def test_nesting_past_the_limit_is_refused_at_its_line():
    text = "".join("  " * level + f"l{level}:\n" for level in range(40)) + "  " * 40 + "x\n"
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.message == "YAML error: nested too deeply (more than 32 levels)"
    assert raised.value.line == 32


def test_nesting_past_the_limit_through_aliases_is_refused():
    deep = "[" * 20 + "x" + "]" * 20
    text = f"a: &a {deep}\nb: {'[' * 20}*a{']' * 20}\n"
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.message == "YAML error: nested too deeply (more than 32 levels, aliases expanded)"


def test_a_mapping_merged_into_itself_is_refused():
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml("a: 1\nb: &b\n  c: 1\n  <<: *b\n")
    assert raised.value.message == "YAML error: a merge key `<<` merges a mapping into itself"
    assert raised.value.line == 2


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("a: 1\nb:\n  <<: 1\n", "expected a mapping or list of mappings for merging, but found scalar"),
        ("a: &a {x: 1}\nb:\n  <<: [*a, 1]\n", "expected a mapping for merging, but found scalar"),
    ],
)
def test_merging_what_is_not_a_mapping_is_a_syntax_error_at_its_line(text, phrase):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == 3
    assert phrase in raised.value.message


def test_of_two_merge_keys_the_later_wins_as_in_pyyaml():
    text = "a: &a {x: 1, y: 1}\nb: &b {x: 2}\nc:\n  <<: *a\n  <<: *b\n"
    assert parse_yaml(text).data["c"] == yaml.safe_load(text)["c"] == {"x": 2, "y": 1}


def test_merges_resolve_as_pyyaml_resolves_them():
    text = (
        "base: &base {image: a, replicas: {min: 1, max: 2}}\n"
        "extra: &extra {image: b, pools: [x]}\n"
        "deep: &deep {<<: *base, tier: deep}\n"
        "svc:\n  <<: [*deep, *extra]\n  name: s\n  image: c\n"
    )
    assert parse_yaml(text).data == yaml.safe_load(text)


def test_a_non_string_key_in_a_merged_mapping_is_reported_once():
    document = parse_yaml("a: &a {1: x, y: 2}\nb: {<<: *a}\nc: {<<: *a}\n")
    assert document.key_problem_lines == [1]
    assert document.data == {"a": {"y": 2}, "b": {"y": 2}, "c": {"y": 2}}


KEYS = ["a", "b", "c", "1", "~", "on", "[x]"]
VALUES = ["1", "x", "[1, 2]", "{z: 1}", "null"]


@st.composite
def merged_documents(draw: st.DrawFn) -> str:
    """Mappings with anchors, aliases, merge keys (one source or a list) and keys of every YAML type."""
    lines = []
    for i in range(draw(st.integers(1, 5))):
        lines.append(f"m{i}: &a{i}")
        sources = draw(st.lists(st.integers(0, i - 1), max_size=3)) if i else []
        if sources:
            merged = f"*a{sources[0]}" if len(sources) == 1 else "[" + ", ".join(f"*a{j}" for j in sources) + "]"
            lines.append(f"  <<: {merged}")
        for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True)):
            earlier = [f"*a{j}" for j in range(i)]
            lines.append(f"  {key}: {draw(st.sampled_from(VALUES + earlier))}")
    return "\n".join(lines) + "\n"


def _string_keys_only(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _string_keys_only(v) for k, v in value.items() if isinstance(k, str)}
    if isinstance(value, list):
        return [_string_keys_only(v) for v in value]
    return value


@settings(max_examples=300, deadline=None)
@given(text=merged_documents())
def test_anchors_aliases_and_merges_read_as_pyyaml_reads_them_less_non_string_keys(text: str) -> None:
    document = parse_yaml(text)
    hashable = text.replace("  [x]:", "  ~:")  # PyYAML refuses a list as a key: another non-string one instead
    assert document.data == _string_keys_only(yaml.safe_load(hashable))
    non_string = sum(1 for line in text.splitlines() if line.strip().split(":")[0] in ("1", "~", "on", "[x]"))
    assert len(document.key_problems) == non_string

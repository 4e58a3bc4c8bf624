"""parse_yaml: plain data plus the 1-based line of every key and list item."""

from __future__ import annotations

import pytest

from components.spec.problems import Problem
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


@pytest.mark.parametrize("text", ["? [1, 2]\n: x\n", "? {a: 1}\n: x\n", "? !!set {a}\n: x\n"])
def test_non_scalar_mapping_key_is_a_syntax_error_not_a_crash(text):
    with pytest.raises(YamlSyntaxError) as raised:
        parse_yaml(text)
    assert raised.value.line == 1
    assert "a mapping key must be a plain value" in raised.value.message


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

"""YAML documents with the line of every key and item, so errors can point at the source.

Hostile input is refused with a located message, in bounded time and memory:
- the file is read up to MAX_BYTES (components/spec/loader.py);
- PyYAML composes at most MAX_VALUES values and as many keys, at most MAX_DEPTH levels deep;
- the document expands (aliases and merge keys `<<` copied where they are used) to at most
  MAX_VALUES values, every merged key counted, before anything past that limit is built: merge
  keys are resolved here, once per mapping, not by PyYAML's `flatten_mapping` (which copies every
  merged entry into every mapping that merges it, duplicates included, before a single value is
  counted: a 4.8 KB file of nested merges held 10^7 entries).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from components.spec.problems import Path, Problem


MAX_VALUES = 100_000
"""A stack of hundreds of services has tens of thousands of values; more means aliases or merge keys
expanding without bound (a "billion laughs" document), refused before it eats the machine."""
MAX_DEPTH = 32
"""Nesting levels, aliases expanded; the deepest spec path has 5 (services.0.canary.engineArgs.KEY)."""
MAX_BYTES = 1024 * 1024
"""Largest stack file read (1 MiB). prod.yaml is 6 KB; a generated 400-service stack is 250 KB and
1 MiB holds about 1,700 services. Larger input is refused unread, before any parsing."""
MAX_INTEGER_DIGITS = 1_000
"""An integer literal longer than this is refused before Python converts it: a 5,000-digit one is past Python's
own limit on converting digits (4,300). Anything shorter reaches the fields, whose bounds (limits.py) refuse it
at its own path."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"
_PLAIN_TAGS = {MappingNode: "tag:yaml.org,2002:map", SequenceNode: "tag:yaml.org,2002:seq"}


def _too_many() -> str:
    return (
        f"the document expands to more than {MAX_VALUES:,} values (aliases or merge keys `<<` repeated "
        "too often?); a stack needs far fewer"
    )


class YamlSyntaxError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _Refused(Exception):
    """A limit or a YAML structure this loader refuses; `message` is shown as is."""

    def __init__(self, node_or_mark: Any, message: str):
        super().__init__(message)
        mark = getattr(node_or_mark, "start_mark", node_or_mark)
        self.line = mark.line + 1 if mark is not None else 1
        self.message = message


@dataclass
class YamlDocument:
    """Plain data plus a map from each path to the 1-based line where it is written."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicate_keys: list[Problem] = field(default_factory=list)
    duplicate_key_lines: list[int] = field(default_factory=list)
    """The line of each entry of `duplicate_keys` (`lines` holds the last occurrence only)."""
    key_problems: list[Problem] = field(default_factory=list)
    key_problem_lines: list[int] = field(default_factory=list)
    """Keys that are not strings (`1:`, `~:`, `on:`, a list or mapping as a key), each at its own line;
    their entries are left out of `data`."""
    values: int = 0

    def line_of(self, path: Path) -> int:
        """The line of the deepest part of `path` that exists in the document (1 for the root)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


class _Loader(yaml.SafeLoader):
    """SafeLoader that stops composing past MAX_VALUES values or keys, or MAX_DEPTH levels, at the node's line.
    Every value composed is converted at least once, so this refuses nothing the conversion's count would not."""

    def __init__(self, text: str):
        super().__init__(text)
        self.values = 0
        self.keys = 0
        self.depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark
        if isinstance(parent, MappingNode) and index is None:  # compose_mapping_node: the key, then its value
            self.keys += 1
            if self.keys > MAX_VALUES:
                raise _Refused(mark, f"the document has more than {MAX_VALUES:,} keys; a stack needs far fewer")
        else:
            self.values += 1
            if self.values > MAX_VALUES:
                raise _Refused(mark, _too_many())
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(mark, f"nested too deeply (more than {MAX_DEPTH} levels)")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = len(str(node.value).lstrip("+-").replace("_", ""))
        if digits > MAX_INTEGER_DIGITS:
            raise _Refused(node, f"an integer of {digits:,} digits; no field takes a number this large")
        return super().construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise YamlSyntaxError with a line for anything PyYAML refuses."""
    loader = None
    try:
        loader = _Loader(text)  # refuses non-printable characters already here
        node = loader.get_single_node()
        document = YamlDocument(data=None)
        if node is not None:
            document.data = _Converter(loader, document).convert(node, ())
            _sort_by_line(document)
        return document
    except _Refused as error:
        raise YamlSyntaxError(error.line, f"YAML error: {error.message}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        message = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlSyntaxError(line, f"YAML syntax error: {message}") from None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        character = f"U+{error.character:04X}" if isinstance(error.character, int) else repr(error.character)
        raise YamlSyntaxError(line, f"YAML syntax error: {error.reason}: {character}") from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(1, f"YAML error: {error}") from None
    except RecursionError:
        raise YamlSyntaxError(1, "YAML error: nested too deeply, or an alias refers to itself") from None
    finally:
        if loader is not None:
            loader.dispose()


def _sort_by_line(document: YamlDocument) -> None:
    """Key problems in document order (a mapping's own keys are checked before its values are built)."""
    for problems, lines in (
        ("duplicate_keys", "duplicate_key_lines"),
        ("key_problems", "key_problem_lines"),
    ):
        pairs = sorted(zip(getattr(document, lines), getattr(document, problems)), key=lambda pair: pair[0])
        setattr(document, lines, [line for line, _ in pairs])
        setattr(document, problems, [problem for _, problem in pairs])


@dataclass(frozen=True, eq=False)
class _BadKey:
    """A key that is not a string: reported at its line, its entry dropped (never equal to another key)."""

    node: Node
    value: Any


_Entry = tuple[Any, Node, Node]  # (constructed key or _BadKey, key node, value node)


class _Converter:
    """Node graph -> plain data, counting every value built and every merged entry copied."""

    def __init__(self, loader: yaml.SafeLoader, document: YamlDocument):
        self.loader = loader
        self.document = document
        self.entries_of: dict[int, list[_Entry]] = {}
        self.resolving: set[int] = set()
        self.reported_keys: set[int] = set()
        self.open: set[int] = set()
        """The collections being converted: one met again inside itself is a recursive alias."""

    def charge(self, node: Node, count: int = 1) -> None:
        self.document.values += count
        if self.document.values > MAX_VALUES:
            raise _Refused(node, _too_many())

    def convert(self, node: Node, path: Path) -> Any:
        self.charge(node)
        if len(path) >= MAX_DEPTH:
            raise _Refused(node, f"nested too deeply (more than {MAX_DEPTH} levels, aliases expanded)")
        if type(node) in _PLAIN_TAGS and node.tag != _PLAIN_TAGS[type(node)]:
            # Collections are built here, not by PyYAML, so an explicit tag would otherwise be dropped silently.
            raise yaml.constructor.ConstructorError(
                None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark
            )
        if isinstance(node, ScalarNode):
            return self.loader.construct_object(node, deep=True)
        if id(node) in self.open:
            raise _Refused(node, "an alias refers to itself (a recursive structure)")
        self.open.add(id(node))
        try:
            return self.mapping(node, path) if isinstance(node, MappingNode) else self.sequence(node, path)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key, key_node, value_node in self.entries(node, path):
            if isinstance(key, _BadKey):
                self.report_key(key, path)
                continue
            child = (*path, key)
            self.document.lines[child] = key_node.start_mark.line + 1
            result[key] = self.convert(value_node, child)
        return result

    def sequence(self, node: SequenceNode, path: Path) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            self.document.lines[child] = item.start_mark.line + 1
            items.append(self.convert(item, child))
        return items

    def entries(self, node: MappingNode, path: Path) -> list[_Entry]:
        """The mapping's entries with merge keys resolved as PyYAML resolves them (written keys win over
        merged ones; of several merged mappings the first listed wins; of several `<<` keys the last),
        computed once per mapping node however often it is aliased or merged."""
        cached = self.entries_of.get(id(node))
        if cached is not None:
            return cached
        if id(node) in self.resolving:
            raise _Refused(node, "a merge key `<<` merges a mapping into itself")
        self.resolving.add(id(node))
        merged: dict[Any, _Entry] = {}
        written: list[_Entry] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                for source in reversed(self.merge_sources(node, value_node)):
                    source_entries = self.entries(source, path)
                    self.charge(value_node, len(source_entries))
                    for entry in source_entries:
                        merged[entry[0]] = entry
            else:
                written.append((self.key(key_node), key_node, value_node))
        written_keys: set[Any] = set()
        for entry in written:
            key, key_node, _ = entry
            if not isinstance(key, _BadKey):
                if key in written_keys:
                    self.document.duplicate_keys.append(Problem((*path, key), f"duplicate key {key!r}"))
                    self.document.duplicate_key_lines.append(key_node.start_mark.line + 1)
                written_keys.add(key)
            merged[key] = entry
        result = list(merged.values())
        self.resolving.discard(id(node))
        self.entries_of[id(node)] = result
        return result

    def merge_sources(self, node: MappingNode, value_node: Node) -> list[MappingNode]:
        if isinstance(value_node, MappingNode):
            return [value_node]
        if isinstance(value_node, SequenceNode):
            for subnode in value_node.value:
                if not isinstance(subnode, MappingNode):
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"expected a mapping for merging, but found {subnode.id}",
                        subnode.start_mark,
                    )
            return list(value_node.value)
        raise yaml.constructor.ConstructorError(
            "while constructing a mapping",
            node.start_mark,
            f"expected a mapping or list of mappings for merging, but found {value_node.id}",
            value_node.start_mark,
        )

    def key(self, key_node: Node) -> Any:
        if not isinstance(key_node, ScalarNode):
            empty: Any = [] if isinstance(key_node, SequenceNode) else set() if key_node.tag.endswith(":set") else {}
            return _BadKey(key_node, empty)
        if key_node.tag == _VALUE_TAG:  # `=`, the YAML 1.1 value key: a plain string, as PyYAML reads it
            return key_node.value
        key = self.loader.construct_object(key_node, deep=True)
        return key if isinstance(key, str) else _BadKey(key_node, key)

    def report_key(self, key: _BadKey, path: Path) -> None:
        """Once per key as written (an aliased or merged mapping is reported where it is first met)."""
        if id(key.node) in self.reported_keys:
            return
        self.reported_keys.add(id(key.node))
        self.document.key_problems.append(Problem((*path, _key_label(key.node)), _key_message(key)))
        self.document.key_problem_lines.append(key.node.start_mark.line + 1)


def _key_label(node: Node) -> str:
    """The key as written, to name it in the path: `1`, `~`, `on`; `[...]` and `{...}` for collections."""
    if isinstance(node, SequenceNode):
        return "[...]"
    if isinstance(node, MappingNode):
        return "{...}"
    text = str(node.value)
    if not text:
        return "~"
    return text if len(text) <= 40 else text[:37] + "..."


_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (datetime.datetime, "a timestamp"),
    (datetime.date, "a date"),
    (bytes, "binary data"),
    (list, "a list"),
    (dict, "a mapping"),
    (set, "a set"),
)


def _key_message(key: _BadKey) -> str:
    if key.value is None:
        kind = "null"
    else:
        kind = next((name for cls, name in _KINDS if isinstance(key.value, cls)), type(key.value).__name__)
    if isinstance(key.node, ScalarNode):
        written = key.node.value or "an empty key"
        return f"keys must be strings: YAML reads {written} as {kind}; quote it if it is meant as text"
    return f"keys must be strings, not {kind}"

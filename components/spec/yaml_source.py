"""YAML documents with the line of every key and item, so errors can point at the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from components.spec.problems import Path, Problem


MAX_VALUES = 100_000
"""A stack of hundreds of services has tens of thousands of values; more means aliases expanding
without bound (a "billion laughs" document), refused before it eats the machine."""


class YamlSyntaxError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class YamlDocument:
    """Plain data plus a map from each path to the 1-based line where it is written."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)
    duplicate_keys: list[Problem] = field(default_factory=list)
    duplicate_key_lines: list[int] = field(default_factory=list)
    """The line of each entry of `duplicate_keys` (`lines` holds the last occurrence only)."""
    values: int = 0

    def line_of(self, path: Path) -> int:
        """The line of the deepest part of `path` that exists in the document (1 for the root)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise YamlSyntaxError with a line for anything PyYAML refuses."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses non-printable characters already here
        node = loader.get_single_node()
        document = YamlDocument(data=None)
        if node is not None:
            document.data = _convert(node, (), loader, document)
        return document
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


_PLAIN_TAGS = {MappingNode: "tag:yaml.org,2002:map", SequenceNode: "tag:yaml.org,2002:seq"}


def _convert(node: Node, path: Path, loader: yaml.SafeLoader, document: YamlDocument) -> Any:
    document.values += 1
    if document.values > MAX_VALUES:
        raise yaml.constructor.ConstructorError(
            None, None, f"the document expands to more than {MAX_VALUES:,} values (aliases nested too deep?)",
            node.start_mark,
        )
    if type(node) in _PLAIN_TAGS and node.tag != _PLAIN_TAGS[type(node)]:
        # Collections are built here, not by PyYAML, so an explicit tag would otherwise be dropped silently.
        raise yaml.constructor.ConstructorError(
            None, None, f"could not determine a constructor for the tag {node.tag!r}", node.start_mark
        )
    if isinstance(node, MappingNode):
        # Keys merged in with `<<` come first after flattening; written keys override them
        # (YAML merge semantics), so only a key written twice in this mapping is a duplicate.
        written = {id(key_node) for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        written_keys: set[Any] = set()
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not _hashable(key) or isinstance(key, (list, dict, set)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            child = (*path, key)
            if id(key_node) in written:
                if key in written_keys:
                    document.duplicate_keys.append(Problem(child, f"duplicate key {key!r}"))
                    document.duplicate_key_lines.append(key_node.start_mark.line + 1)
                written_keys.add(key)
            document.lines[child] = key_node.start_mark.line + 1
            result[key] = _convert(value_node, child, loader, document)
        return result
    if isinstance(node, SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            document.lines[child] = item.start_mark.line + 1
            items.append(_convert(item, child, loader, document))
        return items
    assert isinstance(node, ScalarNode)
    return loader.construct_object(node, deep=True)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True

"""YAML documents with the line of every key and item, so errors can point at the source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from components.spec.problems import Path, Problem


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

    def line_of(self, path: Path) -> int:
        """The line of the deepest part of `path` that exists in the document (1 for the root)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


def parse_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raise YamlSyntaxError with a line for anything PyYAML refuses."""
    loader = yaml.SafeLoader(text)
    try:
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
    except yaml.YAMLError as error:
        raise YamlSyntaxError(1, f"YAML error: {error}") from None
    except RecursionError:
        raise YamlSyntaxError(1, "YAML error: an alias refers to itself") from None
    finally:
        loader.dispose()


def _convert(node: Node, path: Path, loader: yaml.SafeLoader, document: YamlDocument) -> Any:
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            child = (*path, key)
            if key in result:
                document.duplicate_keys.append(Problem(child, f"duplicate key {key!r}"))
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

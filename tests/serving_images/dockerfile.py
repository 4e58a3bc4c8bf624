"""A reader for the serving images' Dockerfiles: instructions with continuation lines joined and
comments dropped, and FROM references expanded with the ARG defaults (or overrides), as BuildKit does
for the `${NAME}` and `${NAME:?message}` forms the Dockerfiles use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::\?(?P<required>[^}]*))?\}")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(path: Path) -> list[Instruction]:
    """Each instruction once, upper-case keyword first; comment lines inside continuations skipped."""
    result: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not stripped:
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    return result


def arg_defaults(path: Path) -> dict[str, str | None]:
    """ARG name -> its default, None where it has none (the build must pass it)."""
    defaults: dict[str, str | None] = {}
    for instruction in instructions(path):
        if instruction.keyword == "ARG":
            name, equals, value = instruction.arguments.partition("=")
            defaults[name] = value if equals else None
    return defaults


def expand(text: str, values: dict[str, str | None]) -> str:
    """Substitute ${NAME}; a required ${NAME:?...} without a value stays as written."""

    def replace(match: re.Match[str]) -> str:
        value = values.get(match["name"])
        return match[0] if value is None else value

    return _REFERENCE.sub(replace, text)


def required_args(text: str) -> set[str]:
    """The ARGs a text requires with ${NAME:?...}: the build stops when one is not given."""
    return {match["name"] for match in _REFERENCE.finditer(text) if match["required"] is not None}


def only(path: Path, keyword: str) -> Instruction:
    (found,) = [i for i in instructions(path) if i.keyword == keyword]
    return found


def last(path: Path, keyword: str) -> Instruction:
    return [i for i in instructions(path) if i.keyword == keyword][-1]

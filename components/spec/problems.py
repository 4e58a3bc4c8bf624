"""Problems found in a stack file, reported the way compilers do: `FILE:LINE: dotted.path: message`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from components.spec.secrets import redact

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack, located by its path in the document (not yet by line).

    Messages never repeat a credential: whatever a check echoes, credential-shaped parts are
    `[redacted]` (components/spec/secrets.py)."""

    path: Path
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", redact(self.message))


@dataclass(frozen=True)
class LocatedProblem:
    file: str
    line: int
    path: Path
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", redact(self.message))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {dotted(self.path)}: {self.message}"


class StackError(Exception):
    """Raised with every problem of a stack file at once, so users fix them in one pass."""

    def __init__(self, problems: list[LocatedProblem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def dotted(path: Path) -> str:
    """`('services', 0, 'maxModelLen')` -> `services.0.maxModelLen`; the document itself is `<root>`.

    The path stays one word, so `FILE:LINE: path: message` splits the same way whatever keys a
    user wrote: a key that is empty or holds white space, a double quote or a non-printable
    character is written as a JSON string with those escaped (`tags."cost\\u0020center"`).
    """
    return ".".join(_part(part) for part in path) if path else "<root>"


def _part(part: str | int) -> str:
    text = redact(str(part))
    if text and text.isprintable() and '"' not in text and not any(c.isspace() for c in text):
        return text
    quoted = json.dumps(text, ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if c.isspace() or not c.isprintable() else c for c in quoted)

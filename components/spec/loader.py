"""Read a stack file into a StackSpec, or fail with every problem located by file and line."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path as FilePath

from pydantic import ValidationError

from components.spec.models import StackSpec
from components.spec.problems import LocatedProblem, Problem, StackError
from components.spec.pydantic_problems import problems_from_validation_error
from components.spec.rules import check_spec
from components.spec.yaml_source import MAX_BYTES, YamlDocument, YamlSyntaxError, parse_yaml


@dataclass(frozen=True)
class SpecSource:
    """A parsed stack and where it came from, so later checks can locate their problems too."""

    file: str
    document: YamlDocument
    spec: StackSpec

    def locate(self, problems: list[Problem]) -> list[LocatedProblem]:
        return locate(self.file, self.document, problems)


def locate(file: str, document: YamlDocument, problems: list[Problem]) -> list[LocatedProblem]:
    located = [LocatedProblem(file, document.line_of(p.path), p.path, p.message) for p in problems]
    return sorted(located, key=lambda p: p.line)


def _duplicate_keys(file: str, document: YamlDocument) -> list[LocatedProblem]:
    """Each duplicate or non-string key at its own line (the document's line map holds only a key's last
    occurrence, and no entry for a key that is not a string)."""
    return [
        LocatedProblem(file, line, p.path, p.message)
        for problems, lines in (
            (document.duplicate_keys, document.duplicate_key_lines),
            (document.key_problems, document.key_problem_lines),
        )
        for p, line in zip(problems, lines, strict=True)
    ]


def read_spec(path: str | FilePath) -> SpecSource:
    """Parse and check a stack file against the spec alone; raise StackError listing every problem."""
    file = str(path)
    document = _read_document(file)
    if document.data is None:
        raise StackError([LocatedProblem(file, 1, (), "the stack file is empty")])
    if not isinstance(document.data, dict):
        kind = type(document.data).__name__
        raise StackError([LocatedProblem(file, 1, (), f"a stack file must be a mapping of keys, not a {kind}")])
    duplicates = _duplicate_keys(file, document)
    problems: list[Problem] = []
    try:
        spec = StackSpec.model_validate(document.data)
    except ValidationError as error:
        problems += problems_from_validation_error(error, document.data, StackSpec)
        raise StackError(_sorted(duplicates + locate(file, document, problems))) from None
    stem = FilePath(file).stem
    if spec.environment != stem:
        problems.append(Problem(("environment",), f"{spec.environment!r} must equal the file's stem {stem!r}"))
    problems += check_spec(spec)
    if problems or duplicates:
        raise StackError(_sorted(duplicates + locate(file, document, problems)))
    return SpecSource(file=file, document=document, spec=spec)


def _sorted(problems: list[LocatedProblem]) -> list[LocatedProblem]:
    return sorted(problems, key=lambda p: p.line)


def _read_document(file: str) -> YamlDocument:
    text = _read_text(file)
    try:
        return parse_yaml(text)
    except YamlSyntaxError as error:
        raise StackError([LocatedProblem(file, error.line, (), error.message)]) from None


_FILE_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse(file: str, message: str, line: int = 1) -> StackError:
    return StackError([LocatedProblem(file, line, (), message)])


def _read_text(file: str) -> str:
    """The file as text, read only if it is a regular file, and never more than MAX_BYTES of it."""
    try:
        info = os.stat(file)
        _check_kind(file, info)
        # O_NONBLOCK: a file swapped for a FIFO after the stat must not hang the open.
        descriptor = os.open(file, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(descriptor, "rb") as handle:
            _check_kind(file, os.fstat(handle.fileno()))
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise _refuse(file, "no such file") from None
    except IsADirectoryError:
        raise _refuse(file, "is a directory, not a stack file") from None
    except OSError as error:
        raise _refuse(file, f"cannot read: {error.strerror}") from None
    if len(data) > MAX_BYTES:
        size = f"is {info.st_size:,} bytes, more than" if info.st_size > MAX_BYTES else "is more than"
        raise _refuse(
            file,
            f"{size} the {MAX_BYTES // (1024 * 1024)} MiB ({MAX_BYTES:,} bytes) a stack file may be "
            "(a stack is a few KB); refused unread",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise _refuse(file, f"not UTF-8 text: {error.reason}", line) from None


def _check_kind(file: str, info: os.stat_result) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(file)
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _FILE_KINDS if test(info.st_mode)), "not a regular file")
        raise _refuse(file, f"is {kind}, not a stack file: give a regular file")

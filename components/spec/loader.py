"""Read a stack file into a StackSpec, or fail with every problem located by file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path as FilePath

from pydantic import ValidationError

from components.spec.models import StackSpec
from components.spec.problems import LocatedProblem, Problem, StackError
from components.spec.pydantic_problems import problems_from_validation_error
from components.spec.rules import check_spec
from components.spec.yaml_source import YamlDocument, YamlSyntaxError, parse_yaml


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
    """Each duplicate at its own line (the document's line map holds only a key's last occurrence)."""
    return [
        LocatedProblem(file, line, p.path, p.message)
        for p, line in zip(document.duplicate_keys, document.duplicate_key_lines, strict=True)
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
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise StackError([LocatedProblem(file, 1, (), "no such file")]) from None
    except IsADirectoryError:
        raise StackError([LocatedProblem(file, 1, (), "is a directory, not a stack file")]) from None
    except UnicodeDecodeError as error:
        raise StackError([LocatedProblem(file, 1, (), f"not UTF-8 text: {error.reason}")]) from None
    except OSError as error:
        raise StackError([LocatedProblem(file, 1, (), f"cannot read: {error.strerror}")]) from None
    try:
        return parse_yaml(text)
    except YamlSyntaxError as error:
        raise StackError([LocatedProblem(file, error.line, (), error.message)]) from None
